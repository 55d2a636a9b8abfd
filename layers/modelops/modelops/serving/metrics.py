"""Per-request CloudWatch metrics in Embedded Metric Format (EMF): one JSON line on stdout per request.

The line has the same shape Powertools Metrics writes, but the static part (namespace, dimension
sets, metric definitions) is built once, so a request costs one small orjson.dumps instead of
Powertools' per-flush validation and serialisation (tens of microseconds on a sub-millisecond path).

Namespace: POWERTOOLS_METRICS_NAMESPACE (default "modelops").
Dimension sets: [ModelName, ModelVersion, Variant], [ModelName, FunctionVersion] and [ModelName].
FunctionVersion is the published Lambda version (AWS_LAMBDA_FUNCTION_VERSION): the canary's rollback
alarms watch the new version's ServerErrors and Score through it.
Metrics: Requests, Rows, Latency (ms, inside the handler), ClientErrors (4xx), ServerErrors (5xx),
and on answered requests Score: the mean positive-class probability (binary classifiers) or the mean
prediction (regressors), which tracks the prediction distribution of each version, and Warnings: the
number of values the model never saw in training (unseen categories, numbers outside the training range).
With capture on, answered requests also carry CapturesTruncated (1 when the capture lost a row's inputs) and
CaptureRowsDropped (rows captured without their inputs because one row alone exceeds the capture line bound;
see capture.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import orjson

from ..core import env as settings

if TYPE_CHECKING:
    from .capture import CaptureStats

BASE_METRICS = [
    {"Name": "Requests", "Unit": "Count"},
    {"Name": "Rows", "Unit": "Count"},
    {"Name": "Latency", "Unit": "Milliseconds"},
    {"Name": "ClientErrors", "Unit": "Count"},
    {"Name": "ServerErrors", "Unit": "Count"},
]
SCORE_METRIC = {"Name": "Score", "Unit": "None"}
WARNINGS_METRIC = {"Name": "Warnings", "Unit": "Count"}
CAPTURE_METRICS = [{"Name": "CapturesTruncated", "Unit": "Count"}, {"Name": "CaptureRowsDropped", "Unit": "Count"}]
DIMENSION_SETS = [["ModelName", "ModelVersion", "Variant"], ["ModelName", "FunctionVersion"], ["ModelName"]]


class RequestMetrics:
    def __init__(
        self,
        model_name: str,
        model_version: str,
        variant: str = "A",
        *,
        namespace: str | None = None,
        stream: IO[str] | None = None,
    ):
        self.namespace = namespace or settings.raw("POWERTOOLS_METRICS_NAMESPACE") or "modelops"
        self.stream = stream
        self.dimensions = {
            "ModelName": model_name,
            "ModelVersion": model_version,
            "Variant": variant,
            "FunctionVersion": settings.raw("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST",
        }
        self._failed = self._directive(BASE_METRICS)
        # answered requests: (has a score, has capture stats) -> directive
        self._answered = {
            (score, capture): self._directive(
                [
                    *BASE_METRICS,
                    *([SCORE_METRIC] if score else []),
                    WARNINGS_METRIC,
                    *(CAPTURE_METRICS if capture else []),
                ]
            )
            for score in (False, True)
            for capture in (False, True)
        }

    def _directive(self, metrics: list[dict[str, str]]) -> dict[str, Any]:
        return {"CloudWatchMetrics": [{"Namespace": self.namespace, "Dimensions": DIMENSION_SETS, "Metrics": metrics}]}

    def line(
        self,
        status: int,
        latency_ms: float,
        rows: int,
        score: float | None = None,
        dimensions: Mapping[str, str] | None = None,
        warnings: int = 0,
        capture: CaptureStats | None = None,
    ) -> bytes:
        answered = status < 400
        directive = self._answered[(score is not None, capture is not None)] if answered else self._failed
        record: dict[str, Any] = {
            "_aws": {"Timestamp": int(time.time() * 1000), **directive},
            **(dimensions or self.dimensions),
            "Requests": 1,
            "Rows": rows,
            "Latency": round(latency_ms, 3),
            "ClientErrors": int(400 <= status < 500),
            "ServerErrors": int(status >= 500),
        }
        if score is not None and answered:
            record["Score"] = score
        if answered:
            record["Warnings"] = warnings
            if capture is not None:
                record["CapturesTruncated"] = capture.truncated
                record["CaptureRowsDropped"] = capture.rows_dropped
        return orjson.dumps(record)

    def emit(
        self,
        status: int,
        latency_ms: float,
        rows: int,
        score: float | None = None,
        warnings: int = 0,
        capture: CaptureStats | None = None,
    ) -> None:
        stream = self.stream or sys.stdout
        stream.write(self.line(status, latency_ms, rows, score, warnings=warnings, capture=capture).decode() + "\n")
