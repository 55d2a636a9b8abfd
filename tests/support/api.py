"""Helpers for the prediction API tests: load the real predict handler and build API Gateway REST
proxy events shaped like `sam local generate-event apigateway aws-proxy` (see events/)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from support.events import load_event
from support.handlers import load_handler

_MODULE = "modelops_predict_app"


def predict_app() -> Any:
    """The handler module functions/predict/app.py, imported once; call .reset() to re-read the env."""
    return load_handler("predict", module_name=_MODULE, cached=True)


SERVING_VARS = (
    "MODELOPS_MODEL_NAME",
    "MODELOPS_MODEL_VERSION",
    "MODELOPS_CAPTURE",
    "MODELOPS_CORS_ORIGIN",
    "MODELOPS_MAX_ROWS",
    "MODELOPS_MAX_BODY_BYTES",
    "MODELOPS_DOCS",
    "MODELOPS_API_TYPE",
    "MODELOPS_API_AUTH",
)


def serve_model(monkeypatch: Any, model_dir: Any, **env: str) -> Any:
    """Start the handler on a model directory with only the given extra environment; returns the module."""
    for var in SERVING_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELOPS_MODEL_DIR", str(model_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = predict_app()
    app.reset()
    return app


def proxy_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
    base64_body: bool = False,
    request_id: str | None = None,
    stage: str = "live",
) -> dict[str, Any]:
    """A REST API proxy event; body is JSON-encoded unless raw_body is given."""
    event = load_event("get-model")
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if base64_body and text is not None:
        text = base64.b64encode(text.encode()).decode()
    all_headers = {"Accept": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    if text is not None:
        all_headers["Content-Type"] = "application/json"
    for key, value in (headers or {}).items():  # a None value removes a default header
        for existing in [k for k in all_headers if k.lower() == key.lower()]:
            del all_headers[existing]
        if value is not None:
            all_headers[key] = value
    request_id = request_id or str(uuid.uuid4())
    event.update(
        httpMethod=method,
        path=path,
        resource=path,
        body=text,
        isBase64Encoded=base64_body,
        headers=all_headers,
        multiValueHeaders={k: [v] for k, v in all_headers.items()},
    )
    event["requestContext"].update(
        httpMethod=method, resourcePath=path, requestId=request_id, stage=stage, path=f"/{stage}{path}"
    )
    return event


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """Response headers, merged from headers and multiValueHeaders, with lower-case names."""
    out = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        out[key.lower()] = ", ".join(values)
    return out


def invoke(app: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Call lambda_handler; returns status, headers and the body (parsed when it is JSON)."""
    response = app.lambda_handler(event, None)
    headers = headers_of(response)
    body = response.get("body")
    if headers.get("content-type", "").startswith("application/json") and body:
        body = json.loads(body)
    return response["statusCode"], headers, body
