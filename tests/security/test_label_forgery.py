"""Attack: a client that holds only the prediction API key (or no key to the label API at all) tries to write
ground truth, to steer monitoring and retraining. Two walls:

1. API Gateway. POST /feedback lives on its own REST API whose usage plan lists only the feedback key. API
   Gateway's key check is modelled here from samtranslator's output of template.yaml (no account, no
   LocalStack): a keyed method accepts a key only when a usage plan that the key belongs to (UsagePlanKey)
   lists that API's stage (ApiStages), else 403. A path without a method is API Gateway's 403 too. On the
   prediction API, /feedback only reaches the predict function's catch-all route, which answers 404.
2. The label token. Even with the feedback key, the real handler (functions/feedback/app.py) stores only labels
   that carry the label_token a real prediction answered, for that request, its rows and its entity. The
   secret is in (moto's) Secrets Manager, read by both functions as deployed."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from modelops.capture import feedback as fb
from modelops.capture import labelsecret, labeltoken
from modelops.wiring.predict import build as build_gateway
from support.aws import BUCKET
from support.events import feedback_event_with_body
from support.feedback import FEEDBACK_CONTEXT
from support.handlers import load_handler
from support.template import load_template, sam_translate

FORBIDDEN = 403


class ApiGatewayKeys:
    """Which function a request reaches, or API Gateway's 403, for (api, API key, method, path)."""

    def __init__(self, resources: dict[str, Any]):
        self.resources = resources
        plan_stages = {
            lid: {(s["ApiId"]["Ref"], s["Stage"]["Ref"]) for s in r["Properties"]["ApiStages"]}
            for lid, r in resources.items()
            if r["Type"] == "AWS::ApiGateway::UsagePlan"
        }
        self.key_stages: dict[str, set] = {}
        for r in resources.values():
            if r["Type"] == "AWS::ApiGateway::UsagePlanKey":
                key, plan = r["Properties"]["KeyId"]["Ref"], r["Properties"]["UsagePlanId"]["Ref"]
                self.key_stages.setdefault(key, set()).update(plan_stages[plan])

    def call(self, api: str, key: str | None, method: str, path: str) -> str | int:
        paths = self.resources[api]["Properties"]["Body"]["paths"]
        operations = paths.get(path) or (paths.get("/{proxy+}") if path != "/" else None)
        if operations is None:
            return FORBIDDEN  # Missing Authentication Token
        operation = operations.get(method.lower()) or operations.get("x-amazon-apigateway-any-method")
        if operation is None:
            return FORBIDDEN
        if operation.get("security") and (api, f"{api}Stage") not in self.key_stages.get(key or "", set()):
            return FORBIDDEN  # Forbidden: the key is not in a usage plan of this stage
        uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
        return next(lid for lid in ("FeedbackFunction", "PredictFunction") if lid in uri)


@pytest.fixture(scope="module")
def gateway_keys() -> ApiGatewayKeys:
    return ApiGatewayKeys(sam_translate(load_template())["Resources"])


def test_the_prediction_key_cannot_reach_the_label_route(gateway_keys):
    predict_key, feedback_key = "PredictApiApiKey", "FeedbackApiApiKey"
    assert gateway_keys.call("FeedbackApi", predict_key, "POST", "/feedback") == FORBIDDEN
    assert gateway_keys.call("FeedbackApi", None, "POST", "/feedback") == FORBIDDEN
    assert gateway_keys.call("FeedbackApi", feedback_key, "POST", "/feedback") == "FeedbackFunction"
    # on the prediction API, /feedback is no label route: only the predict function's catch-all takes it
    assert gateway_keys.call("PredictApi", predict_key, "POST", "/feedback") == "PredictFunction"
    # and the label key cannot score
    assert gateway_keys.call("PredictApi", feedback_key, "POST", "/predict") == FORBIDDEN
    assert gateway_keys.call("FeedbackApi", feedback_key, "POST", "/predict") == FORBIDDEN
    assert gateway_keys.call("PredictApi", predict_key, "POST", "/predict") == "PredictFunction"


