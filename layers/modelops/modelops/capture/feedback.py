"""Ground truth ("feedback") stored append-only under the data prefix.

Layout under s3://<bucket>/<prefix> (or a local directory; modelops.adapters.objectstore):
    feedback/date=YYYY-MM-DD/<epoch-ns>-<random>.json
        one feedback record per object, written with If-None-Match so nothing is ever overwritten:
        {"at", "request_id", "entity_id", "row", "actual", "feedback_id", "writer"}
        writer: who stored the label (the API key id, or the IAM caller, that POST /feedback was called with);
        null in records written before it was recorded and in labels stored without an API

Module API:
    validate_feedback(body, ...) -> dict                 # POST /feedback's body, checked against its label token
    store = FeedbackStore(bucket, prefix)                # s3= to pass a client; or an ObjectStore for bucket
    store.append(actual, request_id=..., entity_id=..., row=None, writer=None) -> FeedbackRecord
    store.read(since=None, until=None) -> list[FeedbackRecord]     # oldest first
    store.read_newest(since, until, limit) -> (records, dropped)   # bounded: the newest `limit` only

POST /feedback stores request_id for every label (from its label token, modelops.capture.labeltoken), so a label
through the API always names the served request. How labels meet predictions: modelops.capture.labelled."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..core.clock import iso, parse_time
from ..core.errors import InputError
from ..ports import ObjectStore
from .labeltoken import LabelGrant
from .partitions import data_store, list_partitions, newest, partition_key
from .records import MAX_ROWS

FEEDBACK_DIR = "feedback"
MAX_ID_LENGTH = 256
TOKEN_MISMATCH = "label_token_mismatch"  # the body names another request or entity than its label_token


class LabelsUnavailable(Exception):
    """The served model's classes could not be read: labels cannot be checked now (answer: retry later)."""


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
        key = partition_key(self.prefix, FEEDBACK_DIR, at, f"{record.feedback_id}.json")
        self.store.put(key, record.to_json(), content_type="application/json", if_none_match=True)
        return record

    def records(self, since: float | None = None, until: float | None = None) -> Iterator[FeedbackRecord]:
        """Feedback records in [since, until], one object at a time, in listing order."""
        for key in list_partitions(self.store, self.prefix, FEEDBACK_DIR, since, until):
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
