"""Run a Lambda function locally under the Runtime Interface Emulator that ships in the aws-sam-cli
wheel (the same runtime API as Lambda, no container): `aws-lambda-rie-<arch> <python> -m awslambdaric
<handler>` with PYTHONPATH = function code + layers. One emulator process serves one invocation at a
time, so EmulatorPool keeps several and hands them out."""

from __future__ import annotations

import contextlib
import os
import platform
import queue
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import processes, rie_invoke
from .template import FunctionSpec

PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


class InvokeError(Exception):
    """The emulator or the runtime failed (crash, timeout), as opposed to a handler error payload."""


def rie_binary() -> Path:
    import samcli

    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    path = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not path.exists():
        raise FileNotFoundError(f"the Lambda Runtime Interface Emulator is missing: {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


@dataclass
class InvokeResult:
    payload: bytes
    function_error: bool  # the handler raised (payload is {"errorMessage", "errorType", ...})
    request_id: str | None


class Emulator:
    def __init__(
        self, spec: FunctionSpec, aws_env: dict[str, str], *, python: str = sys.executable, log: Path | None = None
    ):
        self.spec = spec
        self.aws_env = aws_env
        self.python = python
        self.log = log
        self.port = 0
        self.proc = None

    def environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.spec.logical_id,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.spec.timeout),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.spec.runtime}",
                "LAMBDA_TASK_ROOT": str(self.spec.code_dir),
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.aws_env)
        env.update(self.spec.environment)
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in self.spec.python_path)
        return env

    def start(self) -> Emulator:
        self.port = processes.free_port()
        runtime_api_port = processes.free_port()  # each emulator needs its own runtime API port (default 9001)
        argv = [
            str(rie_binary()),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{runtime_api_port}",
            self.python,
            "-m",
            "awslambdaric",
            self.spec.handler,
        ]
        self.proc = processes.spawn(argv, env=self.environment(), cwd=self.spec.code_dir, log=self.log)
        processes.wait_for_port(self.port, self.proc, timeout=15, what=f"emulator for {self.spec.logical_id}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def invoke(self, payload: bytes) -> InvokeResult:
        body, headers = rie_invoke.invoke(
            self.port,
            payload,
            timeout=self.spec.timeout + 30,
            what=f"{self.spec.logical_id}: emulator",
            error=InvokeError,
            headers={"Content-Type": "application/json"},
        )
        function_error = body.startswith(b'{"errorMessage"') or headers.get("X-Amz-Function-Error") is not None
        return InvokeResult(body, function_error, headers.get("Lambda-Runtime-Aws-Request-Id"))

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None


class EmulatorPool:
    """N warm emulators for one function; a caller borrows one for exactly one invocation."""

    def __init__(self, spec: FunctionSpec, aws_env: dict[str, str], size: int = 2, log_dir: Path | None = None):
        self.spec = spec
        self.aws_env = aws_env
        self.size = size
        self.log_dir = log_dir
        self._idle: queue.Queue[Emulator] = queue.Queue()
        self._all: list[Emulator] = []
        self._lock = threading.Lock()
        self._count = 0

    def _new(self) -> Emulator:
        with self._lock:
            self._count += 1
            n = self._count
        log = self.log_dir / f"{self.spec.logical_id}-{n}.log" if self.log_dir else None
        emulator = Emulator(self.spec, self.aws_env, log=log).start()
        with self._lock:
            self._all.append(emulator)
        return emulator

    def start(self, warmup: bytes | None = None) -> EmulatorPool:
        """Start every emulator in parallel; a warm-up payload pays each one's cold start now."""

        def boot(_: int) -> Emulator:
            emulator = self._new()
            if warmup is not None:
                emulator.invoke(warmup)
            return emulator

        with ThreadPoolExecutor(self.size) as pool:
            for emulator in pool.map(boot, range(self.size)):
                self._idle.put(emulator)
        return self

    @contextlib.contextmanager
    def borrow(self, timeout: float = 120.0) -> Iterator[Emulator]:
        try:
            emulator = self._idle.get(timeout=timeout)
        except queue.Empty:
            raise InvokeError(f"{self.spec.logical_id}: no emulator free within {timeout:.0f} s") from None
        try:
            yield emulator
        finally:
            if emulator.alive():
                self._idle.put(emulator)
            else:
                self._replace(emulator)

    def _replace(self, dead: Emulator) -> None:
        dead.stop()
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
        # a pool that is shutting down or broken shrinks; borrow() then reports the timeout
        with contextlib.suppress(RuntimeError):
            self._idle.put(self._new())

    def invoke(self, payload: bytes) -> InvokeResult:
        with self.borrow() as emulator:
            try:
                return emulator.invoke(payload)
            except InvokeError:
                emulator.stop()  # a crashed or hung runtime is replaced on return
                raise

    def stop(self) -> None:
        with self._lock:
            emulators = list(self._all)
            self._all.clear()
        for emulator in emulators:
            emulator.stop()
