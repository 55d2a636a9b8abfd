"""The capture record: the line the predict function logs for each answered request, read back from the data
prefix and put back together when it was split.

Layout under s3://<bucket>/<prefix> (or a local directory):
    captures/date=YYYY-MM-DD/<any name>
        prediction records as JSON lines (optionally gzip, or CloudWatch Logs subscription envelopes as
        delivered by Firehose). The predict function logs one per request (see prediction_record):
        {"capture": true, "request_id", "at", "variant", "model_version", "entity_id", "status",
         "latency_ms", "instances", "predictions", "scores"}
        A large request's capture comes as several lines, each a slice of its rows with "part", "parts",
        "row_offset" and "rows" (modelops.serving.capture); merge_parts puts them back together.

Module API:
    log = PredictionLog(bucket, prefix)
    log.append([prediction_record(...), ...])            # one object per batch (tests, local demo)
    log.read(since=None, until=None) -> list[PredictionRecord]
    parse_records(data) -> Iterator[PredictionRecord]    # one delivered object"""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import parse_time
from ..core.errors import InputError
from ..ports import ObjectStore
from .partitions import data_store, list_partitions, newest, partition_key

CAPTURE_DIR = "captures"
MAX_ROWS = 10_000


@dataclass
class PredictionRecord:
    request_id: str
    at: float
    model_version: str
    variant: str = "A"
    entity_id: str | None = None
    status: int = 200
    latency_ms: float | None = None
    predictions: list[Any] = field(default_factory=list)
    scores: list[float] | None = None
    instances: list[dict[str, Any] | None] | None = None  # None for a row whose inputs were not captured
    part: int | None = None  # one slice of a capture written as several lines (1-based), see merge_parts
    parts: int | None = None
    row_offset: int = 0
    rows: int | None = None
    truncated: list[dict[str, Any]] | None = None  # rows captured without their inputs, and why
    probabilities: list[Any] | None = None  # per row, one probability per class (classifiers with more classes)
    classes: list[Any] | None = None  # the classes those probabilities are in the order of
    lost_rows: list[int] = field(default_factory=list)  # rows of a merged capture whose part never arrived


MARKER = "capture"  # the field that makes a log line a capture record (the log subscription filters on it)


def capture_record(
    *,
    request_id: str,
    model_version: str,
    at_ms: int,
    variant: str = "A",
    status: int = 200,
    predictions: Any = (),
    model_name: str | None = None,
    instances: Any = None,
    entity_id: str | None = None,
    latency_ms: float | None = None,
    scores: Any = None,
    probabilities: Any = None,
    classes: Any = None,
) -> dict[str, Any]:
    """The capture record, the one shape every writer uses (the predict function's capture and failure lines,
    and the tests' and the local demo's logs); parse_records reads it back. Per-row lists may be numpy arrays
    (the predict function serialises them with orjson). A field given as None is left out, except `instances`:
    None there means the rows were not captured with the record (they follow in the same line or are split)."""
    record: dict[str, Any] = {MARKER: True, "at": at_ms, "request_id": request_id}
    if model_name is not None:
        record["model_name"] = model_name
    record.update(model_version=model_version, variant=variant, status=status)
    if instances is not None:
        record["instances"] = instances
    record["predictions"] = predictions
    if entity_id is not None:  # A/B: lets feedback that names only the entity find this prediction
        record["entity_id"] = entity_id
    if latency_ms is not None:  # handler time up to the prediction (A/B latency per variant)
        record["latency_ms"] = round(float(latency_ms), 3)
    if scores is not None:
        record["scores"] = scores
    if probabilities is not None:
        record.update(probabilities=probabilities, classes=classes)
    return record


