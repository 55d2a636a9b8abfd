"""Online data capture: compact JSON lines on stdout for every answered request, when MODELOPS_CAPTURE=on.

Lambda ships stdout to CloudWatch Logs; a subscription filter on { $.capture IS TRUE } and a Firehose
stream deliver the lines to S3, where drift, quality and A/B monitoring read them (the record is built by
modelops.capture.records.capture_record, as every capture writer builds it). The request path pays for one orjson.dumps of the record's
other fields and one write: rows sent as `instances` are written as the client's own JSON text of that
array (instances_text: only when the body is exactly {"instances": [...]} on one line, so the text is the
very array that was validated), else serialised from the parsed rows. Readers parse the line as JSON, so
both give the same record; "instances" then comes last.

Line shape:
    {"capture": true, "at": <epoch milliseconds>, "request_id": "...", "model_name": "...",
     "model_version": "...", "variant": "A", "status": 200,
     "instances": [{"<feature>": value, ...}, ...], "predictions": [...],
     "scores": [<positive-class probability per row>]          (binary classifiers)
     "probabilities": [[<p per class>], ...], "classes": [...] (classifiers with more classes)}

Size bound: a CloudWatch Logs event holds at most 256 KB (262,144 bytes with 26 bytes of overhead per event),
and Lambda truncates longer stdout lines, so a request whose line would exceed MODELOPS_CAPTURE_MAX_BYTES
(default 200,000 bytes, measured on the serialised line) is written as several lines: each is a complete
capture record for a slice of the rows, with the same request id and
    "part": <1-based index>, "parts": <count>, "row_offset": <index of its first row>, "rows": <rows in the request>
modelops.capture.records puts the parts back together. A single row too large for a line of its own is recorded
without its inputs ("instances" left out) and with "truncated": [{"row": <index>, "reason": "..."}]; the
request's EMF metrics line counts such rows (CaptureRowsDropped) and requests (CapturesTruncated).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import orjson

from ..capture.records import capture_record
from ..core import env as settings
from .model_holder import ServedModel
from .service import Prediction

DEFAULT_MAX_LINE_BYTES = 200_000
MIN_MAX_LINE_BYTES = 1_024  # room for the record's own fields and a row of a few dozen features
_OPTS = orjson.OPT_SERIALIZE_NUMPY
_PART_PLACEHOLDER = 10**7  # wider than any part, count or row index a request can have (<= 10,000 rows)
_INSTANCES_ONLY = re.compile(r'\s*\{\s*"instances"\s*:')  # the body's opening, up to its first value


def capture_enabled(env: Mapping[str, str] | None = None) -> bool:
    return settings.flag("MODELOPS_CAPTURE", False, env=env)


def max_line_bytes(env: Mapping[str, str] | None = None) -> int:
    """MODELOPS_CAPTURE_MAX_BYTES, default 200,000, at least 1,024 (a ConfigError otherwise)."""
    return settings.integer("MODELOPS_CAPTURE_MAX_BYTES", DEFAULT_MAX_LINE_BYTES, minimum=MIN_MAX_LINE_BYTES, env=env)


@dataclass(frozen=True)
class CaptureStats:
    """What one request's capture could not keep (both 0 when every row was written in full)."""

    lines: int = 0
    rows_dropped: int = 0  # rows written without their inputs

    @property
    def truncated(self) -> int:
        return int(self.rows_dropped > 0)


def _instances(model: ServedModel, prediction: Prediction, payload: Any) -> list[dict[str, Any]]:
    rows = payload.get("instances") if isinstance(payload, dict) else None
    if isinstance(rows, list):
        return rows  # already validated against the schema: exactly the model's features
    names = model.schema.names
    return [dict(zip(names, values, strict=True)) for values in prediction.matrix.tolist()]


def instances_text(body: Any, payload: Any) -> str | None:
    """The JSON text of the body's `instances` array as the client sent it, or None when it cannot be cut out
    with single-character scans (cheaper than serialising the rows again). The body parsed, so it is valid
    JSON; it must open with the key "instances" and an array, hold no line break (the array becomes part of
    a one-line record) and exactly one "]", followed only by the closing brace. That "]" closes the first
    member's array, so the object has that one member (with a duplicate key the parser keeps the last, and
    the text's first would never have been validated): the text is the array that was validated. Bodies
    with other members, or a "]" inside a string, are serialised from the parsed rows instead."""
    if type(body) is not str or not isinstance(payload, dict) or len(payload) != 1 or "instances" not in payload:
        return None
    opening = _INSTANCES_ONLY.match(body)
    if opening is None or "\n" in body or "\r" in body:
        return None
    start = opening.end()
    close = body.find("]", start)
    if close < 0 or close != body.rfind("]") or body[close + 1 :].strip() != "}":
        return None
    text = body[start : close + 1].lstrip()
    return text if text.startswith("[") else None


def _spliced_line(record: dict[str, Any], instances: str, max_bytes: int) -> str | None:
    """The record's line (newline included: the text is copied once) with the client's instances text as its
    last field; None when it would exceed max_bytes (the record is then split as usual)."""
    head = orjson.dumps({k: v for k, v in record.items() if k != "instances"}, option=_OPTS)
    size = len(head) + len(instances) + 14  # ,"instances": and the closing brace
    if size > max_bytes or (not instances.isascii() and size - len(instances) + len(instances.encode()) > max_bytes):
        return None
    return f'{head[:-1].decode()},"instances":{instances}}}\n'


