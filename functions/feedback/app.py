"""POST /feedback: store the true label or value for a served prediction, append-only in S3
(see modelops.capture.feedback for the layout, modelops.capture.labelled for the join to predictions).

Served on a front door of its own (template ApiType): a REST API with its own API key (FeedbackApi), or an HTTP
API or function URL with IAM auth (payload format 2.0 events, answered in their shape: modelops.serving.events),
so a caller of the prediction API cannot write labels. Every label needs the `label_token` of the predict answer it labels (modelops.capture.labeltoken): it binds
the label to that served request, its rows and its entity, for MODELOPS_LABEL_WINDOW_HOURS. Each stored
record names its writer: the API key id (or IAM caller) API Gateway saw.

The body is read like the predict body (modelops.serving.body.read_json: size bound, nesting bound,
strict UTF-8), and a label the model could not have produced is refused: not one of a classifier's classes,
or not a finite number for a regressor. When the model's classes cannot be read the answer is 503 (retry),
never an unchecked label.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from modelops.capture import feedback, labelsecret, labeltoken
from modelops.core.errors import InputError, ModelOpsError
from modelops.serving import events
from modelops.serving.body import Limits, read_json
from modelops.serving.errors import ApiError
from modelops.wiring import feedback as feedback_wiring

logger = Logger()
app = APIGatewayRestResolver()
wiring = feedback_wiring.build()  # the store and the label rule, built on first use
FORBIDDEN_CODES = {labeltoken.INVALID, feedback.TOKEN_MISMATCH}
RETRY_AFTER_SECONDS = "5"


def writer_of(event: Any) -> str | None:
    """Who is writing: the API key id API Gateway checked, else the IAM caller."""
    identity = event.request_context.identity
    for value in (identity.api_key_id, identity.user_arn, identity.caller):
        if value:
            return str(value)
    return None


def printable(value: Any) -> Any:
    """A log-safe value: lone surrogates escaped, so the log line is always written."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def error(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None) -> Response:
    logger.info(
        "feedback refused",
        extra={
            "status": status,
            "code": code,
            "field": printable(field),
            "writer": printable(writer_of(app.current_event)),
        },
    )
    return Response(
        status_code=status,
        content_type="application/json",
        body={"error": {"code": code, "message": printable(message), **({"field": printable(field)} if field else {})}},
        headers=headers,
    )


@app.post("/feedback")
def post_feedback() -> Response:
    event = app.current_event
    try:
        body = read_json(event.body, event.is_base64_encoded, Limits.from_env().max_body_bytes)
    except ApiError as exc:
        return error(exc.status, exc.code, exc.message, exc.field)
    try:
        grant = None
        if isinstance(body, dict):  # the token first: nothing about a label is checked for an unknown writer
            grant = labeltoken.verify(
                body.get(labeltoken.FIELD), labelsecret.secret(), window_seconds=labelsecret.window_seconds()
            )
        classes, regression = wiring.label_rule()
        fields = feedback.validate_feedback(body, classes, regression=regression, grant=grant)
    except InputError as exc:
        return error(403 if exc.code in FORBIDDEN_CODES else 400, exc.code, str(exc), exc.field)
    except (feedback.LabelsUnavailable, labelsecret.LabelSecretUnavailable):
        logger.exception("labels cannot be checked now")
        return error(
            503,
            "labels_unavailable",
            "labels cannot be checked right now; retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    writer = writer_of(event)
    record = wiring.store().append(**fields, writer=writer)
    logger.info(
        "feedback stored",
        extra={
            "feedback_id": record.feedback_id,
            "request_id": printable(record.request_id),
            "entity_id": printable(record.entity_id),
            "writer": printable(writer),
        },
    )
    return Response(
        status_code=202,
        content_type="application/json",
        body={"feedback_id": record.feedback_id, "request_id": record.request_id, "entity_id": record.entity_id},
    )


@app.not_found
def not_found(exc: NotFoundError) -> Response:
    """A function URL sends every path here; only POST /feedback is a route."""
    return error(404, "not_found", "no such route: POST /feedback is the only one")


@app.exception_handler(BadRequestError)
def bad_request(exc: BadRequestError) -> Response:
    return error(400, "bad_request", str(exc))


@app.exception_handler(ModelOpsError)
def storage_error(exc: ModelOpsError) -> Response:
    logger.exception("feedback could not be stored")
    return error(
        503,
        "feedback_unavailable",
        "feedback could not be stored; retry later",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    logger.exception("POST /feedback failed")
    return error(500, "internal_error", "internal error; see the logs for this request id")


def unsupported_event() -> dict:
    message = "a payload format 2.0 event without a method or path"
    body = json.dumps({"error": {"code": "unsupported_event", "message": message, "field": "event"}})
    return {"statusCode": 400, "headers": {"Content-Type": "application/json"}, "body": body, "isBase64Encoded": False}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict, context: object) -> dict:
    if isinstance(event, dict) and events.is_v2(event):
        rest = events.rest_event(event)
        return events.v2_response(unsupported_event() if rest is None else app.resolve(rest, context))
    return app.resolve(event, context)
