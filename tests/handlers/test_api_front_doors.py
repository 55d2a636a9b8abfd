"""The handlers behind each front door of template.yaml's ApiType: the same answers to REST proxy (1.0), HTTP API
(2.0) and function URL (2.0) events for predictions, XML and errors; POST /feedback behind an IAM-authed HTTP API or
function URL, with the IAM caller as the label's writer; and an OpenAPI document that declares what the front door
enforces (API key, SigV4 or JWT).

Event shapes: events/predict-valid.json (`sam local generate-event apigateway aws-proxy`), events/predict-http-api.json
(`sam local generate-event apigateway http-api-proxy`), events/predict-function-url.json (AWS's "Lambda function URL
request and response payloads" example); events/feedback-http-api.json and events/feedback-function-url.json carry
requestContext.authorizer.iam as AWS's payload format 2.0 ("Create AWS Lambda proxy integrations for HTTP APIs") and
function URL request examples show it for IAM auth.
"""

from __future__ import annotations

import base64
import copy
import json

import pytest
from modelops.capture import feedback as fb
from modelops.capture import labelsecret
from support.api import invoke, load_event, serve_model
from support.aws import BUCKET
from support.feedback import EVENT_REQUEST_ID, FEEDBACK_CONTEXT, served_token
from support.handlers import load_handler

SHAPES = ("predict-valid", "predict-http-api", "predict-function-url")
WRITER = "arn:aws:iam::111122223333:user/example-user"


@pytest.fixture
def clf(monkeypatch, classifier_dir):
    return serve_model(monkeypatch, classifier_dir)


def with_body(event: dict, body: str, **headers: str) -> dict:
    """The event with a plain JSON body and extra headers, in its own shape (1.0: both header fields)."""
    event = copy.deepcopy(event)
    event.update(body=body, isBase64Encoded=False)
    for name, value in headers.items():
        event["headers"][name] = value
        if "multiValueHeaders" in event:
            event.setdefault("multiValueHeaders", {})[name] = [value]
    return event


def rows_body(name: str) -> str:
    event = load_event(name)
    body = event["body"]
    return base64.b64decode(body).decode() if event.get("isBase64Encoded") else body


def answer(app, event) -> tuple[int, dict[str, str], str]:
    response = app.lambda_handler(event, FEEDBACK_CONTEXT)
    if event.get("version") == "2.0":
        assert "multiValueHeaders" not in response and all(isinstance(v, str) for v in response["headers"].values())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), ", ".join(values))
    return response["statusCode"], headers, response["body"]


# ---- predictions: the same answer whichever front door sent the event --------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_predict_xml_on_request_from_every_front_door(clf, shape):
    event = with_body(load_event(shape), rows_body("predict-valid"), accept="application/xml")
    event["headers"]["content-type"] = "application/json"
    status, headers, body = answer(clf, event)
    assert status == 200 and headers["content-type"] == "application/xml"
    assert body.startswith("<?xml") and "<predictions><item>" in body


@pytest.mark.parametrize("shape", SHAPES)
def test_predict_errors_from_every_front_door(clf, shape):
    status, _, body = answer(clf, with_body(load_event(shape), json.dumps({"instances": []})))
    assert status == 400 and json.loads(body)["error"]["field"] == "instances"
    status, _, body = answer(clf, with_body(load_event(shape), "{not json"))
    assert status == 400 and json.loads(body)["error"]["code"] == "malformed_json"
    status, _, _ = answer(clf, with_body(load_event(shape), rows_body("predict-valid"), accept="text/csv"))
    assert status == 406


# ---- labels behind an IAM-authed HTTP API or function URL ------------------------------------------------------
@pytest.fixture
def feedback_app(s3, registry, classifier_dir, monkeypatch):
    manifest = registry.register(classifier_dir)
    monkeypatch.setenv("MODELOPS_DATA_URI", f"s3://{BUCKET}/data")
    monkeypatch.setenv("MODELOPS_REGISTRY", f"s3://{BUCKET}/registry")
    monkeypatch.setenv("MODELOPS_MODEL_NAME", manifest.name)
    monkeypatch.setenv("MODELOPS_MODEL_VERSION", manifest.version)
    monkeypatch.delenv(labelsecret.SECRET_ENV, raising=False)
    return load_handler("feedback")


def label(name: str, **fields) -> dict:
    body = {"request_id": EVENT_REQUEST_ID, "actual": "malignant", "label_token": served_token(), **fields}
    return with_body(load_event(name), json.dumps(body))


@pytest.mark.parametrize("name", ["feedback-http-api", "feedback-function-url"])
def test_feedback_behind_iam_stores_the_caller_as_writer(feedback_app, s3, name):
    status, headers, body = answer(feedback_app, label(name))
    assert status == 202 and headers["content-type"] == "application/json", body
    (record,) = fb.FeedbackStore(BUCKET, "data", s3=s3).read()
    assert (record.request_id, record.actual, record.writer) == (EVENT_REQUEST_ID, "malignant", WRITER)


