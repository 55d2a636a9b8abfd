"""The open edges of the prediction API: /docs is a small page that loads pinned, integrity-checked Swagger UI
assets from a CDN; /docs and /openapi.json are cacheable (Cache-Control, ETag, 304); the document's security
per route is what API Gateway enforces in the SAM-translated template; the open routes have their own, lower
stage throttle. All through the real lambda_handler."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path

import pytest
from modelops.serving import docs_page
from support.api import proxy_event, serve_model

DOCS_BOUND = 4096  # bytes of the /docs answer (it was 1,719,692 with the Swagger UI assets inlined)
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method"}


@pytest.fixture
def clf(monkeypatch, classifier_dir):
    return functools.partial(serve_model, monkeypatch)(classifier_dir)


def _get(app, path, **headers):
    response = app.lambda_handler(proxy_event("GET", path, headers=headers or None), None)
    single = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], {**single, **multi}, response.get("body") or ""


def test_docs_page_is_small_and_loads_pinned_assets_with_integrity(clf):
    status, headers, page = _get(clf, "/docs", Accept="text/html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert len(page.encode()) < DOCS_BOUND
    assert "webpackUniversalModuleDefinition" not in page and "<style>" not in page  # nothing inlined
    for url, sri in (docs_page.SWAGGER_UI_JS, docs_page.SWAGGER_UI_CSS):
        assert f"swagger-ui-dist@{docs_page.SWAGGER_UI_VERSION}/" in url
        assert f'"{url}" integrity="{sri}" crossorigin="anonymous"' in page
    assert '"url": "/live/openapi.json"' in page  # the document, under the stage prefix clients see


def test_pinned_integrity_hashes_are_those_of_the_swagger_ui_release():
    """Powertools bundles swagger-ui-dist's swagger-ui-bundle.js and swagger-ui.css byte for byte (renamed .min);
    the page's hashes must be theirs, or browsers refuse the assets."""
    import aws_lambda_powertools

    bundled = Path(aws_lambda_powertools.__file__).parent / "event_handler" / "openapi" / "swagger_ui"
    js = (bundled / "swagger-ui-bundle.min.js").read_bytes()
    assert f'"{docs_page.SWAGGER_UI_VERSION}"'.encode() in js, "Powertools bundles another Swagger UI: re-pin"
    for name, (_, sri) in (
        ("swagger-ui-bundle.min.js", docs_page.SWAGGER_UI_JS),
        ("swagger-ui.min.css", docs_page.SWAGGER_UI_CSS),
    ):
        digest = base64.b64encode(hashlib.sha384((bundled / name).read_bytes()).digest()).decode()
        assert sri == f"sha384-{digest}", name


@pytest.mark.parametrize(
    "path, max_age", [("/docs", docs_page.DOCS_MAX_AGE), ("/openapi.json", docs_page.DOCUMENT_MAX_AGE)]
)
def test_open_documentation_is_cacheable_and_revalidates_with_304(clf, path, max_age):
    status, headers, body = _get(clf, path)
    assert status == 200 and body
    assert headers["cache-control"] == f"public, max-age={max_age}"
    tag = headers["etag"]
    assert tag.startswith('"') and tag == docs_page.etag(body)
    for validator in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        status, again, body = _get(clf, path, **{"If-None-Match": validator})
        assert status == 304 and body == "" and again["etag"] == tag, validator
        assert again["cache-control"] == headers["cache-control"]
    status, _, body = _get(clf, path, **{"If-None-Match": '"stale"'})
    assert status == 200 and body


def test_document_security_per_route_is_what_api_gateway_enforces(clf, translated):
    _, _, text = _get(clf, "/openapi.json")
    spec = json.loads(text)
    paths = translated["PredictApi"]["Properties"]["Body"]["paths"]
    predict_routes = {}  # path -> API key required, for the routes served by the predict function
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in METHODS and "PredictFunction" in json.dumps(operation["x-amazon-apigateway-integration"]):
                predict_routes[path] = bool(operation.get("security"))
    assert "security" not in spec  # no global requirement: each operation says what it needs
    assert "/feedback" not in spec["paths"]  # another function's route, not this document's to describe
    for path, operations in spec["paths"].items():
        assert path in predict_routes, f"{path} is documented but API Gateway does not route it to this function"
        for method, operation in operations.items():
            documented = bool(operation.get("security"))
            assert documented == predict_routes[path], f"{method.upper()} {path}: document says key={documented}"
            if documented:
                assert operation["security"] == [{"apiKey": []}]
    assert {p for p, keyed in predict_routes.items() if not keyed} == {"/health", "/openapi.json", "/docs"}
    assert predict_routes["/predict"] and not predict_routes["/health"]


def test_open_routes_have_their_own_lower_stage_throttle(template, translated):
    stages = [
        r
        for r in translated.values()
        if r["Type"] == "AWS::ApiGateway::Stage" and r["Properties"]["RestApiId"] == {"Ref": "PredictApi"}
    ]
    assert len(stages) == 1
    settings = {s["ResourcePath"]: s for s in stages[0]["Properties"]["MethodSettings"]}
    default = settings["/*"]
    assert default["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    params = template["Parameters"]
    for path in ("/health", "/openapi.json", "/docs"):
        setting = settings["/" + path.replace("/", "~1")]  # API Gateway writes "/" in a path as "~1"
        assert setting["HttpMethod"] == "*" and setting["MetricsEnabled"] is True
        assert setting["ThrottlingRateLimit"] == {"Ref": "OpenRouteThrottleRateLimit"}
        assert setting["ThrottlingBurstLimit"] == {"Ref": "OpenRouteThrottleBurstLimit"}
    assert "/~1predict" not in settings  # POST /predict keeps the stage default and the per-key usage plan
    assert int(params["OpenRouteThrottleRateLimit"]["Default"]) < int(params["ApiThrottleRateLimit"]["Default"])
    assert int(params["OpenRouteThrottleBurstLimit"]["Default"]) < int(params["ApiThrottleBurstLimit"]["Default"])
