"""Run a producer (read + parse) one step ahead of its consumer (score + write) in a background thread.

S3 reads, numpy and scikit-learn's tree traversal release the GIL, so parsing the next chunk overlaps
with scoring the current one. At most `depth` finished items wait in the queue, so memory stays a small
multiple of one chunk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterable[T], depth: int = 1) -> Generator[T, None, None]:
    """depth 0: no thread, plain iteration."""
    if depth <= 0:
        yield from items
        return
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator releases what it holds (an open stream) in this thread
                close()

    worker = threading.Thread(target=produce, name="batch-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()
