"""The feedback function under test: its context, label tokens as the predict function issues them, POST /feedback
driven through the real handler with events/feedback.json, and the `deployed` fixture that serves a model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from modelops.capture import labelsecret, labeltoken

from support.aws import BUCKET
from support.context import LambdaContext
from support.events import feedback_event_with_body
from support.handlers import load_handler

FEEDBACK_CONTEXT = LambdaContext(function_name="feedback", memory_limit_in_mb=256)
KEY_ID = "feedbackkey1"
EVENT_REQUEST_ID = "3f1c9a52-6c1e-4b5e-9d0e-0e6f1c2b7a10"  # the request events/feedback.json labels


def served_token(request_id: str = EVENT_REQUEST_ID, rows: int = 1, entity_id: str | None = None) -> str:
    """The label_token the predict function would have answered (signed with the local development secret,
    as no MODELOPS_LABEL_TOKEN_SECRET is set in tests)."""
    return labeltoken.issue(
        labelsecret.LOCAL_DEV_SECRET, request_id=request_id, entity_id=entity_id, rows=rows, model_version="v"
    )


def served(request_id="req-1", rows=2, entity_id=None, served_at=None, secret=labelsecret.LOCAL_DEV_SECRET) -> str:
    return labeltoken.issue(
        secret, request_id=request_id, entity_id=entity_id, rows=rows, model_version="v", served_at=served_at
    )


def post(app, body, *, api_key_id: str | None = KEY_ID, user_arn: str | None = None, raw: bool = False) -> dict:
    event = feedback_event_with_body(body if raw else json.dumps(body).encode())
    event["requestContext"]["identity"].update({"apiKeyId": api_key_id, "userArn": user_arn})
    out = app.lambda_handler(event, FEEDBACK_CONTEXT)
    out["json"] = json.loads(out["body"])
    return out


def error_of(out: dict) -> tuple[int, str, str | None]:
    err = out["json"]["error"]
    return out["statusCode"], err["code"], err.get("field")


@pytest.fixture
def deployed(s3, registry, monkeypatch) -> Any:
    """Environment of the feedback function for a registered model; returns a function that registers it."""
    monkeypatch.setenv("MODELOPS_DATA_URI", f"s3://{BUCKET}/data")
    monkeypatch.setenv("MODELOPS_REGISTRY", f"s3://{BUCKET}/registry")
    monkeypatch.delenv(labelsecret.SECRET_ENV, raising=False)

    def serve(model_dir):
        manifest = registry.register(model_dir)
        monkeypatch.setenv("MODELOPS_MODEL_NAME", manifest.name)
        monkeypatch.setenv("MODELOPS_MODEL_VERSION", manifest.version)
        return load_handler("feedback")

    return serve


def feedback_event(**body) -> dict:
    """events/feedback.json's label with a label_token for its request (overridden by keyword arguments)."""
    fields = {"request_id": EVENT_REQUEST_ID, "actual": "malignant", "label_token": served_token(), **body}
    return feedback_event_with_body(json.dumps({k: v for k, v in fields.items() if v is not None}).encode())
