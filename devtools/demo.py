"""`make demo`: the project's main job, run locally from a fresh clone with no AWS account and no
Docker. Each part is a module in DEMOS, run in order:

- a module with `run(demo: Demo) -> None` uses the shared local stack (local AWS with the champion
  model, the template's API under the Runtime Interface Emulator) and calls demo.http(...);
- a module with `main(out) -> int` runs on its own (exit code 0 = passed).

The demo prints every request and answer and exits non-zero if any answer was not the expected one.
"""

from __future__ import annotations

import http.client
import importlib
import json
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import processes
from .local_stack import LocalStack

# Append new parts here; they run in this order.
DEMOS: list[str] = [
    "devtools.demo_online",
    "devtools.demo_ab",
    "devtools.demo_lifecycle",
]

MAX_SHOWN = 600  # characters of a body to print


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Demo:
    """What a demo part gets: the running local stack and a checked HTTP client for its API."""

    stack: LocalStack
    out: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.stack.gateway is not None
        return self.stack.gateway.url

    def section(self, title: str) -> None:
        self.out(f"\n== {title}")

    def http(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: int,
        check: Callable[[Answer], str | None] | None = None,
        title: str = "",
    ) -> Answer:
        """Send one request to `path` under the API's stage (/predict is sent as /v1/predict), print it
        and its answer, and record a failure if the status is not `expect` or `check` returns a complaint."""
        assert self.stack.gateway is not None
        path = self.stack.gateway.base_path + path
        headers = dict(headers or {})
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes | str):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        self.out(f"\n-- {title}" if title else "")
        shown = "" if data is None else " " + _clip(data.decode(errors="replace"))
        hdrs = "".join(f" -H '{k}: {v}'" for k, v in headers.items())
        self.out(f"$ {method} {path}{hdrs}{shown}")
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.gateway.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            answer = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()
        ms = (time.perf_counter() - started) * 1000
        self.out(f"< {answer.status} {answer.headers.get('content-type', '')} ({ms:.0f} ms)")
        self.out("  " + _clip(answer.body.decode(errors="replace")))
        problem = None if answer.status == expect else f"expected HTTP {expect}, got {answer.status}"
        if problem is None and check is not None:
            try:
                problem = check(answer)
            except Exception as exc:  # a malformed answer is a failed expectation, not a crash
                problem = f"answer could not be checked: {type(exc).__name__}: {exc}"
        if problem:
            self.failures.append(f"{method} {path}: {problem}")
            self.out(f"  !! {problem}")
        else:
            self.out("  ok")
        return answer


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f" ... ({len(text)} chars)"


def run_parts(modules: list[str], out: Callable[[str], None] = print, pool_size: int = 2) -> int:
    failed: list[str] = []
    parts = [(name, importlib.import_module(name)) for name in modules]
    stack_parts = [(n, m) for n, m in parts if hasattr(m, "run")]
    stack: LocalStack | None = None
    try:
        if stack_parts:
            out("== starting the local stack (moto server, Runtime Interface Emulator, API gateway)")
            stack = LocalStack(pool_size=pool_size, log=out)
            stack.start()
            demo = Demo(stack, out)
            for name, module in stack_parts:
                before = len(demo.failures)
                try:
                    module.run(demo)
                except Exception:
                    demo.failures.append(f"{name} crashed:\n{traceback.format_exc()}")
                if len(demo.failures) > before:
                    failed.append(name)
            stack.stop()
            stack = None
            for problem in demo.failures:
                out(f"FAILED: {problem}")
        for name, module in parts:
            if hasattr(module, "run"):
                continue
            out(f"\n== {name}")
            if module.main(out) != 0:
                failed.append(name)
    finally:
        if stack is not None:
            stack.stop()
        processes.stop_all()
    if failed:
        out(f"\ndemo FAILED: {', '.join(failed)}")
        return 1
    out(f"\ndemo passed: {', '.join(name.rsplit('.', 1)[-1] for name, _ in parts)}")
    return 0


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # so that `finally` stops every process this demo started


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    modules = [m if "." in m else f"devtools.demo_{m}" for m in argv] or DEMOS
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run_parts(modules, out=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