@pytest.fixture
def stack(s3, registry, classifier_dir, monkeypatch):
    """The predict gateway and the feedback handler as deployed: one model, one Secrets Manager secret."""
    manifest = registry.register(classifier_dir)
    boto3.client("secretsmanager").create_secret(Name="label-token-secret", SecretString="generated-64-chars")
    env = {
        "MODELOPS_MODEL_DIR": str(classifier_dir),
        "MODELOPS_MODEL_NAME": manifest.name,
        "MODELOPS_MODEL_VERSION": manifest.version,
        "MODELOPS_CAPTURE": "off",
        labelsecret.SECRET_ENV: "label-token-secret",
    }
    for name, value in {
        **env,
        "MODELOPS_DATA_URI": f"s3://{BUCKET}/data",
        "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MODELOPS_MODEL_DIR")
    instance = json.loads((classifier_dir / "golden.json").read_text())["instances"][0]
    return build_gateway(env), load_handler("feedback"), instance


def predict(gateway, instance, entity: str, request_id: str) -> dict:
    out = gateway.handle(
        {
            "httpMethod": "POST",
            "path": "/predict",
            "resource": "/predict",
            "headers": {"Content-Type": "application/json", "x-entity-id": entity},
            "requestContext": {"requestId": request_id},
            "body": json.dumps({"instances": [instance]}),
            "isBase64Encoded": False,
        }
    )
    assert out["statusCode"] == 200, out
    return json.loads(out["body"])


def label(app, body: dict) -> tuple[int, dict]:
    event = feedback_event_with_body(json.dumps(body).encode())
    event["requestContext"]["identity"]["apiKeyId"] = "feedback-key-1"
    out = app.lambda_handler(event, FEEDBACK_CONTEXT)
    return out["statusCode"], json.loads(out["body"])


def test_the_prediction_api_answers_404_for_feedback(stack):
    gateway, _, _ = stack
    event = {
        "httpMethod": "POST",
        "path": "/feedback",
        "resource": "/{proxy+}",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"requestId": "r", "stage": "v1", "path": "/v1/feedback"},
        "body": json.dumps({"request_id": "r", "actual": "benign"}),
        "isBase64Encoded": False,
    }
    out = gateway.handle(event)
    assert out["statusCode"] == 404 and json.loads(out["body"])["error"]["code"] == "not_found"


def test_labels_for_unserved_requests_or_other_entities_are_refused(stack, s3):
    gateway, app, instance = stack
    answer = predict(gateway, instance, "cust-1", "served-1")
    token = answer["label_token"]

    # no token: a request id alone (served or not) is not enough
    assert label(app, {"request_id": "never-served", "actual": "benign"})[0] == 400
    # a token made up for a request never served: the attacker does not have the secret
    for guessed in (labelsecret.LOCAL_DEV_SECRET, b"generated-64-chars-guess", b""):
        forged = labeltoken.issue(guessed, request_id="never-served", entity_id=None, rows=1, model_version="v")
        status, body = label(app, {"actual": "benign", "label_token": forged})
        assert (status, body["error"]["code"]) == (403, labeltoken.INVALID), guessed
    # the served token's signature over another request's or entity's payload
    signature = token.split(".")[1]
    for change in ({"request_id": "never-served"}, {"entity_id": "cust-2"}, {"rows": 1000}):
        fields = {"request_id": "served-1", "entity_id": "cust-1", "rows": 1, "model_version": "v", "served_at": 0}
        payload = labeltoken.issue(b"x", **{**fields, **change}).split(".")[0]
        status, body = label(app, {"actual": "benign", "label_token": f"{payload}.{signature}"})
        assert (status, body["error"]["code"]) == (403, labeltoken.INVALID), change
    # the real token, used to label another entity's prediction or another request
    status, body = label(app, {"entity_id": "cust-2", "actual": "benign", "label_token": token})
    assert (status, body["error"]["code"], body["error"]["field"]) == (403, fb.TOKEN_MISMATCH, "entity_id")
    status, body = label(app, {"request_id": "never-served", "actual": "benign", "label_token": token})
    assert (status, body["error"]["field"]) == (403, "request_id")
    assert label(app, {"row": 1, "actual": "benign", "label_token": token})[0] == 400  # one row was served
    assert fb.FeedbackStore(BUCKET, "data", s3=s3).read() == []

    # the label the token was issued for is stored, bound to the served request and entity, with its writer
    status, body = label(app, {"entity_id": "cust-1", "actual": "benign", "label_token": token})
    assert status == 202, body
    (record,) = fb.FeedbackStore(BUCKET, "data", s3=s3).read()
    assert (record.request_id, record.entity_id, record.writer) == ("served-1", "cust-1", "feedback-key-1")
    grant = labeltoken.verify(token, b"generated-64-chars", window_seconds=3600)
    assert (grant.rows, grant.model_version) == (1, answer["model"]["version"])
