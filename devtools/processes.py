"""Child processes that never outlive their parent: each runs in its own process group, is
remembered, and is stopped (SIGTERM, then SIGKILL) by stop_all(), which also runs at exit. On Linux
the kernel also kills each child when this process dies without running stop_all (SIGKILL, a crash;
an emulator's runtime exits with its emulator): see _Spawner."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

_children: list[subprocess.Popen[bytes]] = []
_lock = threading.Lock()
T = TypeVar("T")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@functools.cache
def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _death_signal_setter() -> Callable[[], None] | None:
    """A preexec_fn that asks the kernel to SIGKILL the child when its parent goes away (SIGKILL: no
    one is left to escalate from SIGTERM). None where prctl(2) does not exist."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    sig = int(signal.SIGKILL)

    def set_death_signal() -> None:  # runs in the forked child before exec: two calls, no locks
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_death_signal


class _Spawner:
    """Forks every child from one thread that lives as long as the process. PR_SET_PDEATHSIG fires
    when the *thread* that forked the child exits, not the process (prctl(2)), so a child forked by
    a short-lived worker (EmulatorPool.start boots from a thread pool) would be killed as soon as
    that worker finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()

    def call(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():  # none yet, or this is a forked copy
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, args=(self._jobs,), name="spawner", daemon=True)
                self._thread.start()
                self._pid = os.getpid()
            jobs = self._jobs
        future: Future[T] = Future()
        jobs.put((fn, future))
        return future.result()

    @staticmethod
    def _run(jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
        while True:
            fn, future = jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, which re-raises it
                future.set_exception(exc)


_spawner = _Spawner()


def spawn(
    argv: Sequence[str], *, env: dict[str, str], cwd: str | Path | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    def start() -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed when the child is stopped
        try:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_death_signal_setter(),
            )
        finally:
            if log:
                out.close()  # the child holds its own copy
        # remembered on the spawner thread, so a KeyboardInterrupt in the caller cannot lose the child
        with _lock:
            _children.append(proc)
        return proc

    return _spawner.call(start)


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


def exit_with_parent(interval: float = 0.5) -> None:
    """SIGTERM this process (and so run its SIGTERM handler) once its parent is gone, for example
    when `make serve`'s make is killed. Polls getppid() rather than using PR_SET_PDEATHSIG on
    itself: that would fire when the parent's forking *thread* exits, which a multi-threaded parent
    does not promise to keep alive."""
    parent = os.getppid()
    if parent == 1:
        return  # started by init (or already orphaned): there is no parent to follow

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


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
