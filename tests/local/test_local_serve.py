"""`make serve`'s entry point as a user runs it: a separate process that prints its URL, answers HTTP,
and stops every process it started (moto server, emulators, the runtimes they started) however it
is stopped: Ctrl-C (SIGINT), SIGTERM, SIGHUP, during start-up, SIGKILL of itself, or the death of the
process that started it (make)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.local_fixtures import REPO, http_call, write_echo_project

from devtools.processes import free_port

pytestmark = pytest.mark.slow

CHILDREN = ("moto.server", "aws-lambda-rie", "awslambdaric")
# Stands in for make: runs serve as its child and waits for it (make does not exec its recipe).
PARENT = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_until_dead(pids: set[int], timeout: float = 15) -> list[int]:
    """The pids still alive after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return sorted(p for p in pids if _alive(p))


class Serve:
    """`python -m devtools.serve` on the echo project, optionally under a parent standing in for make."""

    def __init__(self, template: Path, model_cache: Path, *, under_parent: bool = False, port: int = 0):
        work = template.parent / "tmp"  # serve's work directory, which a SIGKILL leaves behind, goes here
        work.mkdir()
        argv = [
            sys.executable,
            "-m",
            "devtools.serve",
            "--port",
            str(port),
            "--template",
            str(template),
            "--pool",
            "2",
            "--model-cache",
            str(model_cache / "breast-cancer"),
        ]
        if under_parent:
            argv = [sys.executable, "-c", PARENT, *argv]
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "TMPDIR": str(work)}
        self.proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.seen: dict[int, str] = {}  # every process serve started that the test has seen: its command line
        self.serve_pid = self.proc.pid
        if under_parent:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not self._serve_child():
                time.sleep(0.05)
            self.serve_pid = self._serve_child() or self.proc.pid

    def _serve_child(self) -> int | None:
        return next((p for p in _descendants(self.proc.pid) if "devtools.serve" in _cmdline(p)), None)

    def read_until(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited early ({self.proc.poll()}):\n" + "".join(self.lines))
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"serve did not print {prefix!r} in time:\n" + "".join(self.lines))

    def banner(self) -> str:
        self.read_until("Ctrl-C")
        return "".join(self.lines)

    @property
    def url(self) -> str:
        return next(line.split()[1] for line in self.lines if line.startswith("API:"))

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    @property
    def started(self) -> set[int]:
        return set(self.seen)

    def children(self) -> list[str]:
        """Record serve's descendants now; the command lines of the live ones."""
        for pid in _descendants(self.serve_pid):
            self.seen.setdefault(pid, _cmdline(pid))
        return [self.seen[p] for p in self.seen if _alive(p)]

    def assert_stack_running(self) -> None:
        names = self.children()
        assert sum("moto.server" in n for n in names) == 1
        assert sum("aws-lambda-rie" in n for n in names) == 2  # the emulators
        assert sum(n.split()[1:3] == ["-m", "awslambdaric"] for n in names) == 2  # the runtimes they started

    def cleanup(self) -> None:
        """Whatever a failed run left behind."""
        for proc_pid in (self.serve_pid, self.proc.pid):
            if _alive(proc_pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc_pid, signal.SIGINT)
        _wait_until_dead({self.serve_pid, self.proc.pid}, timeout=30)
        for pid in self.started | _descendants(self.serve_pid):
            if _alive(pid) and any(s in _cmdline(pid) for s in CHILDREN):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def serving(tmp_path: Path, model_cache: Path, **kwargs) -> Iterator[Serve]:
    serve = Serve(write_echo_project(tmp_path), model_cache, **kwargs)
    try:
        yield serve
    finally:
        serve.cleanup()