def _record(
    model: ServedModel,
    prediction: Prediction,
    payload: Any,
    request_id: str,
    variant: str,
    entity_id: str | None,
    latency_ms: float | None,
    rows: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """The whole capture record (without "instances" when not `rows`), and the names of its per-row lists."""
    probabilities = prediction.probabilities
    per_row = ["instances", "predictions"]
    scores = per_class = classes = None
    if probabilities is not None:
        if probabilities.shape[1] == 2:
            scores = probabilities[:, 1].tolist()
            per_row.append("scores")
        else:
            # orjson serialises C-ordered arrays only; HistGradientBoosting's multi-class output is Fortran-ordered
            per_class, classes = np.ascontiguousarray(probabilities), model.class_keys
            per_row.append("probabilities")
    record = capture_record(
        request_id=request_id,
        model_version=model.model_ref["version"],
        at_ms=int(time.time() * 1000),
        variant=variant,
        predictions=prediction.predictions,
        model_name=model.model_ref["name"],
        instances=_instances(model, prediction, payload) if rows else None,
        entity_id=entity_id,
        latency_ms=latency_ms,
        scores=scores,
        probabilities=per_class,
        classes=classes,
    )
    return record, per_row


def capture_lines(
    model: ServedModel,
    prediction: Prediction,
    payload: Any,
    request_id: str,
    variant: str,
    entity_id: str | None = None,
    latency_ms: float | None = None,
    max_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> tuple[list[bytes], CaptureStats]:
    """The request's capture as lines of at most max_bytes each (one line when it fits)."""
    record, per_row = _record(model, prediction, payload, request_id, variant, entity_id, latency_ms)
    line = orjson.dumps(record, option=_OPTS)
    if len(line) <= max_bytes:
        return [line], CaptureStats(lines=1)
    return _split(record, per_row, max_bytes)


def _split(record: dict[str, Any], per_row: list[str], max_bytes: int) -> tuple[list[bytes], CaptureStats]:
    rows = len(record["predictions"])
    header = {k: v for k, v in record.items() if k not in per_row}
    header.update(part=_PART_PLACEHOLDER, parts=_PART_PLACEHOLDER, row_offset=_PART_PLACEHOLDER, rows=rows)
    empty = orjson.dumps({**header, **{k: [] for k in per_row}}, option=_OPTS)
    # Each row adds its serialised items to the lists, plus one comma per list after the first row.
    sizes = [sum(len(orjson.dumps(record[k][i], option=_OPTS)) for k in per_row) for i in range(rows)]
    room = max_bytes - len(empty)
    slices: list[tuple[int, int]] = []  # [start, stop) of each part; a lone row that does not fit is its own part
    start, used = 0, 0
    for i, size in enumerate(sizes):
        extra = size + (len(per_row) if i > start else 0)
        if i > start and used + extra > room:
            slices.append((start, i))
            start, used, extra = i, 0, size
        used += extra
    slices.append((start, rows))
    lines: list[bytes] = []
    dropped = 0
    for part, (lo, hi) in enumerate(slices, start=1):
        piece = {**header, "part": part, "parts": len(slices), "row_offset": lo}
        piece.update({k: record[k][lo:hi] for k in per_row})
        line = orjson.dumps(piece, option=_OPTS)
        if len(line) > max_bytes:  # one row alone is too large: keep its outputs, record why its inputs are missing
            del piece["instances"]
            piece["truncated"] = [
                {"row": lo, "reason": f"row of {sizes[lo]} bytes does not fit a capture line of {max_bytes} bytes"}
            ]
            line = orjson.dumps(piece, option=_OPTS)
            if len(line) > max_bytes:  # its outputs do not fit either: keep only the marker of the lost row
                for k in per_row:
                    piece.pop(k, None)
                piece["predictions"] = []
                line = orjson.dumps(piece, option=_OPTS)
            dropped += 1
        lines.append(line)
    return lines, CaptureStats(lines=len(lines), rows_dropped=dropped)


def emit_capture(
    model: ServedModel,
    prediction: Prediction,
    payload: Any,
    request_id: str,
    variant: str,
    stream: IO[str] | None = None,
    entity_id: str | None = None,
    latency_ms: float | None = None,
    max_bytes: int = DEFAULT_MAX_LINE_BYTES,
    body: Any = None,
) -> CaptureStats:
    """Write the request's capture; `body` is the request body text, whose instances array is written as is
    when instances_text can cut it out."""
    out = stream or sys.stdout
    text = instances_text(body, payload)
    if text is not None:
        record, _ = _record(model, prediction, None, request_id, variant, entity_id, latency_ms, rows=False)
        line = _spliced_line(record, text, max_bytes)
        if line is not None:
            out.write(line)
            return CaptureStats(lines=1)
    lines, stats = capture_lines(model, prediction, payload, request_id, variant, entity_id, latency_ms, max_bytes)
    for encoded in lines:
        out.write(encoded.decode() + "\n")
    return stats


def emit_failure(
    request_id: str, variant: str, model_version: str, status: int, latency_ms: float, stream: IO[str] | None = None
) -> None:
    """A capture line for a request that failed on the server side (no instances: drift monitoring skips it)."""
    record = capture_record(
        request_id=request_id,
        model_version=model_version,
        at_ms=int(time.time() * 1000),
        variant=variant,
        status=status,
        predictions=[],
        latency_ms=latency_ms,
    )
    (stream or sys.stdout).write(orjson.dumps(record).decode() + "\n")
