"""Model monitoring: quality from ground truth over a sliding window, input and prediction drift from
captured online requests, and publishing both as CloudWatch metrics per model version.

Metric contract (namespace = POWERTOOLS_METRICS_NAMESPACE; the template's alarms and dashboard use it):
    DriftPSI        dims ModelName, ModelVersion, Feature    per-feature PSI against the training baseline
    DriftPSIMax     dims ModelName / ModelName, ModelVersion  the largest per-feature PSI
    PredictionPSI   dims ModelName / ModelName, ModelVersion  PSI of the predicted score (positive-class
                                                               probability, or the regression output)
    QualityAccuracy, QualityAUC (classification), QualityMAE, QualityRMSE (regression), LabelledRows
                    dims ModelName / ModelName, ModelVersion  over the sliding window of labelled predictions
Metrics with the ModelName-only dimension set describe the version currently serving, so alarms keep
working across promotions without editing their dimensions.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from . import drift
from .artifact import CLASSIFICATION, Manifest

DRIFT_PSI = "DriftPSI"
DRIFT_PSI_MAX = "DriftPSIMax"
PREDICTION_PSI = "PredictionPSI"
LABELLED_ROWS = "LabelledRows"
QUALITY_METRICS = {"accuracy": "QualityAccuracy", "roc_auc": "QualityAUC", "mae": "QualityMAE", "rmse": "QualityRMSE"}
PREDICTION_KEY = "__prediction__"
CAPTURE_MARKER = "capture"


# ---- quality -------------------------------------------------------------------------------
@dataclass
class LabelledPrediction:
    """One served prediction joined to its ground truth."""

    at: float  # epoch seconds of the prediction
    model_version: str
    features: dict[str, Any]
    actual: Any
    prediction: Any = None
    score: float | None = None  # positive-class probability (binary) or None


def to_epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value) / (1000.0 if value > 1e11 else 1.0)  # milliseconds or seconds
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def window(records: Iterable[LabelledPrediction], now: float, seconds: float) -> list[LabelledPrediction]:
    """The sliding window: records with now - seconds < at <= now."""
    return [r for r in records if now - seconds < r.at <= now]


def quality(task: str, classes: list[Any] | None, records: list[LabelledPrediction]) -> dict[str, float]:
    """Accuracy and AUC (classification) or MAE and RMSE (regression) of the served predictions."""
    if not records:
        return {"rows": 0}
    if task == CLASSIFICATION:
        actual = [str(r.actual) for r in records]
        predicted = [str(r.prediction) for r in records]
        out: dict[str, float] = {"rows": len(records),
                                 "accuracy": float(np.mean([a == p for a, p in zip(actual, predicted, strict=True)]))}
        scores = [r.score for r in records]
        if classes and len(classes) == 2 and all(s is not None for s in scores) and len(set(actual)) == 2:
            from sklearn.metrics import roc_auc_score

            out["roc_auc"] = float(roc_auc_score([a == str(classes[1]) for a in actual], scores))
        return out
    actual_v = np.asarray([float(r.actual) for r in records])
    predicted_v = np.asarray([float(r.prediction) for r in records])
    err = predicted_v - actual_v
    return {"rows": len(records), "mae": float(np.mean(np.abs(err))), "rmse": float(math.sqrt(np.mean(err ** 2)))}


def quality_by_version(task: str, classes: list[Any] | None,
                       records: list[LabelledPrediction]) -> dict[str, dict[str, float]]:
    versions: dict[str, list[LabelledPrediction]] = {}
    for r in records:
        versions.setdefault(r.model_version, []).append(r)
    return {v: quality(task, classes, rs) for v, rs in sorted(versions.items())}


# ---- online capture ------------------------------------------------------------------------
@dataclass
class CapturedRequest:
    at: float
    model_version: str
    instances: list[dict[str, Any]]
    predictions: list[Any] = field(default_factory=list)
    scores: list[float] | None = None


def _capture_from(obj: dict[str, Any]) -> CapturedRequest | None:
    if not isinstance(obj, dict):
        return None
    if CAPTURE_MARKER not in obj:
        message = obj.get("message")  # a structured logger may nest the capture in its message field
        if isinstance(message, dict):
            return _capture_from(message)
        if isinstance(message, str) and message.startswith("{"):
            try:
                return _capture_from(json.loads(message))
            except ValueError:
                return None
        return None
    version = obj.get("model_version") or obj.get("version") or (obj.get("model") or {}).get("version")
    instances = obj.get("instances")
    if instances is None and "columns" in obj and "data" in obj:
        instances = [dict(zip(obj["columns"], row, strict=False)) for row in obj["data"]]
    if not version or not isinstance(instances, list):
        return None
    probabilities = obj.get("probabilities")
    scores = None
    if isinstance(probabilities, list) and probabilities and isinstance(probabilities[0], dict):
        last = list(probabilities[0])[-1]
        scores = [float(p[last]) for p in probabilities]
    elif isinstance(probabilities, list) and probabilities and isinstance(probabilities[0], list):
        scores = [float(p[-1]) for p in probabilities]
    at = obj.get("ts") or obj.get("timestamp") or obj.get("at") or time.time()
    return CapturedRequest(at=to_epoch(at), model_version=str(version),
                           instances=[i for i in instances if isinstance(i, dict)],
                           predictions=list(obj.get("predictions") or []), scores=scores)


def parse_capture(data: bytes) -> Iterator[CapturedRequest]:
    """Captured requests from one delivered object: JSON lines, optionally gzip-compressed, either the
    capture lines themselves or CloudWatch Logs subscription envelopes ({"logEvents": [...]}) holding them.
    Lines that are not capture lines are skipped."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):  # Firehose may concatenate JSON objects without newlines
        while pos < len(text) and text[pos] in " \r\n\t":
            pos += 1
        if pos >= len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl + 1
            continue
        if isinstance(obj, dict) and isinstance(obj.get("logEvents"), list):
            for event in obj["logEvents"]:
                message = event.get("message", "")
                start = message.find("{")
                if start >= 0:
                    try:
                        captured = _capture_from(json.loads(message[start:]))
                    except ValueError:
                        captured = None
                    if captured:
                        yield captured
        else:
            captured = _capture_from(obj)
            if captured:
                yield captured


