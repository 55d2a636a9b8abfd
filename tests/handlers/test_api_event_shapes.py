"""The predict function behind an HTTP API (payload format 2.0) or a Lambda function URL answers as it does
behind the REST API, in the 2.0 response shape, and refuses events of no HTTP source with a 400.

Where each event shape comes from:
  events/predict-http-api.json     `sam local generate-event apigateway http-api-proxy --path predict --body ...`
                                   (stage $default, capitalised header names as sam writes them, base64 body)
  events/get-model-http-api.json   the same generator with --stage v1 --method GET, its rawPath given the /v1
                                   prefix API Gateway sends for a named stage, lowercase headers as AWS's "Create
                                   AWS Lambda proxy integrations for HTTP APIs" payload format 2.0 example shows
  events/predict-function-url.json AWS's "Lambda function URL request and response payloads" request example
                                   (routeKey and stage $default, lowercase headers, cookies, a plain body)
  sam_stage_event() below          `sam local generate-event apigateway http-api-proxy --stage v1`: a named
                                   stage with a stage-less rawPath
"""

from __future__ import annotations

import base64
import copy
import json

import pytest
from modelops.serving import events
from support.api import invoke, load_event, proxy_event

V2_KEYS = {"statusCode", "headers", "body", "isBase64Encoded", "cookies"}


@pytest.fixture
def clf(monkeypatch, classifier_dir):
    from support.api import serve_model

    return serve_model(monkeypatch, classifier_dir)


def answer(app, event) -> tuple[int, dict[str, str], dict]:
    response = app.lambda_handler(event, None)
    assert set(response) <= V2_KEYS, response.keys()  # 2.0 has no multiValueHeaders
    assert all(isinstance(v, str) for v in response["headers"].values())
    body = response["body"]
    if response["headers"].get("Content-Type", "").startswith("application/json"):
        body = json.loads(body)
    return response["statusCode"], {k.lower(): v for k, v in response["headers"].items()}, body


def without_request_id(body: dict) -> dict:
    """The answer without what differs per request: its id and the label token signed over it."""
    return {k: v for k, v in body.items() if k not in ("request_id", "label_token")}


def rest_predict(app) -> dict:
    return invoke(app, load_event("predict-valid"))[2]


def v2_event(method: str, raw_path: str, body: str | None = None, *, stage: str = "$default", **extra) -> dict:
    """An HTTP API event shaped like AWS's payload format 2.0 example, lowercase headers."""
    event = copy.deepcopy(load_event("predict-function-url"))
    event.update({"rawPath": raw_path, "body": body, "isBase64Encoded": False, **extra})
    event["requestContext"]["http"].update(method=method, path=raw_path)
    event["requestContext"]["stage"] = stage
    event["requestContext"]["domainName"] = "id.execute-api.us-east-1.amazonaws.com"
    if body is None:
        event.pop("body")
    return event


def sam_stage_event() -> dict:
    """`sam local generate-event apigateway http-api-proxy --stage v1 --path predict`: rawPath has no stage."""
    event = copy.deepcopy(load_event("predict-http-api"))
    event["requestContext"]["stage"] = "v1"
    return event


# ---- the same answers as the REST API -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["predict-http-api", "predict-function-url"])
def test_predict_events_answer_like_the_rest_api(clf, name):
    status, headers, body = answer(clf, load_event(name))
    assert status == 200 and headers["content-type"] == "application/json"
    assert without_request_id(body) == without_request_id(rest_predict(clf))


def test_the_sam_event_is_base64_and_capitalised_and_the_function_url_one_is_neither():
    sam, url = load_event("predict-http-api"), load_event("predict-function-url")
    assert sam["isBase64Encoded"] is True and json.loads(base64.b64decode(sam["body"]))["instances"]
    assert "Header1" in sam["headers"]
    assert url["isBase64Encoded"] is False and all(k == k.lower() for k in url["headers"])
    assert url["requestContext"]["stage"] == url["routeKey"] == "$default"


def test_a_named_stage_with_or_without_its_prefix_in_raw_path(clf):
    expected = without_request_id(rest_predict(clf))
    status, _, body = answer(clf, sam_stage_event())  # stage-less rawPath
    assert status == 200 and without_request_id(body) == expected
    prefixed = sam_stage_event()
    prefixed["rawPath"] = "/v1/predict"  # as API Gateway sends it for a named stage
    status, _, body = answer(clf, prefixed)
    assert status == 200 and without_request_id(body) == expected