def prediction_record(
    *,
    request_id: str,
    model_version: str,
    variant: str = "A",
    entity_id: str | None = None,
    status: int = 200,
    latency_ms: float | None = None,
    predictions: Sequence[Any] = (),
    scores: Sequence[float] | None = None,
    instances: Sequence[dict[str, Any]] | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    """One capture line (a dict ready for JSON) describing a served request at `at` (epoch seconds, default now)."""
    return capture_record(
        request_id=request_id,
        model_version=model_version,
        at_ms=round((time.time() if at is None else at) * 1000),
        variant=variant,
        status=status,
        predictions=list(predictions),
        instances=list(instances) if instances is not None else None,
        entity_id=entity_id,
        latency_ms=latency_ms,
        scores=list(scores) if scores is not None else None,
    )


def _record_from(obj: Any, malformed: Callable[[], None] | None = None) -> PredictionRecord | None:
    """The prediction record in one decoded line, or None when it is not a capture record; a capture record of
    the wrong shape (a field of the wrong type, no request id) is skipped too, and reported to `malformed`."""
    try:
        return _parse_record(obj)
    except (ValueError, TypeError, AttributeError, OverflowError):
        if malformed is not None:
            malformed()
        return None


def _parse_record(obj: Any) -> PredictionRecord | None:
    if not isinstance(obj, dict):
        return None
    if "capture" not in obj:
        message = obj.get("message")  # nested in a structured log line
        if isinstance(message, dict):
            return _parse_record(message)
        if isinstance(message, str) and message.startswith("{"):
            try:
                nested = json.loads(message)
            except ValueError:  # an ordinary log message
                return None
            return _parse_record(nested)
        return None
    request_id = obj.get("request_id")
    version = obj.get("model_version") or (obj.get("model") or {}).get("version")
    if not request_id or not version:
        raise ValueError("a capture record without request_id or model_version")
    scores = obj.get("scores")
    if scores is None and isinstance(obj.get("probabilities"), list) and obj["probabilities"]:
        first = obj["probabilities"][0]
        if isinstance(first, dict):
            last = list(first)[-1]
            scores = [float(p[last]) for p in obj["probabilities"]]
        elif isinstance(first, list):
            scores = [float(p[-1]) for p in obj["probabilities"]]
    try:
        at = parse_time(obj.get("at") or obj.get("ts") or obj.get("timestamp") or 0)
    except InputError:
        raise ValueError("a capture record without a readable time") from None
    return PredictionRecord(
        request_id=str(request_id),
        at=at,
        model_version=str(version),
        variant=str(obj.get("variant") or "A"),
        entity_id=obj.get("entity_id"),
        status=int(obj.get("status") or 200),
        latency_ms=obj.get("latency_ms"),
        predictions=list(obj.get("predictions") or []),
        scores=scores,
        instances=obj.get("instances"),
        probabilities=obj["probabilities"] if isinstance(obj.get("probabilities"), list) else None,
        classes=obj["classes"] if isinstance(obj.get("classes"), list) else None,
        part=_count(obj.get("part")),
        parts=_count(obj.get("parts")),
        row_offset=_count(obj.get("row_offset")) or 0,
        rows=_count(obj.get("rows")),
        truncated=obj.get("truncated") if isinstance(obj.get("truncated"), list) else None,
    )


def _count(value: Any) -> int | None:
    """A part number, part count, row offset or row count: at most MAX_ROWS (a request's row bound), so a forged
    line cannot make merge_parts allocate for more rows than a request can have."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ROWS
    return value if ok else None


def merge_parts(records: Iterable[PredictionRecord]) -> list[PredictionRecord]:
    """One record per request: the parts of a capture written as several lines become one record with every
    row at its index (rows of a missing part are listed in lost_rows, a row captured without its inputs has
    None in instances). Records that are not parts pass through unchanged, in their order."""
    out: list[PredictionRecord] = []
    groups: dict[tuple[str, str], list[PredictionRecord]] = {}
    for record in records:
        if record.parts is None or record.part is None:
            out.append(record)
            continue
        key = (record.request_id, record.model_version)
        if key not in groups:
            groups[key] = []
            out.append(record)  # placeholder at the first part's position
        groups[key].append(record)
    merged = {key: _merge(parts) for key, parts in groups.items()}
    return [merged[(r.request_id, r.model_version)] if r.parts is not None and r.part is not None else r for r in out]


def _merge(parts: list[PredictionRecord]) -> PredictionRecord:
    by_part = {p.part or 0: p for p in parts}  # a part delivered twice counts once
    first = by_part[min(by_part)]
    total = max([p.rows or 0 for p in parts] + [p.row_offset + len(p.predictions) for p in parts])
    predictions: list[Any] = [None] * total
    scores: list[Any] | None = [None] * total if any(p.scores is not None for p in parts) else None
    probabilities: list[Any] | None = [None] * total if any(p.probabilities is not None for p in parts) else None
    instances: list[Any] | None = [None] * total if any(p.instances is not None for p in parts) else None
    present = [False] * total
    truncated: list[dict[str, Any]] = []
    for p in sorted(by_part.values(), key=lambda p: p.row_offset):
        lo = p.row_offset
        for i, value in enumerate(p.predictions):
            predictions[lo + i] = value
            present[lo + i] = True
        if scores is not None and p.scores is not None:
            scores[lo : lo + len(p.scores)] = p.scores
        if probabilities is not None and p.probabilities is not None:
            probabilities[lo : lo + len(p.probabilities)] = p.probabilities
        if instances is not None and p.instances is not None:
            instances[lo : lo + len(p.instances)] = p.instances
        truncated.extend(p.truncated or [])
    return PredictionRecord(
        request_id=first.request_id,
        at=first.at,
        model_version=first.model_version,
        variant=first.variant,
        entity_id=first.entity_id,
        status=first.status,
        latency_ms=first.latency_ms,
        predictions=predictions,
        scores=scores,
        instances=instances,
        probabilities=probabilities,
        classes=first.classes,
        rows=total,
        truncated=truncated or None,
        lost_rows=[i for i, ok in enumerate(present) if not ok],
    )


def parse_records(data: bytes, malformed: Callable[[], None] | None = None) -> Iterator[PredictionRecord]:
    """Prediction records in one delivered object: JSON lines (or concatenated JSON), optionally gzip, or
    CloudWatch Logs subscription envelopes; anything that is not a capture line is skipped. The parts of a
    capture split over several lines come one by one (merge_parts joins them). `malformed` is called once for
    each line that is not JSON and each capture record of the wrong shape (both skipped)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos] in " \r\n\t":
            pos += 1
        if pos >= len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl + 1
            if malformed is not None:
                malformed()
            continue
        if isinstance(obj, dict) and isinstance(obj.get("logEvents"), list):
            for event in obj["logEvents"]:
                message = str(event.get("message", ""))
                start = message.find("{")
                if start < 0:
                    continue
                try:
                    record = _record_from(json.loads(message[start:]), malformed)
                except ValueError:
                    record = None
                if record:
                    yield record
        else:
            record = _record_from(obj, malformed)
            if record:
                yield record


