"""Day partitions under a data prefix (<dir>/date=YYYY-MM-DD/...), the times that name them, and bounded
newest-first reads over what they hold."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

from ..core.clock import utc
from ..ports import ObjectStore


def partition_key(prefix: str, directory: str, ts: float, name: str) -> str:
    day = utc(ts).strftime("%Y-%m-%d")
    return "/".join(p for p in (prefix, directory, f"date={day}", name) if p)


def list_partitions(
    store: ObjectStore, prefix: str, directory: str, since: float | None, until: float | None
) -> Iterator[str]:
    """Keys under <prefix>/<directory>/date=.../, skipping whole days outside [since, until]."""
    base = "/".join(p for p in (prefix, directory) if p) + "/"
    start_after = None
    if since is not None:  # keys sort by day, so start listing at the first day that can match
        start_after = f"{base}date={(utc(since).date() - timedelta(days=1)).isoformat()}/~"
    last_day = utc(until).date() if until is not None else None
    for obj in store.list(base, start_after=start_after):
        day = _day_of(obj.key[len(base) :])
        if last_day is not None and day is not None and day > last_day:
            return
        yield obj.key


def data_store(bucket: str | ObjectStore, s3: Any = None) -> ObjectStore:
    """The store behind a data prefix: an S3 bucket name, a local directory, or a store given as is."""
    if not isinstance(bucket, str):
        return bucket
    from ..adapters.objectstore import open_bucket  # here: the predict function writes capture records, never reads

    return open_bucket(bucket, s3)


def _day_of(rest: str) -> date | None:
    if not rest.startswith("date="):
        return None
    try:
        return date.fromisoformat(rest[5:15])
    except ValueError:
        return None


DEFAULT_MAX_RECORDS = 100_000  # per kind (captured requests, feedback records) in one window; docs/lifecycle.md


def newest(records: Iterable[Any], limit: int | None) -> tuple[list[Any], int]:
    """The `limit` newest records by `at` (a heap of that size: memory stays bounded however many are read),
    oldest first, and the number of older records dropped. limit None or 0: all of them."""
    if not limit:
        return sorted(records, key=lambda r: r.at), 0
    heap: list[tuple[float, int, Any]] = []
    dropped = 0
    for seq, record in enumerate(records):
        entry = (record.at, seq, record)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        else:
            heapq.heappushpop(heap, entry)  # drops the oldest of the limit + 1
            dropped += 1
    return [e[2] for e in sorted(heap, key=lambda e: (e[0], e[1]))], dropped