def drift_report(manifest: Manifest, captured: Iterable[CapturedRequest]) -> dict[str, Any]:
    """Per-feature PSI of the captured inputs and PSI of the predicted scores, against the baseline bins
    the model was trained with."""
    names = [f["name"] for f in manifest.features]
    acc = drift.DriftAccumulator(manifest.baseline, names)
    dtypes = {f["name"]: f["dtype"] for f in manifest.features}
    scores: list[float] = []
    rows = 0
    for request in captured:
        if not request.instances:
            continue
        matrix = np.empty((len(request.instances), len(names)), dtype=object)
        for j, n in enumerate(names):
            matrix[:, j] = [_cell(i.get(n), dtypes[n]) for i in request.instances]
        acc.add(matrix)
        rows += len(request.instances)
        if request.scores is not None:
            scores.extend(request.scores)
        elif manifest.task != CLASSIFICATION:
            scores.extend(float(p) for p in request.predictions if isinstance(p, (int, float)))
    by_feature = acc.psi_by_feature() if rows else {}
    out: dict[str, Any] = {"rows": rows, "psi": by_feature,
                           "psi_max": max(by_feature.values()) if by_feature else 0.0,
                           "psi_max_feature": max(by_feature, key=by_feature.__getitem__) if by_feature else None}
    base = manifest.baseline.get(PREDICTION_KEY)
    if base and scores:
        out["prediction_psi"] = drift.psi(base["counts"], drift.numeric_counts(np.asarray(scores), base["edges"]))
    return out


def _cell(value: Any, dtype: str) -> Any:
    if dtype == "number":
        try:
            return math.nan if value is None else float(value)
        except (TypeError, ValueError):
            return math.nan
    return value


# ---- metric publishing ---------------------------------------------------------------------
class MetricsSink(Protocol):
    def put(self, name: str, value: float, dimensions: list[dict[str, str]], unit: str = "None") -> None: ...


def namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "modelops")


class EmfSink:
    """CloudWatch Embedded Metric Format lines on stdout: free at publish time in Lambda, no API calls."""

    def __init__(self, write: Callable[[str], None] = print, ns: str | None = None):
        self.write, self.ns = write, ns or namespace()

    def put(self, name: str, value: float, dimensions: list[dict[str, str]], unit: str = "None") -> None:
        keys = sorted({k for d in dimensions for k in d})
        values = {k: v for d in dimensions for k, v in d.items()}
        line = {"_aws": {"Timestamp": int(time.time() * 1000),
                         "CloudWatchMetrics": [{"Namespace": self.ns,
                                                "Dimensions": [sorted(d) for d in dimensions] or [keys],
                                                "Metrics": [{"Name": name, "Unit": unit}]}]},
                name: value, **values}
        self.write(json.dumps(line, separators=(",", ":")))


class CloudWatchSink:
    """PutMetricData, for runs outside Lambda (the CLI)."""

    def __init__(self, cloudwatch: Any, ns: str | None = None):
        self.cw, self.ns = cloudwatch, ns or namespace()

    def put(self, name: str, value: float, dimensions: list[dict[str, str]], unit: str = "None") -> None:
        data = [{"MetricName": name, "Value": float(value), "Unit": unit,
                 "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(d.items())]} for d in dimensions]
        self.cw.put_metric_data(Namespace=self.ns, MetricData=data)


def publish_drift(sink: MetricsSink, model: str, version: str, report: dict[str, Any], serving: bool) -> int:
    """Publish one version's drift; serving=True also publishes under the ModelName-only dimension set."""
    per_version = {"ModelName": model, "ModelVersion": version}
    sets = [per_version, {"ModelName": model}] if serving else [per_version]
    count = 0
    for feature, value in report.get("psi", {}).items():
        sink.put(DRIFT_PSI, value, [{**per_version, "Feature": feature}])
        count += 1
    if report.get("rows"):
        sink.put(DRIFT_PSI_MAX, report["psi_max"], sets)
        count += 1
    if "prediction_psi" in report:
        sink.put(PREDICTION_PSI, report["prediction_psi"], sets)
        count += 1
    return count


def publish_quality(sink: MetricsSink, model: str, version: str, metrics: dict[str, float], serving: bool) -> int:
    per_version = {"ModelName": model, "ModelVersion": version}
    sets = [per_version, {"ModelName": model}] if serving else [per_version]
    count = 0
    if metrics.get("rows"):
        sink.put(LABELLED_ROWS, metrics["rows"], sets, unit="Count")
        count += 1
    for key, metric in QUALITY_METRICS.items():
        if key in metrics:
            sink.put(metric, metrics[key], sets)
            count += 1
    return count
