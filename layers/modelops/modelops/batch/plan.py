"""Split a run's input into parts, and decide between one invocation and a Step Functions fan-out.

Threshold (documented choice): a run whose input totals at most MODELOPS_BATCH_INLINE_MAX_BYTES
(default 1 GiB, about 4.5 million rows of 30 float features) is scored inside the scheduled
invocation. The benchmark measures about 50 MB/s (HistGradientBoosting) to 70-100 MB/s (logistic
regression) end to end on a 2-core machine, so 1 GiB takes well under a minute there, leaving most of
Lambda's 15-minute limit as margin for a slow S3 link or a model tens of times slower to predict.
Larger inputs fan out with a Distributed Map: one child per object, and objects larger than
MODELOPS_BATCH_PART_BYTES (default 256 MiB) are split into byte ranges; each range owns the lines
that start inside it. All parts use the same per-chunk worker code; a commit step runs last.

A Parquet object (.parquet, .parq: compressed inside, by column chunk) is cut by row groups instead: a
part is a run of whole row groups of about MODELOPS_BATCH_PART_BYTES compressed, read from the object's
footer at planning time. Since every row group's first row number is in the footer, a Parquet object is
split with or without id columns. For the inline threshold it counts at PARQUET_EXPANSION times its size:
the benchmark's 30 random four-decimal floats take 150 bytes a row with snappy and 78 with zstd against
210 as CSV text, and the rows, not the bytes, set the scoring time.

Byte ranges need a plain object: a gzip stream can only be read from its start, so a .csv.gz or .jsonl.gz
object is always one part (one child of the fan-out), however large. For the same reason the inline
threshold counts a gzip object at GZIP_EXPANSION times its size (the benchmark's random four-decimal
numbers compress 2.5x, repetitive exports 10x and more). A run without id columns also plans whole
objects, since its predictions carry absolute line numbers that a later byte range cannot know. Zero-byte objects (empty part files of Spark and Hive) are not planned at all; the
manifest lists them as skipped.

Byte ranges exist only for the fan-out. A run scored in one process (inline, or `modelops batch run`)
streams each object in one pass: splitting it there would add a GET, a ramp-up and a tail per range and
buy nothing, since the ranges would be scored one after the other anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.errors import InputError
from .readers import PARQUET, compression_of, format_of
from .store import ObjectInfo

INLINE = "inline"
FANOUT = "fanout"
GZIP_EXPANSION = 4
PARQUET_EXPANSION = 2


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
                f"{o.key}: unsupported input object (expected .csv with a header, .jsonl or .parquet; the "
                "first two may be gzip-compressed, .csv.gz or .jsonl.gz)",
                field="input",
            )
    return data


def without_empty(objects: list[ObjectInfo], folder_uri: str) -> tuple[list[ObjectInfo], list[dict[str, Any]]]:
    """(objects with data, skipped zero-byte objects as manifest entries); an error if nothing is left."""
    empty = [o for o in objects if o.size == 0]
    data = [o for o in objects if o.size > 0]
    if not data:
        raise InputError(
            f"every input object under {folder_uri} is empty ({len(empty)} zero-byte object(s)): nothing to score",
            field="input",
        )
    return data, [{"key": o.key, "etag": o.etag, "size": 0, "reason": "empty object (0 bytes)"} for o in empty]


def plan_parts(
    objects: list[ObjectInfo],
    part_bytes: int | None,
    row_group_bytes: int | None = None,
    row_groups: Callable[[ObjectInfo], list[Any]] | None = None,
) -> list[dict[str, Any]]:
    """One part per object, or per byte range of at most part_bytes (None: whole objects). A Parquet object
    is one part, or with row_group_bytes one part per run of whole row groups of about that many compressed
    bytes; row_groups(o) lists its row groups (batch.parquet.RowGroup)."""
    parts: list[dict[str, Any]] = []
    for o in objects:
        if format_of(o.key) == PARQUET:
            groups = row_groups(o) if row_group_bytes and row_groups is not None else None
            for n, span in enumerate(group_spans(groups, row_group_bytes or 0) if groups else [None]):
                part = {
                    "index": len(parts),
                    "key": o.key,
                    "etag": o.etag,
                    "size": o.size,
                    "format": PARQUET,
                    "compression": None,
                    "start": 0,
                    "end": o.size,
                    "piece": n,
                }
                if span is not None:
                    part["row_groups"], part["rows"] = [span[0], span[1]], span[2]
                parts.append(part)
            continue
        compression = compression_of(o.key)
        step = (part_bytes if compression is None else None) or max(o.size, 1)
        starts = range(0, max(o.size, 1), step)
        for n, start in enumerate(starts):
            parts.append(
                {
                    "index": len(parts),
                    "key": o.key,
                    "etag": o.etag,
                    "size": o.size,
                    "format": format_of(o.key),
                    "compression": compression,
                    "start": start,
                    "end": min(o.size, start + step),
                    "piece": n,
                }
            )
    return parts


def group_spans(groups: list[Any], target_bytes: int) -> list[tuple[int, int, int]]:
    """(first, stop, rows) runs of whole row groups, each closed once it holds target_bytes or more."""
    spans: list[tuple[int, int, int]] = []
    first = held = rows = 0
    for g in groups:
        held, rows = held + g.compressed_bytes, rows + g.rows
        if held >= target_bytes:
            spans.append((first, g.index + 1, rows))
            first, held, rows = g.index + 1, 0, 0
    if first < len(groups) or not spans:
        spans.append((first, len(groups), rows))
    return spans


def work_bytes(o: ObjectInfo) -> int:
    """The bytes to parse: a gzip object's size is estimated from its compressed size."""
    if format_of(o.key) == PARQUET:
        return o.size * PARQUET_EXPANSION
    return o.size * GZIP_EXPANSION if compression_of(o.key) else o.size


def choose_mode(objects: list[ObjectInfo], inline_max_bytes: int) -> str:
    return INLINE if sum(work_bytes(o) for o in objects) <= inline_max_bytes else FANOUT
