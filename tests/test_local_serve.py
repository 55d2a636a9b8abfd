"""`make serve`'s entry point as a user runs it: a separate process that prints its URL, answers HTTP,
and on Ctrl-C (SIGINT) stops every process it started (moto server, emulators, runtimes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_fixtures import REPO, http_call, write_echo_project

from devtools.processes import free_port

pytestmark = pytest.mark.slow


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


def _wait_for_url(proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"serve exited early ({proc.poll()}):\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Ctrl-C"):
            return lines
    raise AssertionError("serve did not print its banner in time:\n" + "".join(lines))


def test_serve_prints_url_answers_and_stops_everything_on_ctrl_c(tmp_path, local_model_cache):
    template = write_echo_project(tmp_path)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.serve",
            "--template",
            str(template),
            "--pool",
            "2",
            "--model-cache",
            str(local_model_cache / "breast-cancer"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started: set[int] = set()
    try:
        banner = "".join(_wait_for_url(proc))
        # the API under its stage, as in the stack's ApiUrl output
        assert f"API:      http://127.0.0.1:{port}/v1\n" in banner
        assert f"http://127.0.0.1:{port}/v1/docs" in banner and f"http://127.0.0.1:{port}/v1/openapi.json" in banner
        assert f"curl -s -X POST http://127.0.0.1:{port}/v1/predict" in banner
        assert http_call(port, "GET", "/v1/hello").status == 200
        started |= _descendants(proc.pid)
        names = [_cmdline(p) for p in started if _alive(p)]
        assert sum("moto.server" in n for n in names) == 1
        assert sum("aws-lambda-rie" in n for n in names) == 2  # the emulators
        assert sum(n.split()[1:3] == ["-m", "awslambdaric"] for n in names) == 2  # the runtimes they started
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert proc.wait(30) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in started):
            time.sleep(0.1)
        assert [p for p in started if _alive(p)] == []
        with pytest.raises(ConnectionRefusedError):
            http_call(port, "GET", "/v1/hello", timeout=2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        for pid in started | _descendants(proc.pid):  # whatever a failed run left behind
            if _alive(pid) and any(s in _cmdline(pid) for s in ("moto.server", "aws-lambda-rie", "awslambdaric")):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


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
