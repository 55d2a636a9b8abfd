"""Score chunks on a small pool of threads, one per CPU, and hand the results back in input order.

scikit-learn and numpy release the GIL in their inner loops, so threads scale the scoring of chunks.
Each worker limits OpenMP (HistGradientBoosting's tree traversal, for example) to its share of the
CPUs. A model's parallel regions synchronise once per tree, so threads that outnumber the cores make
every one of those barriers wait for the slowest thread; one chunk per thread needs no barrier at all.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_openmp = threading.local()


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(setting: int) -> int:
    """0 means one worker per available CPU."""
    return setting if setting > 0 else available_cpus()


MALLOC_ARENAS = 1
MMAP_THRESHOLD = 64 * 1024**2
TRIM_THRESHOLD = 256 * 1024**2
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt parameters (glibc malloc.h)
_malloc_tuned = False


def tune_malloc() -> None:
    """Set glibc's allocator up for chunk-sized buffers (once, before the pool starts).

    One heap arena: by default threads that allocate at the same time get arenas of their own, and
    chunk-sized buffers freed into several arenas are not returned to the system, so peak memory would
    creep up with the length of the run instead of staying set by the chunk size.

    Buffers up to 64 MiB come from the heap, which keeps up to 256 MiB free: each chunk's buffers (tens
    of MB) then reuse the previous chunk's pages instead of being mapped, faulted in page by page and
    unmapped again, which halves the page faults of a run. Peak memory is unchanged: it is set by the
    chunks in flight. No-op where the C library is not glibc.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        pass


def limit_openmp_threads(threads: int) -> None:
    """OpenMP's thread count is a per-thread setting, so this changes only the calling thread's models."""
    if getattr(_openmp, "threads", None) == threads:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="openmp")
    _openmp.threads = threads


@contextlib.contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """BLAS threads (a LogisticRegression's matrix product) limited for the whole process while the pool runs.
    OpenBLAS's setting is global, not per thread, and its idle threads spin: with one scoring thread per CPU,
    its extra threads took about 1.4 CPU-s per 1M LR rows from the parsing thread and the writer."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads, user_api="blas"):
        yield


SWITCH_SECONDS = 0.0005  # the interpreter's default is 0.005


@contextlib.contextmanager
def quick_gil_handoff(seconds: float = SWITCH_SECONDS) -> Iterator[None]:
    """A shorter switch interval while chunks are parsed and scored. A scoring thread needs the GIL for a
    moment after each tree; while the parsing thread runs Python code it would wait up to the interval for it
    (5 ms, about as long as one tree takes on a chunk). Process-wide, so restored afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Generator[R, None, None]:
    """fn over items on `workers` threads; results in input order, at most `workers` items running and one
    more waiting in the pool's queue: a worker that finishes while the consumer is busy with a result (an
    upload part to hand over, say) goes on with the waiting item instead of idling until the next one comes.

    workers <= 1 runs fn in the calling thread. A failure is raised at its item's turn; the items not
    started yet are dropped, the running ones finish first.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    openmp_threads = max(1, available_cpus() // workers)
    tune_malloc()

    def run(item: T) -> R:
        limit_openmp_threads(openmp_threads)
        return fn(item)

    with (
        blas_threads(openmp_threads),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-score") as pool,
    ):
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(run, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