def test_serve_prints_url_answers_and_stops_everything_on_ctrl_c(tmp_path, local_model_cache):
    port = free_port()
    with serving(tmp_path, local_model_cache, port=port) as serve:
        banner = serve.banner()
        # the API under its stage, as in the stack's ApiUrl output
        assert f"API:      http://127.0.0.1:{port}/v1\n" in banner
        assert f"http://127.0.0.1:{port}/v1/docs" in banner and f"http://127.0.0.1:{port}/v1/openapi.json" in banner
        assert f"curl -s -X POST http://127.0.0.1:{port}/v1/predict" in banner
        assert http_call(port, "GET", "/v1/hello").status == 200
        serve.assert_stack_running()
        serve.proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert serve.proc.wait(30) == 0
        assert _wait_until_dead(serve.started) == []
        with pytest.raises(ConnectionRefusedError):
            http_call(port, "GET", "/v1/hello", timeout=2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_everything_like_ctrl_c(tmp_path, local_model_cache, sig):
    """SIGTERM (kill, make passing on its own SIGTERM, a process manager) and SIGHUP (the terminal
    going away) run the same shutdown as Ctrl-C."""
    with serving(tmp_path, local_model_cache) as serve:
        serve.banner()
        assert http_call(serve.port, "GET", "/v1/hello").status == 200
        serve.assert_stack_running()
        serve.proc.send_signal(sig)
        assert serve.proc.wait(30) == 0
        assert _wait_until_dead(serve.started) == []
        assert "stopping ..." in serve.proc.stdout.read()


def test_sigterm_during_start_up_stops_what_was_started(tmp_path, local_model_cache):
    """A signal while the emulators boot (from a thread pool) interrupts start-up; whatever was
    already started is stopped."""
    with serving(tmp_path, local_model_cache) as serve:
        serve.read_until("starting 2 emulator(s)")
        serve.children()
        serve.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while serve.proc.poll() is None and time.monotonic() < deadline:
            serve.children()  # emulators born after the signal count too
            time.sleep(0.02)
        assert serve.proc.wait(1) == 130  # interrupted, not a clean exit after start-up
        assert any("moto.server" in line for line in serve.seen.values())
        assert _wait_until_dead(serve.started) == []


def test_sigkill_of_serve_takes_its_children_with_it(tmp_path, local_model_cache):
    """No clean-up code runs on SIGKILL: the kernel stops the children (PR_SET_PDEATHSIG), including
    the emulators that were forked from start-up's short-lived worker threads."""
    with serving(tmp_path, local_model_cache) as serve:
        serve.banner()
        serve.assert_stack_running()
        serve.proc.kill()
        assert serve.proc.wait(10) == -signal.SIGKILL
        assert _wait_until_dead(serve.started) == []


def test_serve_stops_when_its_parent_is_killed(tmp_path, local_model_cache):
    """`make serve` whose make is SIGKILLed: serve notices that it lost its parent and shuts down as
    on SIGTERM, children included."""
    with serving(tmp_path, local_model_cache, under_parent=True) as serve:
        assert serve.serve_pid != serve.proc.pid
        serve.banner()
        assert http_call(serve.port, "GET", "/v1/hello").status == 200
        serve.assert_stack_running()
        serve.proc.kill()  # the parent, not serve
        serve.proc.wait(10)
        assert _wait_until_dead({serve.serve_pid, *serve.started}, timeout=30) == []
        with pytest.raises(ConnectionRefusedError):
            http_call(serve.port, "GET", "/v1/hello", timeout=2)


def test_serve_reports_a_busy_port_in_one_line(tmp_path):
    import socket

    template = write_echo_project(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, "-m", "devtools.serve", "--template", str(template), "--pool", "1"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _own_registry(root, classifier_dir, name: str = "my-model") -> str:
    """A local registry directory holding one model of the user's (the session's classifier, renamed)."""
    import shutil

    from modelops.model.artifact import Manifest
    from modelops.registry import CHAMPION, Registry

    artifact = root / "artifact"
    shutil.copytree(classifier_dir, artifact)
    manifest = Manifest.from_json((artifact / "manifest.json").read_bytes())
    manifest.name = name
    (artifact / "manifest.json").write_bytes(manifest.to_json())
    (root / "registry").mkdir()
    registry = Registry(str(root / "registry"))
    registry.register(artifact)
    registry.set_alias(name, CHAMPION, manifest.version)
    return manifest.version


@pytest.mark.slow
def test_serve_answers_with_your_own_model_from_a_local_registry(tmp_path, classifier_dir):
    """`make serve REGISTRY=dir MODEL_NAME=name`: the real handler serves the champion of a local registry directory,
    through the template's functions, with no model trained or seeded."""
    from support.local_fixtures import api_call

    from devtools.local_stack import LocalStack, OwnModel

    version = _own_registry(tmp_path, classifier_dir)
    own = OwnModel(registry=str(tmp_path / "registry"), name="my-model")
    with LocalStack(pool_size=1, log=lambda _line: None, model_cache=None, own=own) as stack:
        stack.start()
        assert api_call(stack, "GET", "/model").json()["name"] == "my-model"
        row = json.loads((tmp_path / "artifact" / "golden.json").read_text())["instances"][0]
        answer = api_call(
            stack,
            "POST",
            "/predict",
            body=json.dumps({"instances": [row]}),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status == 200, answer.body
        assert answer.json()["model"] == {"name": "my-model", "version": version}


def test_serve_refuses_a_missing_registry_or_model_in_one_line(tmp_path, capsys):
    from devtools import serve

    assert (
        serve.main(["--port", "0", "--registry", str(tmp_path / "nope"), "--model-name", "m", "--no-exit-with-parent"])
        == 1
    )
    assert capsys.readouterr().err.strip() == f"error: registry directory {tmp_path / 'nope'} does not exist"
    (tmp_path / "empty").mkdir()
    assert (
        serve.main(["--port", "0", "--registry", str(tmp_path / "empty"), "--model-name", "m", "--no-exit-with-parent"])
        == 1
    )
    assert "has no 'champion' alias" in capsys.readouterr().err