@pytest.mark.parametrize("name", ["feedback-http-api", "feedback-function-url"])
def test_feedback_refusals_in_the_2_0_shape(feedback_app, s3, name):
    status, _, body = answer(feedback_app, load_event(name))  # the event file has no label_token
    assert status == 400 and json.loads(body)["error"]["field"] == "label_token"
    status, _, body = answer(feedback_app, label(name, actual="malignnt"))
    assert status == 400 and json.loads(body)["error"]["field"] == "actual"
    forged = label(name, label_token=served_token()[:-2] + "AA")
    assert answer(feedback_app, forged)[0] == 403
    other_path = copy.deepcopy(load_event(name))
    other_path["rawPath"] = other_path["rawPath"].replace("/feedback", "/predict")
    assert answer(feedback_app, other_path)[0] == 404  # a function URL sends every path: only /feedback answers
    assert fb.FeedbackStore(BUCKET, "data", s3=s3).read() == []


def test_feedback_without_an_iam_caller_has_no_writer(feedback_app, s3):
    event = label("feedback-function-url")
    del event["requestContext"]["authorizer"]
    assert answer(feedback_app, event)[0] == 202
    assert [r.writer for r in fb.FeedbackStore(BUCKET, "data", s3=s3).read()] == [None]


def test_a_2_0_event_without_a_method_is_refused(feedback_app):
    event = label("feedback-http-api")
    del event["requestContext"]["http"]
    status, _, body = answer(feedback_app, event)
    assert status == 400 and json.loads(body)["error"]["code"] == "unsupported_event"


# ---- the OpenAPI document says what the front door enforces ---------------------------------------------------
def document(monkeypatch, classifier_dir, **env: str) -> dict:
    app = serve_model(monkeypatch, classifier_dir, **env)
    status, _, body = invoke(app, load_event("get-model"))  # warm; then the document
    assert status == 200
    event = copy.deepcopy(load_event("predict-function-url"))
    event.update(rawPath="/openapi.json", body=None)
    event["requestContext"]["http"].update(method="GET", path="/openapi.json")
    response = app.lambda_handler(event, None)
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def security_by_path(spec: dict) -> dict[str, list | None]:
    return {path: op.get("security") for path, ops in spec["paths"].items() for op in ops.values()}


@pytest.mark.parametrize(
    ("env", "scheme", "health_secured"),
    [
        ({}, "apiKey", False),
        ({"MODELOPS_API_TYPE": "rest", "MODELOPS_API_AUTH": "api-key"}, "apiKey", False),
        ({"MODELOPS_API_TYPE": "http", "MODELOPS_API_AUTH": "iam"}, "sigv4", False),
        ({"MODELOPS_API_TYPE": "http", "MODELOPS_API_AUTH": "jwt"}, "jwt", False),
        ({"MODELOPS_API_TYPE": "url", "MODELOPS_API_AUTH": "iam"}, "sigv4", True),
    ],
)
def test_document_security_follows_the_front_door(monkeypatch, classifier_dir, env, scheme, health_secured):
    spec = document(monkeypatch, classifier_dir, **env)
    assert set(spec["components"]["securitySchemes"]) == {scheme}
    declared = spec["components"]["securitySchemes"][scheme]
    if scheme == "apiKey":
        assert (declared["type"], declared["name"], declared["in"]) == ("apiKey", "x-api-key", "header")
    elif scheme == "sigv4":
        assert (declared["type"], declared["name"]) == ("apiKey", "Authorization")
        assert declared["x-amazon-apigateway-authtype"] == "awsSigv4"
        service = "lambda" if env["MODELOPS_API_TYPE"] == "url" else "execute-api"
        assert service in declared["description"]
    else:
        assert (declared["type"], declared["scheme"], declared["bearerFormat"]) == ("http", "bearer", "JWT")
    security = security_by_path(spec)
    assert security["/predict"] == security["/model"] == [{scheme: []}]
    assert security["/health"] == ([{scheme: []}] if health_secured else None)
    assert ("Every route" in spec["info"]["description"]) is health_secured


@pytest.mark.parametrize(
    "env",
    [
        {"MODELOPS_API_TYPE": "grpc"},
        {"MODELOPS_API_TYPE": "url", "MODELOPS_API_AUTH": "jwt"},
        {"MODELOPS_API_TYPE": "rest", "MODELOPS_API_AUTH": "iam"},
    ],
)
def test_a_front_door_the_template_cannot_make_is_refused_at_init(env):
    from modelops.serving.front_door import FrontDoor

    with pytest.raises(ValueError, match="MODELOPS_API_"):
        FrontDoor.from_env(env)
