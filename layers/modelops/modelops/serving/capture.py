"""Online data capture: one compact JSON line per answered request on stdout, when MODELOPS_CAPTURE=on.

Lambda ships stdout to CloudWatch Logs; a subscription filter on { $.capture IS TRUE } and a Firehose
stream deliver the lines to S3, where drift, quality and A/B monitoring read them (the same record
shape as modelops.feedback.prediction_record). The request path pays for one orjson.dumps (numpy
arrays are serialised natively; rows sent as `instances` are reused as parsed) and one write.

Line shape:
    {"capture": true, "at": <epoch milliseconds>, "request_id": "...", "model_name": "...",
     "model_version": "...", "variant": "A", "status": 200,
     "instances": [{"<feature>": value, ...}, ...], "predictions": [...],
     "scores": [<positive-class probability per row>]          (binary classifiers)
     "probabilities": [[<p per class>], ...], "classes": [...] (classifiers with more classes)}
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

import orjson

from .model_holder import ServedModel
from .service import Prediction

MARKER = "capture"
_OPTS = orjson.OPT_SERIALIZE_NUMPY


def capture_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("MODELOPS_CAPTURE", "").strip().lower() in ("on", "1", "true", "yes")


def _instances(model: ServedModel, prediction: Prediction, payload: Any) -> list[dict[str, Any]]:
    rows = payload.get("instances") if isinstance(payload, dict) else None
    if isinstance(rows, list):
        return rows  # already validated against the schema: exactly the model's features
    names = model.schema.names
    return [dict(zip(names, values, strict=True)) for values in prediction.matrix.tolist()]


def capture_line(
    model: ServedModel,
    prediction: Prediction,
    payload: Any,
    request_id: str,
    variant: str,
    entity_id: str | None = None,
    latency_ms: float | None = None,
) -> bytes:
    record: dict[str, Any] = {
        MARKER: True,
        "at": int(time.time() * 1000),
        "request_id": request_id,
        "model_name": model.model_ref["name"],
        "model_version": model.model_ref["version"],
        "variant": variant,
        "status": 200,
        "instances": _instances(model, prediction, payload),
        "predictions": prediction.predictions,
    }
    if entity_id is not None:  # A/B: lets feedback that names only the entity find this prediction
        record["entity_id"] = entity_id
    if latency_ms is not None:  # handler time up to the prediction (A/B latency per variant)
        record["latency_ms"] = round(latency_ms, 3)
    probabilities = prediction.probabilities
    if probabilities is not None:
        if probabilities.shape[1] == 2:
            record["scores"] = probabilities[:, 1].tolist()
        else:
            record["probabilities"] = probabilities
            record["classes"] = model.class_keys
    return orjson.dumps(record, option=_OPTS)


def emit_capture(
    model: ServedModel,
    prediction: Prediction,
    payload: Any,
    request_id: str,
    variant: str,
    stream: IO[str] | None = None,
    entity_id: str | None = None,
    latency_ms: float | None = None,
) -> None:
    line = capture_line(model, prediction, payload, request_id, variant, entity_id, latency_ms)
    (stream or sys.stdout).write(line.decode() + "\n")


def emit_failure(
    request_id: str, variant: str, model_version: str, status: int, latency_ms: float, stream: IO[str] | None = None
) -> None:
    """A capture line for a request that failed on the server side (no instances: drift monitoring skips it)."""
    record = {
        MARKER: True,
        "at": int(time.time() * 1000),
        "request_id": request_id,
        "model_version": model_version,
        "variant": variant,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "predictions": [],
    }
    (stream or sys.stdout).write(orjson.dumps(record).decode() + "\n")
