"""POST /feedback: store the true label or value for a served prediction, append-only in S3
(see modelops.feedback for the layout and the join to predictions)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from modelops import feedback
from modelops.errors import InputError, ModelOpsError
from modelops.objectstore import open_location

logger = Logger()
app = APIGatewayRestResolver()
_store: feedback.FeedbackStore | None = None
_labels: list | None = None
_labels_loaded = False


def store() -> feedback.FeedbackStore:
    global _store
    if _store is None:
        store, prefix = open_location(os.environ["MODELOPS_DATA_URI"])
        _store = feedback.FeedbackStore(store, prefix)
    return _store


def allowed_labels() -> list | None:
    """The served classifier's classes, so a typo in a label is refused rather than stored."""
    global _labels, _labels_loaded
    if not _labels_loaded:
        _labels_loaded = True
        try:
            from modelops.registry import Registry

            registry = Registry(os.environ["MODELOPS_REGISTRY"])
            classes: set = set()
            for version in filter(
                None, (os.environ.get("MODELOPS_MODEL_VERSION"), os.environ.get("MODELOPS_CHALLENGER_VERSION"))
            ):
                classes.update(registry.manifest(os.environ["MODELOPS_MODEL_NAME"], version).classes or [])
            _labels = sorted(classes, key=str) or None
        except (KeyError, ModelOpsError):
            logger.warning("model classes unavailable; feedback labels are not checked against them", exc_info=True)
    return _labels


def error(status: int, code: str, message: str, field: str | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body={"error": {"code": code, "message": message, **({"field": field} if field else {})}},
    )


@app.post("/feedback")
def post_feedback() -> Response:
    try:
        body = app.current_event.json_body
    except (ValueError, TypeError):
        return error(400, "malformed_json", "the body is not valid JSON", "body")
    try:
        fields = feedback.validate_feedback(body, allowed_labels())
    except InputError as exc:
        return error(400, exc.code, str(exc), exc.field)
    record = store().append(**fields)
    logger.info("feedback stored", extra={"feedback_id": record.feedback_id, "request_id": record.request_id})
    return Response(
        status_code=202,
        content_type="application/json",
        body={"feedback_id": record.feedback_id, "request_id": record.request_id, "entity_id": record.entity_id},
    )


@app.exception_handler(BadRequestError)
def bad_request(exc: BadRequestError) -> Response:
    return error(400, "bad_request", str(exc))


@app.exception_handler(ModelOpsError)
def storage_error(exc: ModelOpsError) -> Response:
    logger.exception("feedback could not be stored")
    return error(503, "feedback_unavailable", "feedback could not be stored; retry later")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
