"""GET /model, GET /health, /openapi.json, /docs, 404 and 405 through the real lambda_handler, including
the OpenAPI document's contents and its worked examples, which must really be answered with 200."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET

import pytest
from modelops.model.artifact import load_from_dir
from support.api import invoke, proxy_event, serve_model


@pytest.fixture
def serve(monkeypatch):
    """Start the handler on a model directory with extra environment; returns the handler module."""
    return functools.partial(serve_model, monkeypatch)


@pytest.fixture
def clf(serve, classifier_dir):
    return serve(classifier_dir)


@pytest.fixture
def spec(clf):
    status, headers, body = invoke(clf, proxy_event("GET", "/openapi.json"))
    assert status == 200 and headers["content-type"] == "application/json"
    return body


def test_get_model_summarises_the_manifest(clf, classifier_dir):
    manifest = load_from_dir(classifier_dir).manifest
    status, _, body = invoke(clf, proxy_event("GET", "/model"))
    assert status == 200
    assert body["name"] == "breast-cancer" and body["version"] == manifest.version
    assert body["task"] == "classification" and body["classes"] == ["benign", "malignant"]
    assert body["features"][0] == {"name": "mean_radius", "dtype": "number"} and len(body["features"]) == 30
    assert body["metrics"] == manifest.metrics
    assert body["max_rows"] == 1000


def test_get_model_as_xml(clf):
    status, headers, text = invoke(clf, proxy_event("GET", "/model", headers={"Accept": "application/xml"}))
    assert status == 200 and headers["content-type"] == "application/xml"
    root = ET.fromstring(text.encode())
    assert root.findtext("name") == "breast-cancer"
    assert [i.findtext("name") for i in root.findall("features/item")][:2] == ["mean_radius", "mean_texture"]


def test_get_model_406(clf):
    status, _, body = invoke(clf, proxy_event("GET", "/model", headers={"Accept": "text/html"}))
    assert status == 406 and body["error"]["code"] == "not_acceptable"


def test_health(clf, classifier_dir):
    status, _, body = invoke(clf, proxy_event("GET", "/health"))
    assert status == 200
    assert body == {
        "status": "ok",
        "model": {"name": "breast-cancer", "version": load_from_dir(classifier_dir).manifest.version},
    }


@pytest.mark.parametrize("method, path", [("GET", "/nothing"), ("POST", "/predict/extra"), ("DELETE", "/models")])
def test_unknown_path_is_404(clf, method, path):
    status, _, body = invoke(clf, proxy_event(method, path, {"a": 1} if method == "POST" else None))
    assert status == 404
    assert body["error"] == {"code": "not_found", "message": f"no such resource: {path}", "field": "path"}


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("GET", "/predict", "POST"),
        ("PUT", "/predict", "POST"),
        ("DELETE", "/model", "GET"),
        ("POST", "/health", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(clf, method, path, allow):
    status, headers, body = invoke(clf, proxy_event(method, path))
    assert status == 405
    assert headers["allow"] == allow
    assert body["error"]["code"] == "method_not_allowed" and body["error"]["field"] == "method"


def test_405_as_xml(clf):
    status, headers, text = invoke(clf, proxy_event("GET", "/predict", headers={"Accept": "application/xml"}))
    assert status == 405 and headers["content-type"] == "application/xml"
    assert ET.fromstring(text.encode()).findtext("error/code") == "method_not_allowed"


def test_openapi_document_is_valid_and_describes_the_api(spec):
    from openapi_spec_validator import validate

    validate(spec)
    assert spec["info"]["title"] == "modelops prediction API"
    assert set(spec["paths"]) == {"/predict", "/model", "/health"}
    assert spec["servers"] == [{"url": "/live"}]
    assert spec["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    predict = spec["paths"]["/predict"]["post"]
    assert set(predict["responses"]) == {"200", "400", "406", "413", "415", "500", "503"}
    assert set(predict["responses"]["200"]["content"]) == {"application/json", "application/xml"}
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    instance = schemas["Instance"]
    assert len(instance["properties"]) == 30 and set(instance["required"]) == set(instance["properties"])
    assert instance["properties"]["mean_radius"]["type"] == "number"
    assert instance["additionalProperties"] is False
    assert schemas["InstancesRequest"]["properties"]["instances"]["maxItems"] == 1000
    assert set(schemas["PredictResponse"]["required"]) == {"model", "variant", "predictions", "request_id"}
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message", "field"}


def test_openapi_examples_really_answer_200(clf, spec):
    examples = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"instances", "columns"}
    answers = []
    for example in examples.values():
        status, _, body = invoke(clf, proxy_event("POST", "/predict", example["value"]))
        assert status == 200, body
        answers.append(body["predictions"])
    assert answers[0] == answers[1]


def test_openapi_follows_the_row_limit(serve, classifier_dir):
    app = serve(classifier_dir, MODELOPS_MAX_ROWS="25")
    _, _, spec = invoke(app, proxy_event("GET", "/openapi.json"))
    assert spec["components"]["schemas"]["InstancesRequest"]["properties"]["instances"]["maxItems"] == 25


def test_openapi_of_a_regressor_documents_its_features(serve, regressor_dir):
    app = serve(regressor_dir)
    _, _, spec = invoke(app, proxy_event("GET", "/openapi.json"))
    instance = spec["components"]["schemas"]["Instance"]
    assert "bmi" in instance["properties"] and len(instance["properties"]) == 10
    example = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]["instances"]
    assert invoke(app, proxy_event("POST", "/predict", example["value"]))[0] == 200


def test_openapi_server_without_stage_prefix(clf):
    event = proxy_event("GET", "/openapi.json")
    event["requestContext"]["path"] = "/openapi.json"  # custom domain or local server
    _, _, spec = invoke(clf, event)
    assert spec["servers"] == [{"url": "/"}]


def test_swagger_ui_at_docs(clf):
    status, headers, html = invoke(clf, proxy_event("GET", "/docs", headers={"Accept": "text/html"}))
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "swagger-ui" in html.lower() and "/live/openapi.json" in html


def test_docs_can_be_turned_off(serve, classifier_dir):
    app = serve(classifier_dir, MODELOPS_DOCS="off")
    for path in ("/openapi.json", "/docs"):
        status, _, body = invoke(app, proxy_event("GET", path))
        assert status == 404 and body["error"]["code"] == "not_found"
    assert invoke(app, proxy_event("GET", "/model"))[0] == 200


def test_documented_predict_route_calls_the_same_service(clf, classifier_dir, monkeypatch):
    """The resolver's POST /predict (what the document is generated from) answers like the direct path."""
    import time

    served_at = time.time()
    monkeypatch.setattr(time, "time", lambda: served_at)  # label tokens carry the second they were issued
    golden = json.loads((classifier_dir / "golden.json").read_text())
    event = proxy_event("POST", "/predict", {"instances": golden["instances"][:3]}, request_id="same-1")
    direct = clf.lambda_handler(event, None)
    routed = clf.gateway.resolver().resolve(event, None)
    assert routed["statusCode"] == direct["statusCode"] == 200
    assert json.loads(routed["body"]) == json.loads(direct["body"])
    bad = proxy_event("POST", "/predict", {"instances": [{"mean_radius": "big"}]})
    routed = clf.gateway.resolver().resolve(bad, None)
    assert routed["statusCode"] == 400
    assert json.loads(routed["body"])["error"]["field"] == "instances[0].mean_radius"


def test_custom_domain_base_path_still_takes_the_predict_path(clf, classifier_dir):
    golden = json.loads((classifier_dir / "golden.json").read_text())
    event = proxy_event("POST", "/predict", {"instances": golden["instances"][:1]})
    event["path"] = "/ml/predict"  # base path mapping on a custom domain; the resource stays /predict
    assert invoke(clf, event)[0] == 200


def test_an_event_that_is_not_from_api_gateway_gets_a_400_answer_not_a_crash(clf):
    response = clf.lambda_handler({"unexpected": True}, None)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "unsupported_event"


def test_health_probe_does_not_build_the_documented_routes(clf):
    assert invoke(clf, proxy_event("GET", "/health"))[0] == 200
    assert clf.gateway._resolver is None  # no Powertools resolver or pydantic import for probes
    routed = clf.gateway.resolver().resolve(proxy_event("GET", "/health"), None)
    assert routed["statusCode"] == 200 and json.loads(routed["body"])["status"] == "ok"
