"""POST /predict as plain domain logic: request body in, response document out.

Accepted bodies (1..max_rows rows):
    {"instances": [{"<feature>": value, ...}, ...]}
    {"columns": ["<feature>", ...], "data": [[value, ...], ...]}
Other top-level fields are ignored (an A/B entity id may travel there).

Answer:
    {"model": {"name", "version"}, "variant": "A", "predictions": [...],
     "probabilities": [{"<class>": p, ...}, ...]   (classifiers only),
     "warnings": [[{"feature", "code", "message"}, ...], ...]   (only when a row has a value the model
                                                                  never saw in training: one list per row),
     "request_id": "...",
     "label_token": "..."   (added by the gateway: what POST /feedback requires; modelops.capture.labeltoken)}

Classifier labels are the argmax of predict_proba, so one pass over the model gives both. Which failures of
the model are the client's and which are the server's is decided in modelops.model.inference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..core.errors import InputError
from ..model.inference import Refusal
from .body import Limits
from .errors import ApiError, from_input_error
from .model_holder import ServedModel
from .negotiation import JSON


@dataclass
class Reply:
    status: int
    body: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)

    def proxy(self, extra_headers: Mapping[str, str]) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type, **self.headers, **extra_headers},
            "body": self.body,
            "isBase64Encoded": False,
        }


class Backend(Protocol):
    """What the documented routes (modelops.serving.api) call: the same answers as the direct path
    (modelops.serving.fastpath), which implements it, so neither entry point imports the other."""

    limits: Limits
    front_door: Any
    docs_enabled: bool
    holder: Any
    model_name: str
    model_version: str

    def predict(self, headers: Mapping[str, str] | None, body: Any, is_base64: bool, request_id: str) -> Reply: ...

    def health(self, headers: Mapping[str, str] | None, request_id: str) -> Reply: ...

    def error_reply(self, exc: ApiError, fmt: str, request_id: str | None = None) -> Reply: ...

    def unavailable(self) -> ApiError: ...


DocsRoutes = Callable[[Backend, ServedModel | None], Any]  # builds the documented routes' resolver


CHAMPION_VARIANT = "A"
CHALLENGER_VARIANT = "B"


@dataclass
class Prediction:
    matrix: np.ndarray
    predictions: list[Any]
    probabilities: np.ndarray | None = None  # rows x classes, classifiers only
    warnings: list[list[dict[str, str]]] | None = None  # per row; None when no row has one

    def warning_count(self) -> int:
        return sum(map(len, self.warnings)) if self.warnings is not None else 0

    def score(self) -> float | None:
        """One number per request that tracks the prediction distribution: the mean positive-class
        probability of a binary classifier, or the mean prediction of a regressor."""
        probabilities = self.probabilities
        if probabilities is not None:
            if probabilities.shape[1] != 2:
                return None
            n = len(probabilities)  # the sum over n, as numpy's mean computes it, without its overhead
            return float(probabilities[0, 1]) if n == 1 else float(probabilities[:, 1].sum()) / n
        try:
            return float(np.mean(self.predictions))
        except (TypeError, ValueError):
            return None


def rows_matrix(model: ServedModel, payload: Any, max_rows: int) -> np.ndarray:
    """Validate the request rows against the model's feature schema and return them as a matrix."""
    if not isinstance(payload, dict):
        raise ApiError(
            400,
            "invalid_body",
            "request body must be a JSON object with 'instances', or 'columns' and 'data'",
            field="body",
        )
    try:
        if "instances" in payload:
            if "columns" in payload or "data" in payload:
                raise ApiError(
                    400, "invalid_body", "send either 'instances' or 'columns' and 'data', not both", field="instances"
                )
            return model.schema.matrix_from_instances(payload["instances"], max_rows)
        if "columns" in payload or "data" in payload:
            for name in ("columns", "data"):
                if name not in payload:
                    raise ApiError(400, "missing_field", f"'{name}' is required with the columnar form", field=name)
            return model.schema.matrix_from_columns(payload["columns"], payload["data"], max_rows)
    except InputError as exc:
        raise from_input_error(exc) from None
    raise ApiError(
        400,
        "missing_field",
        "request body needs 'instances' (a list of rows), or 'columns' and 'data'",
        field="instances",
    )


def predict(model: ServedModel, matrix: np.ndarray) -> Prediction:
    """Score validated rows. A row the model refuses is a 400 naming it; a failure on rows within the
    training data raises ModelFault (the gateway answers 500). Never answers NaN or inf."""
    warnings = model.schema.warnings(matrix)
    outcome = model.runner.run(matrix, warnings, model.estimator)
    if outcome.refused:
        raise refusal_error(outcome.refused[0])
    outputs = outcome.outputs
    if model.is_classifier:
        classes = model.classes
        assert classes is not None
        labels = [classes[i] for i in outputs.argmax(axis=1).tolist()]
        return Prediction(matrix, labels, outputs, warnings)
    return Prediction(matrix, outputs.tolist(), None, warnings)


def refusal_error(refusal: Refusal) -> ApiError:
    where = f"instances[{refusal.row}]" + (f".{refusal.feature}" if refusal.feature else "")
    return ApiError(400, refusal.code, f"{where}: {refusal.reason}", field=where)


def response_document(
    model: ServedModel, prediction: Prediction, request_id: str, variant: str = CHAMPION_VARIANT
) -> dict[str, Any]:
    document: dict[str, Any] = {"model": model.model_ref, "variant": variant, "predictions": prediction.predictions}
    if prediction.probabilities is not None:
        keys = model.class_keys
        rows = prediction.probabilities.tolist()
        if len(keys) == 2:  # the common binary case, without a zip per row
            first, second = keys
            document["probabilities"] = [{first: a, second: b} for a, b in rows]
        else:
            document["probabilities"] = [dict(zip(keys, row, strict=True)) for row in rows]
    if prediction.warnings is not None:
        document["warnings"] = prediction.warnings
    document["request_id"] = request_id
    return document


def handle_predict(
    model: ServedModel, payload: Any, request_id: str, limits: Limits, variant: str = CHAMPION_VARIANT
) -> tuple[dict[str, Any], Prediction]:
    """The whole of POST /predict after the body is parsed: validate, predict, build the answer."""
    prediction = predict(model, rows_matrix(model, payload, limits.max_rows))
    return response_document(model, prediction, request_id, variant), prediction
