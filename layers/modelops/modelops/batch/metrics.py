"""CloudWatch metrics for batch runs in Embedded Metric Format: one JSON log line per document."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import orjson

from ..core import env as settings


def _doc(
    namespace: str, dims: dict[str, str], metrics: dict[str, tuple[float, str]], sets: list[list[str]] | None = None
) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": sets or [list(dims)],
                    "Metrics": [{"Name": n, "Unit": unit} for n, (_, unit) in metrics.items()],
                }
            ],
        },
        **dims,
        **{n: v for n, (v, _) in metrics.items()},
    }


def namespace() -> str:
    return settings.text("POWERTOOLS_METRICS_NAMESPACE", "modelops")


def run_documents(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Row counts and duration, the values the model never saw in training (BatchWarnings), PSI per feature
    (FeaturePSI) and of the predictions (PredictionPSI). A feature whose drift is not measured has no
    FeaturePSI at all (the manifest says why), never a 0.

    Each is published per model (the alarms' view) and per model version (the dashboard's view), the same
    dimension sets the online monitor uses, so drift alarms see batch and online drift alike.
    """
    ns = namespace()
    model = {"ModelName": manifest["model"]["name"], "ModelVersion": manifest["model"]["version"]}
    per_model = [["ModelName"], ["ModelName", "ModelVersion"]]
    per_feature = [["ModelName", "Feature"], ["ModelName", "ModelVersion", "Feature"]]
    rows = manifest["rows"]
    docs = [
        _doc(
            ns,
            model,
            {
                "BatchRowsRead": (rows["read"], "Count"),
                "BatchRowsScored": (rows["scored"], "Count"),
                "BatchRowsRejected": (rows["rejected"], "Count"),
                "BatchWarnings": (sum((manifest.get("warnings") or {}).get("values", {}).values()), "Count"),
                "BatchDurationSeconds": (manifest["timings"]["seconds"], "Seconds"),
            },
            per_model,
        )
    ]
    drift = manifest.get("drift") or {}
    for feature, value in (drift.get("feature_psi") or {}).items():
        if value is None:
            continue
        docs.append(_doc(ns, {**model, "Feature": feature}, {"FeaturePSI": (value, "None")}, per_feature))
    if drift.get("prediction_psi") is not None:
        docs.append(_doc(ns, model, {"PredictionPSI": (drift["prediction_psi"], "None")}, per_model))
    return docs


def dependency_timeout_document(model: str, run_date: str) -> dict[str, Any]:
    doc = _doc(namespace(), {"ModelName": model}, {"BatchDependencyTimeout": (1, "Count")})
    doc["run_date"] = run_date
    return doc


def emit(docs: list[dict[str, Any]], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for doc in docs:
        out.write(orjson.dumps(doc).decode() + "\n")
    out.flush()
