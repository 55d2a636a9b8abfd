"""CloudWatch metrics for batch runs in Embedded Metric Format: one JSON log line per document."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import orjson


def _doc(namespace: str, dims: dict[str, str], metrics: dict[str, tuple[float, str]]) -> dict[str, Any]:
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": namespace, "Dimensions": [list(dims)],
            "Metrics": [{"Name": n, "Unit": unit} for n, (_, unit) in metrics.items()]}]},
        **dims, **{n: v for n, (v, _) in metrics.items()},
    }


def namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "modelops")


def run_documents(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Row counts and duration per model, PSI per feature (dimension Feature), and prediction PSI."""
    ns, model = namespace(), manifest["model"]["name"]
    rows = manifest["rows"]
    docs = [_doc(ns, {"ModelName": model}, {
        "BatchRowsRead": (rows["read"], "Count"), "BatchRowsScored": (rows["scored"], "Count"),
        "BatchRowsRejected": (rows["rejected"], "Count"),
        "BatchDurationSeconds": (manifest["timings"]["seconds"], "Seconds")})]
    drift = manifest.get("drift") or {}
    for feature, value in (drift.get("feature_psi") or {}).items():
        docs.append(_doc(ns, {"ModelName": model, "Feature": feature}, {"FeaturePSI": (value, "None")}))
    if drift.get("prediction_psi") is not None:
        docs.append(_doc(ns, {"ModelName": model}, {"PredictionPSI": (drift["prediction_psi"], "None")}))
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
