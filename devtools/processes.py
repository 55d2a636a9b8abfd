"""Child processes that never outlive their parent: each runs in its own process group, is
remembered, and is stopped (SIGTERM, then SIGKILL) by stop_all(), which also runs at exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

_children: list[subprocess.Popen[bytes]] = []
_lock = threading.Lock()


def spawn(
    argv: Sequence[str], *, env: dict[str, str], cwd: str | Path | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed when the child is stopped
    proc = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if log:
        out.close()  # the child holds its own copy
    with _lock:
        _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Stop the child's whole process group (the emulator and the runtime it started)."""
    with _lock:
        if proc in _children:
            _children.remove(proc)
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    _signal_group(proc, signal.SIGKILL)  # leftovers in the group, even if the leader already exited
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


def stop_all() -> None:
    with _lock:
        procs = list(_children)
    for proc in reversed(procs):
        stop(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0, what: str = "process"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on port {port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


atexit.register(stop_all)
