"""Ground truth ("feedback") stored append-only in S3, and its join to the predictions that were served.

Layout under s3://<bucket>/<prefix> (or a local directory; modelops.adapters.objectstore):
    feedback/date=YYYY-MM-DD/<epoch-ns>-<random>.json
        one feedback record per object, written with If-None-Match so nothing is ever overwritten:
        {"at", "request_id", "entity_id", "row", "actual", "feedback_id", "writer"}
        writer: who stored the label (the API key id, or the IAM caller, that POST /feedback was called with);
        null in records written before it was recorded and in labels stored without an API
    captures/date=YYYY-MM-DD/<any name>
        prediction records as JSON lines (optionally gzip, or CloudWatch Logs subscription envelopes as
        delivered by Firehose). The predict function logs one per request (see prediction_record):
        {"capture": true, "request_id", "at", "variant", "model_version", "entity_id", "status",
         "latency_ms", "instances", "predictions", "scores"}
        A large request's capture comes as several lines, each a slice of its rows with "part", "parts",
        "row_offset" and "rows" (modelops.serving.capture); PredictionLog.read and join put them back together.

Module API (for the A/B report and for quality monitoring):
    store = FeedbackStore(bucket, prefix)                # s3= to pass a client; or an ObjectStore for bucket
    store.append(actual, request_id=..., entity_id=..., row=None, writer=None) -> FeedbackRecord
    store.read(since=None, until=None) -> list[FeedbackRecord]     # oldest first
    store.read_newest(since, until, limit) -> (records, dropped)   # bounded: the newest `limit` only
    log = PredictionLog(bucket, prefix)
    log.append([prediction_record(...), ...])            # one object per batch (tests, local demo)
    log.read(since=None, until=None) -> list[PredictionRecord]
    join(predictions, feedback) -> list[LabelledRow]     # one row per labelled prediction row
    labelled_rows(bucket, prefix, since=None) -> list[LabelledRow]   # read both and join
    read_window(bucket, prefix, since, until, max_records) -> Window # both bounded, and their join

Join rules: feedback naming a request_id labels that request's row `row` (default: every row when
`actual` is a list, else row 0). Feedback naming only an entity_id labels the latest prediction for that
entity made before the feedback arrived. POST /feedback stores request_id for every label (from its label token,
modelops.capture.labeltoken), so a label through the API always names the served request. When several feedback records label the same row, the latest wins
(so a correction is just another append).
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..adapters.objectstore import ObjectStore, open_bucket
from ..core.errors import InputError
from .labeltoken import LabelGrant

FEEDBACK_DIR = "feedback"
CAPTURE_DIR = "captures"
MAX_ID_LENGTH = 256
MAX_ROWS = 10_000
TOKEN_MISMATCH = "label_token_mismatch"  # the body names another request or entity than its label_token


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def iso(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any, field_name: str = "since") -> float:
    """Epoch seconds from epoch seconds/milliseconds, an ISO date or time, or a relative '24h' / '7d' / '30m'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value).strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(text) > 1 and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"'{text}' is not a time: use ISO (2026-01-31 or 2026-01-31T12:00:00Z) or a relative "
            "age like 30m, 24h or 7d",
            field=field_name,
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _partition_key(prefix: str, directory: str, ts: float, name: str) -> str:
    day = utc(ts).strftime("%Y-%m-%d")
    return "/".join(p for p in (prefix, directory, f"date={day}", name) if p)


def _list_partitions(
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
    return bucket if not isinstance(bucket, str) else open_bucket(bucket, s3)


def _day_of(rest: str) -> date | None:
    if not rest.startswith("date="):
        return None
    try:
        return date.fromisoformat(rest[5:15])
    except ValueError:
        return None


# ---- feedback ---------------------------------------------------------------------------------
@dataclass
class FeedbackRecord:
    at: float
    actual: Any
    request_id: str | None = None
    entity_id: str | None = None
    row: int | None = None
    feedback_id: str = ""
    writer: str | None = None  # the API key id or principal that wrote the label; None in older records

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "at": iso(self.at)}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FeedbackRecord:
        raw = json.loads(data)
        return cls(
            at=parse_time(raw["at"]),
            actual=raw["actual"],
            request_id=raw.get("request_id"),
            entity_id=raw.get("entity_id"),
            row=raw.get("row"),
            feedback_id=raw.get("feedback_id", ""),
            writer=raw.get("writer"),
        )