class PredictionLog:
    """Reads captured prediction records (and writes them in batches, for tests and the local demo)."""

    def __init__(self, bucket: str | ObjectStore, prefix: str = "", s3: Any = None):
        self.store = data_store(bucket, s3)
        self.bucket = self.store.bucket
        self.prefix = prefix.strip("/")
        self.malformed = 0  # lines skipped by the reads so far: not JSON, or a capture record of the wrong shape

    @property
    def s3(self) -> Any:
        """The boto3 client of an S3 store."""
        return getattr(self.store, "s3", None)

    def _count_malformed(self) -> None:
        self.malformed += 1

    def append(self, records: Iterable[dict[str, Any]]) -> str | None:
        lines = [json.dumps(r) for r in records]
        if not lines:
            return None
        key = partition_key(
            self.prefix, CAPTURE_DIR, time.time(), f"{time.time_ns():020d}-{secrets.token_hex(6)}.jsonl"
        )
        self.store.put(key, ("\n".join(lines) + "\n").encode(), content_type="application/x-ndjson", if_none_match=True)
        return key

    def records(self, since: float | None = None, until: float | None = None) -> Iterator[PredictionRecord]:
        """Prediction records (capture lines) in [since, until], one delivered object at a time, in listing order."""
        for key in list_partitions(self.store, self.prefix, CAPTURE_DIR, since, until):
            body, _ = self.store.get(key)
            yield from (
                r
                for r in parse_records(body, self._count_malformed)
                if (since is None or r.at >= since) and (until is None or r.at <= until)
            )

    def read(self, since: float | None = None, until: float | None = None) -> list[PredictionRecord]:
        """Every captured request in the window, oldest first, a capture split over several lines as one record."""
        return merge_parts(sorted(self.records(since, until), key=lambda r: r.at))

    def read_newest(
        self, since: float | None = None, until: float | None = None, limit: int | None = None
    ) -> tuple[list[PredictionRecord], int]:
        """At most `limit` capture lines, the newest (oldest first, parts of one capture merged), and how many
        older ones were dropped."""
        kept, dropped = newest(self.records(since, until), limit)
        return merge_parts(kept), dropped
