"""Split a run's input into parts, and decide between one invocation and a Step Functions fan-out.

Threshold (documented choice): a run whose input totals at most MODELOPS_BATCH_INLINE_MAX_BYTES
(default 1 GiB, about 4.5 million rows of 30 float features) is scored inside the scheduled
invocation. The benchmark measures about 50 MB/s (HistGradientBoosting) to 70-100 MB/s (logistic
regression) end to end on a 2-core machine, so 1 GiB takes well under a minute there, leaving most of
Lambda's 15-minute limit as margin for a slow S3 link or a model tens of times slower to predict.
Larger inputs fan out with a Distributed Map: one child per object, and objects larger than
MODELOPS_BATCH_PART_BYTES (default 256 MiB) are split into byte ranges; each range owns the lines
that start inside it. All parts use the same per-chunk worker code; a commit step runs last.

Byte ranges exist only for the fan-out. A run scored in one process (inline, or `modelops batch run`)
streams each object in one pass: splitting it there would add a GET, a ramp-up and a tail per range and
buy nothing, since the ranges would be scored one after the other anyway.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .readers import format_of
from .store import ObjectInfo

INLINE = "inline"
FANOUT = "fanout"


def is_marker(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return not name or name.startswith(("_", "."))


def input_objects(objects: list[ObjectInfo], folder_uri: str) -> list[ObjectInfo]:
    data = sorted((o for o in objects if not is_marker(o.key)), key=lambda o: o.key)
    if not data:
        raise InputError(f"no input objects under {folder_uri}: nothing to score", field="input")
    for o in data:
        if format_of(o.key) is None:
            raise InputError(
                f"{o.key}: unsupported input object (expected .csv with a header, or .jsonl)", field="input"
            )
    return data


def plan_parts(objects: list[ObjectInfo], part_bytes: int | None) -> list[dict[str, Any]]:
    """One part per object, or per byte range of at most part_bytes (None: whole objects)."""
    parts: list[dict[str, Any]] = []
    for o in objects:
        step = part_bytes or max(o.size, 1)
        starts = range(0, max(o.size, 1), step)
        for n, start in enumerate(starts):
            parts.append(
                {
                    "index": len(parts),
                    "key": o.key,
                    "etag": o.etag,
                    "size": o.size,
                    "format": format_of(o.key),
                    "start": start,
                    "end": min(o.size, start + step),
                    "piece": n,
                }
            )
    return parts


def choose_mode(objects: list[ObjectInfo], inline_max_bytes: int) -> str:
    return INLINE if sum(o.size for o in objects) <= inline_max_bytes else FANOUT