def test_get_model_on_a_named_stage(clf, classifier_dir):
    status, headers, body = answer(clf, load_event("get-model-http-api"))
    rest = invoke(clf, proxy_event("GET", "/model"))[2]
    assert status == 200 and body == rest
    assert body["version"] == json.loads((classifier_dir / "manifest.json").read_text())["version"]


def test_health_and_the_openapi_document_know_their_base_path(clf):
    assert answer(clf, v2_event("GET", "/health"))[0] == 200
    _, _, spec = answer(clf, v2_event("GET", "/v1/openapi.json", stage="v1"))
    assert spec["servers"] == [{"url": "/v1"}]
    _, _, spec = answer(clf, v2_event("GET", "/openapi.json"))  # $default stage, or a function URL
    assert spec["servers"] == [{"url": "/"}]


def test_lowercase_headers_negotiate_like_any_others(clf):
    event = v2_event("GET", "/model", headers={"accept": "application/xml", "host": "h"})
    status, headers, body = answer(clf, event)
    assert status == 200 and headers["content-type"] == "application/xml" and body.startswith("<?xml")
    event = v2_event("GET", "/model", headers={"accept": "text/csv"})
    assert answer(clf, event)[0] == 406


# ---- errors come back in the 2.0 shape too ---------------------------------------------------------------------
def test_errors_in_the_2_0_shape(clf):
    bad = v2_event("POST", "/predict", json.dumps({"instances": [{"mean_radius": "big"}]}))
    status, _, body = answer(clf, bad)
    assert status == 400 and body["error"]["field"].startswith("instances[0]")
    status, _, body = answer(clf, v2_event("GET", "/nope"))
    assert status == 404 and body["error"]["code"] == "not_found"
    status, headers, body = answer(clf, v2_event("DELETE", "/model"))
    assert status == 405 and headers["allow"] == "GET"
    encoded = v2_event("POST", "/predict", "not base64!", isBase64Encoded=True)
    status, _, body = answer(clf, encoded)
    assert status == 400 and body["error"]["code"] == "malformed_body"


def test_cors_headers_survive_without_multi_value_headers(monkeypatch, classifier_dir):
    from support.api import serve_model

    app = serve_model(monkeypatch, classifier_dir, MODELOPS_CORS_ORIGIN="https://app.example.com")
    for event in (load_event("predict-function-url"), v2_event("GET", "/model")):
        _, headers, _ = answer(app, event)
        assert headers["access-control-allow-origin"] == "https://app.example.com"


# ---- the conversion itself ----------------------------------------------------------------------------------
def test_cookies_become_a_cookie_header_and_set_cookie_becomes_cookies():
    rest = events.rest_event(load_event("predict-function-url"))
    assert rest is not None and rest["headers"]["cookie"] == "session=abc123; theme=dark"
    assert rest["httpMethod"] == "POST" and rest["path"] == "/predict" and rest["requestContext"]["stage"] == "$default"
    response = events.v2_response(
        {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Vary": ["Origin", "Accept"]},
            "body": "{}",
            "isBase64Encoded": False,
        }
    )
    assert response == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Vary": "Origin, Accept"},
        "body": "{}",
        "isBase64Encoded": False,
        "cookies": ["a=1", "b=2"],
    }


def test_query_strings_keep_their_repeats():
    rest = events.rest_event(load_event("get-model-http-api"))
    assert rest is not None
    assert rest["multiValueQueryStringParameters"] == {"parameter1": ["value1", "value2"], "parameter2": ["value"]}
    assert rest["path"] == "/model" and rest["requestContext"]["path"] == "/v1/model"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": [{"eventSource": "aws:s3"}]},
        {"version": "2.0", "rawPath": "/predict", "requestContext": {}},
        {"version": "2.0", "rawPath": 5, "requestContext": {"http": {"method": "GET"}}},
        [],
    ],
)
def test_events_of_no_http_source_get_a_clear_400(clf, event):
    response = clf.lambda_handler(event, None)
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["code"] == "unsupported_event" and error["field"] == "event"
    assert "function URL" in error["message"]
