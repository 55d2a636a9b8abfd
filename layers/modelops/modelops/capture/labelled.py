"""Labelled predictions: the join of captured predictions and the feedback that labels them, over a bounded
window (what the A/B report, quality monitoring and retraining learn from).

    join(predictions, feedback) -> list[LabelledRow]     # one row per labelled prediction row
    labelled_rows(bucket, prefix, since=None) -> list[LabelledRow]   # read both and join
    read_window(bucket, prefix, since, until, max_records) -> Window # both bounded, and their join

Join rules: feedback naming a request_id labels that request's row `row` (default: every row when
`actual` is a list, else row 0). Feedback naming only an entity_id labels the latest prediction for that
entity made before the feedback arrived. When several feedback records label the same row, the latest wins
(so a correction is just another append)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..ports import ObjectStore
from .feedback import FeedbackRecord, FeedbackStore
from .partitions import DEFAULT_MAX_RECORDS, data_store
from .records import PredictionLog, PredictionRecord, merge_parts


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