def _label(value: Any, name: str) -> Any:
    if isinstance(value, bool) or value is None:
        raise InputError(f"'{name}' must be a number or a class label", field=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"'{name}' must be finite", field=name)
    if isinstance(value, str) and not (0 < len(value) <= MAX_ID_LENGTH):
        raise InputError(f"'{name}' must be 1 to {MAX_ID_LENGTH} characters", field=name)
    if not isinstance(value, (int, float, str)):
        raise InputError(f"'{name}' must be a number or a class label", field=name)
    return value


def _number(value: Any, name: str) -> float | int:
    """A regression label: a finite number (booleans, strings and numbers beyond a float's range refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"'{name}' must be a number: the model is a regressor", field=name)
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise InputError(f"'{name}' must be a finite number", field=name)
    return value


def _identifier(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"'{name}' must be a string", field=name)
    value = str(value)
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise InputError(f"'{name}' must be 1 to {MAX_ID_LENGTH} characters", field=name)
    return value


FIELDS = ("request_id", "entity_id", "row", "actual", "label_token")


def validate_feedback(
    body: Any,
    allowed_labels: Sequence[Any] | None = None,
    *,
    regression: bool = False,
    grant: LabelGrant | None = None,
) -> dict[str, Any]:
    """Check a POST /feedback body; returns keyword arguments for FeedbackStore.append.

    regression: the model is a regressor, so every `actual` must be a finite number.
    grant: what the body's verified label_token says was served (modelops.capture.labeltoken). The label is then
    bound to it: request_id defaults to the token's and must equal it, entity_id must be the token's entity
    (and is recorded from the token when not given), and `row` / a list of `actual` must fit its rows.
    """
    if not isinstance(body, dict):
        raise InputError('the body must be a JSON object like {"request_id": "...", "actual": ...}', field="body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InputError(f"unknown field '{unknown[0]}' (expected {', '.join(FIELDS)})", field=unknown[0])
    request_id = _identifier(body.get("request_id"), "request_id")
    entity_id = _identifier(body.get("entity_id"), "entity_id")
    if grant is not None:
        request_id, entity_id = _bound_ids(request_id, entity_id, grant)
    if request_id is None and entity_id is None:
        raise InputError(
            "give 'request_id' or 'entity_id' to say which prediction this feedback is for", field="request_id"
        )
    if "actual" not in body:
        raise InputError("'actual' is required: the true label or value", field="actual")
    actual = body["actual"]
    check = _number if regression else _label
    if isinstance(actual, list):
        if not 0 < len(actual) <= MAX_ROWS:
            raise InputError(f"'actual' must have 1 to {MAX_ROWS} values", field="actual")
        actual = [check(v, "actual") for v in actual]
    else:
        actual = check(actual, "actual")
    row = body.get("row")
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < MAX_ROWS):
        raise InputError(f"'row' must be an integer from 0 to {MAX_ROWS - 1}", field="row")
    if row is not None and isinstance(actual, list):
        raise InputError("'row' labels one row: give a single 'actual' value with it", field="row")
    if grant is not None:
        if row is not None and row >= grant.rows:
            raise InputError(
                f"'row' {row} was not served: the prediction had {grant.rows} row(s) (0 to {grant.rows - 1})",
                field="row",
                code="row_not_served",
            )
        if isinstance(actual, list) and len(actual) != grant.rows:
            raise InputError(
                f"'actual' has {len(actual)} values for a prediction of {grant.rows} row(s)",
                field="actual",
                code="row_not_served",
            )
    if allowed_labels is not None:
        allowed = {str(c) for c in allowed_labels}
        for value in actual if isinstance(actual, list) else [actual]:
            if str(value) not in allowed:
                raise InputError(
                    f"'actual' value {value!r} is not one of the model's classes ({', '.join(sorted(allowed))})",
                    field="actual",
                )
    return {"actual": actual, "request_id": request_id, "entity_id": entity_id, "row": row}


def _bound_ids(request_id: str | None, entity_id: str | None, grant: LabelGrant) -> tuple[str, str | None]:
    if request_id is not None and request_id != grant.request_id:
        raise InputError(
            "'request_id' is not the request this label_token was issued for", field="request_id", code=TOKEN_MISMATCH
        )
    if entity_id is not None and entity_id != grant.entity_id:
        raise InputError(
            "'entity_id' is not the entity this label_token was issued for: a label can only name the entity "
            "the prediction was served for",
            field="entity_id",
            code=TOKEN_MISMATCH,
        )
    return grant.request_id, grant.entity_id


class FeedbackStore:
    def __init__(self, bucket: str | ObjectStore, prefix: str = "", s3: Any = None):
        self.store = data_store(bucket, s3)
        self.bucket = self.store.bucket
        self.prefix = prefix.strip("/")

    @property
    def s3(self) -> Any:
        """The boto3 client of an S3 store."""
        return getattr(self.store, "s3", None)

    def append(
        self,
        actual: Any,
        *,
        request_id: str | None = None,
        entity_id: str | None = None,
        row: int | None = None,
        at: float | None = None,
        writer: str | None = None,
    ) -> FeedbackRecord:
        if request_id is None and entity_id is None:
            raise InputError("feedback needs a request_id or an entity_id", field="request_id")
        at = time.time() if at is None else at
        record = FeedbackRecord(
            at=at,
            actual=actual,
            request_id=request_id,
            entity_id=entity_id,
            row=row,
            feedback_id=f"{time.time_ns():020d}-{secrets.token_hex(6)}",
            writer=writer,
        )
        key = _partition_key(self.prefix, FEEDBACK_DIR, at, f"{record.feedback_id}.json")
        self.store.put(key, record.to_json(), content_type="application/json", if_none_match=True)
        return record

    def records(self, since: float | None = None, until: float | None = None) -> Iterator[FeedbackRecord]:
        """Feedback records in [since, until], one object at a time, in listing order."""
        for key in _list_partitions(self.store, self.prefix, FEEDBACK_DIR, since, until):
            body, _ = self.store.get(key)
            try:
                record = FeedbackRecord.from_json(body)
            except (ValueError, KeyError, TypeError):
                continue  # a foreign object in the prefix is not feedback
            if (since is None or record.at >= since) and (until is None or record.at <= until):
                yield record

    def read(self, since: float | None = None, until: float | None = None) -> list[FeedbackRecord]:
        return sorted(self.records(since, until), key=lambda r: r.at)

    def read_newest(
        self, since: float | None = None, until: float | None = None, limit: int | None = None
    ) -> tuple[list[FeedbackRecord], int]:
        """At most `limit` records, the newest (oldest first), and how many older ones were dropped."""
        return newest(self.records(since, until), limit)


# ---- predictions -------------------------------------------------------------------------------
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
    """One capture line (a dict ready for JSON) describing a served request."""
    record: dict[str, Any] = {
        "capture": True,
        "request_id": request_id,
        "at": iso(time.time() if at is None else at),
        "variant": variant,
        "model_version": model_version,
        "status": status,
        "predictions": list(predictions),
    }
    if entity_id is not None:
        record["entity_id"] = entity_id
    if latency_ms is not None:
        record["latency_ms"] = round(float(latency_ms), 3)
    if scores is not None:
        record["scores"] = list(scores)
    if instances is not None:
        record["instances"] = list(instances)
    return record


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
        key = _partition_key(
            self.prefix, CAPTURE_DIR, time.time(), f"{time.time_ns():020d}-{secrets.token_hex(6)}.jsonl"
        )
        self.store.put(key, ("\n".join(lines) + "\n").encode(), content_type="application/x-ndjson", if_none_match=True)
        return key

    def records(self, since: float | None = None, until: float | None = None) -> Iterator[PredictionRecord]:
        """Prediction records (capture lines) in [since, until], one delivered object at a time, in listing order."""
        for key in _list_partitions(self.store, self.prefix, CAPTURE_DIR, since, until):
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


# ---- bounded windows -------------------------------------------------------------------------------
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


@dataclass
class Window:
    """One bounded window of captured predictions and their labels."""

    captured: list[PredictionRecord]
    labelled: list[LabelledRow]
    dropped_captured: int = 0
    dropped_feedback: int = 0

    def counts(self) -> dict[str, int]:
        out = {"captured_requests": len(self.captured), "labelled_rows": len(self.labelled)}
        if self.dropped_captured or self.dropped_feedback:
            out.update(dropped_captured=self.dropped_captured, dropped_feedback=self.dropped_feedback)
        return out


def read_window(
    bucket: str | ObjectStore,
    prefix: str = "",
    since: float | None = None,
    until: float | None = None,
    max_records: int | None = DEFAULT_MAX_RECORDS,
    s3: Any = None,
) -> Window:
    """Captured predictions and feedback in [since, until], each kept to the newest max_records, and their join."""
    store = data_store(bucket, s3)
    captured, dropped_captured = PredictionLog(store, prefix).read_newest(since, until, max_records)
    labels, dropped_feedback = FeedbackStore(store, prefix).read_newest(since, until, max_records)
    return Window(captured, join(captured, labels), dropped_captured, dropped_feedback)


# ---- join ----------------------------------------------------------------------------------------
@dataclass
class LabelledRow:
    request_id: str
    row: int
    at: float
    variant: str
    model_version: str
    prediction: Any
    score: float | None
    actual: Any
    feedback_at: float
    entity_id: str | None = None
    features: dict[str, Any] | None = None
    writer: str | None = None  # who wrote the label (FeedbackRecord.writer)


def join(predictions: Iterable[PredictionRecord], feedback: Iterable[FeedbackRecord]) -> list[LabelledRow]:
    by_request = {p.request_id: p for p in merge_parts(predictions) if p.status == 200}
    by_entity: dict[str, list[PredictionRecord]] = {}
    for p in sorted(by_request.values(), key=lambda p: p.at):
        if p.entity_id is not None:
            by_entity.setdefault(str(p.entity_id), []).append(p)
    labels: dict[tuple[str, int], tuple[float, Any, str | None]] = {}
    for fb in sorted(feedback, key=lambda f: f.at):
        target = by_request.get(fb.request_id) if fb.request_id else None
        if target is None and fb.entity_id is not None:
            earlier = [p for p in by_entity.get(fb.entity_id, []) if p.at <= fb.at]
            target = earlier[-1] if earlier else None
        if target is None:
            continue
        pairs = list(enumerate(fb.actual)) if isinstance(fb.actual, list) else [(fb.row or 0, fb.actual)]
        for row, actual in pairs:
            if row < len(target.predictions) and row not in target.lost_rows:
                labels[(target.request_id, row)] = (fb.at, actual, fb.writer)  # later feedback overrides earlier
    out = []
    for (request_id, row), (fb_at, actual, writer) in labels.items():
        p = by_request[request_id]
        out.append(
            LabelledRow(
                request_id=request_id,
                row=row,
                at=p.at,
                variant=p.variant,
                model_version=p.model_version,
                prediction=p.predictions[row],
                score=p.scores[row] if p.scores and row < len(p.scores) else None,
                actual=actual,
                feedback_at=fb_at,
                entity_id=p.entity_id,
                features=p.instances[row] if p.instances and row < len(p.instances) else None,
                writer=writer,
            )
        )
    return sorted(out, key=lambda r: (r.at, r.request_id, r.row))


def labelled_rows(
    bucket: str | ObjectStore, prefix: str = "", since: float | None = None, s3: Any = None
) -> list[LabelledRow]:
    """Predictions made since `since`, joined to the feedback that labels them."""
    store = data_store(bucket, s3)
    predictions = PredictionLog(store, prefix).read(since=since)
    feedback = FeedbackStore(store, prefix).read(since=since)
    return join(predictions, feedback)
