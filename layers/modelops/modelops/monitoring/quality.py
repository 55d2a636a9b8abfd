"""Model monitoring: quality from ground truth over a sliding window, input and prediction drift from
captured online requests, and publishing both as CloudWatch metrics per model version.

Metric contract (namespace = POWERTOOLS_METRICS_NAMESPACE; the template's alarms and dashboard use it):
    FeaturePSI      dims ModelName, Feature / ModelName, ModelVersion, Feature
                                                               per-feature PSI against the training baseline
                                                               (batch runs publish the same name under
                                                               ModelName, Feature)
    DriftPSIMax     dims ModelName / ModelName, ModelVersion  the largest per-feature PSI
    PredictionPSI   dims ModelName / ModelName, ModelVersion  PSI of the predicted score (positive-class
                                                               probability, or the regression output)
    QualityAccuracy, QualityAUC (classification), QualityMAE, QualityRMSE (regression), LabelledRows
                    dims ModelName / ModelName, ModelVersion  over the sliding window of labelled predictions
Metrics with the ModelName-only dimension set describe the version currently serving, so alarms keep
working across promotions without editing their dimensions.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from ..core import env as settings
from ..model.artifact import CLASSIFICATION, Manifest
from ..model.baseline import numeric_counts
from . import drift

DRIFT_PSI = "FeaturePSI"  # the name batch runs use too
DRIFT_PSI_MAX = "DriftPSIMax"
PREDICTION_PSI = "PredictionPSI"
LABELLED_ROWS = "LabelledRows"
QUALITY_METRICS = {"accuracy": "QualityAccuracy", "roc_auc": "QualityAUC", "mae": "QualityMAE", "rmse": "QualityRMSE"}
PREDICTION_KEY = "__prediction__"


# ---- quality -------------------------------------------------------------------------------
class Labelled(Protocol):
    """A served prediction joined to its ground truth (modelops.capture.labelled.LabelledRow has this shape)."""

    at: float
    model_version: str
    prediction: Any
    score: float | None
    actual: Any


def window(records: Iterable[Labelled], now: float, seconds: float) -> list[Labelled]:
    """The sliding window: records with now - seconds < at <= now."""
    return [r for r in records if now - seconds < r.at <= now]


def quality(task: str, classes: list[Any] | None, records: Sequence[Labelled]) -> dict[str, float]:
    """Accuracy and AUC (classification) or MAE and RMSE (regression) of the served predictions."""
    if not records:
        return {"rows": 0}
    if task == CLASSIFICATION:
        actual = [str(r.actual) for r in records]
        predicted = [str(r.prediction) for r in records]
        out: dict[str, float] = {
            "rows": len(records),
            "accuracy": float(np.mean([a == p for a, p in zip(actual, predicted, strict=True)])),
        }
        scores = [r.score for r in records]
        if classes and len(classes) == 2 and all(s is not None for s in scores) and len(set(actual)) == 2:
            from sklearn.metrics import roc_auc_score

            out["roc_auc"] = float(roc_auc_score([a == str(classes[1]) for a in actual], scores))
        return out
    actual_v = np.asarray([float(r.actual) for r in records])
    predicted_v = np.asarray([float(r.prediction) for r in records])
    err = predicted_v - actual_v
    return {"rows": len(records), "mae": float(np.mean(np.abs(err))), "rmse": float(math.sqrt(np.mean(err**2)))}


def quality_by_version(
    task: str, classes: list[Any] | None, records: Sequence[Labelled]
) -> dict[str, dict[str, float]]:
    versions: dict[str, list[Labelled]] = {}
    for r in records:
        versions.setdefault(r.model_version, []).append(r)
    return {v: quality(task, classes, rs) for v, rs in sorted(versions.items())}


# ---- drift of captured online requests --------------------------------------------------------
# Capture lines are parsed by modelops.capture.records (parse_records / PredictionLog); any record with
# instances, predictions and scores works here.


def drift_report(manifest: Manifest, captured: Iterable[Any]) -> dict[str, Any]:
    """Per-feature PSI of the captured inputs and PSI of the predicted scores, against the baseline bins
    the model was trained with."""
    names = [f["name"] for f in manifest.features]
    acc = drift.DriftAccumulator(manifest.baseline, names)
    dtypes = {f["name"]: f["dtype"] for f in manifest.features}
    scores: list[float] = []
    rows = 0
    for request in captured:
        instances = [i for i in request.instances or () if i is not None]  # None: a row captured without inputs
        if not instances:
            continue
        matrix = np.empty((len(instances), len(names)), dtype=object)
        for j, n in enumerate(names):
            matrix[:, j] = [_cell(i.get(n), dtypes[n]) for i in instances]
        acc.add(matrix)
        rows += len(instances)
        if request.scores:
            scores.extend(float(v) for v in request.scores if v is not None)
        elif manifest.task != CLASSIFICATION:
            scores.extend(float(p) for p in request.predictions if isinstance(p, (int, float)))
    by_feature = acc.psi_by_feature() if rows else {}
    out: dict[str, Any] = {
        "rows": rows,
        "psi": by_feature,  # measured features only; the others are in not_measured, with the reason
        "psi_max": max(by_feature.values()) if by_feature else None,
        "psi_max_feature": max(by_feature, key=by_feature.__getitem__) if by_feature else None,
    }
    if rows and acc.not_measured():
        out["not_measured"] = acc.not_measured()
    base = manifest.baseline.get(PREDICTION_KEY)
    if base and scores:
        out["prediction_psi"] = drift.psi(base["counts"], numeric_counts(np.asarray(scores), base["edges"]))
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
    return settings.text("POWERTOOLS_METRICS_NAMESPACE", "modelops")


class EmfSink:
    """CloudWatch Embedded Metric Format lines on stdout: free at publish time in Lambda, no API calls."""

    def __init__(self, write: Callable[[str], None] = print, ns: str | None = None):
        self.write, self.ns = write, ns or namespace()

    def put(self, name: str, value: float, dimensions: list[dict[str, str]], unit: str = "None") -> None:
        keys = sorted({k for d in dimensions for k in d})
        values = {k: v for d in dimensions for k, v in d.items()}
        line = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.ns,
                        "Dimensions": [sorted(d) for d in dimensions] or [keys],
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            name: value,
            **values,
        }
        self.write(json.dumps(line, separators=(",", ":")))


class CloudWatchSink:
    """PutMetricData, for runs outside Lambda (the CLI)."""

    def __init__(self, cloudwatch: Any, ns: str | None = None):
        self.cw, self.ns = cloudwatch, ns or namespace()

    def put(self, name: str, value: float, dimensions: list[dict[str, str]], unit: str = "None") -> None:
        data = [
            {
                "MetricName": name,
                "Value": float(value),
                "Unit": unit,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(d.items())],
            }
            for d in dimensions
        ]
        self.cw.put_metric_data(Namespace=self.ns, MetricData=data)


def publish_drift(sink: MetricsSink, model: str, version: str, report: dict[str, Any], serving: bool) -> int:
    """Publish one version's drift; serving=True also publishes under the ModelName-only dimension set."""
    per_version = {"ModelName": model, "ModelVersion": version}
    sets = [per_version, {"ModelName": model}] if serving else [per_version]
    count = 0
    for feature, value in report.get("psi", {}).items():
        sink.put(DRIFT_PSI, value, [{**d, "Feature": feature} for d in sets])
        count += 1
    if report.get("rows") and report.get("psi_max") is not None:
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


# ---- one monitoring pass --------------------------------------------------------------------
def monitor_window(
    manifests: Callable[[str], Manifest],
    serving_version: str | None,
    model: str,
    captured: Sequence[Any],
    labelled: Sequence[Labelled],
    sink: MetricsSink,
) -> dict[str, Any]:
    """Drift and quality per model version over one window of captured requests and labelled predictions,
    published to sink. manifests(version) returns that version's manifest (its baseline bins)."""
    versions = sorted({r.model_version for r in captured} | {r.model_version for r in labelled})
    summary: dict[str, Any] = {"model": model, "serving": serving_version, "versions": {}, "metrics_published": 0}
    for version in versions:
        manifest = manifests(version)
        serving = version == serving_version
        report = drift_report(manifest, [r for r in captured if r.model_version == version])
        scores = quality(manifest.task, manifest.classes, [r for r in labelled if r.model_version == version])
        summary["metrics_published"] += publish_drift(sink, model, version, report, serving)
        summary["metrics_published"] += publish_quality(sink, model, version, scores, serving)
        summary["versions"][version] = {
            "drift": {k: report[k] for k in ("rows", "psi_max", "psi_max_feature")},
            "prediction_psi": report.get("prediction_psi"),
            "quality": scores,
        }
    return summary
