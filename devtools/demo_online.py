"""Online prediction, end to end over real HTTP: the champion model behind the local API answers
valid JSON, XML and columnar requests, and refuses bad ones with the right status and field."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from modelops.registry import Registry

from .demo import Answer, Demo


def _served_manifest(demo: Demo) -> Any:
    stack = demo.stack
    params = stack._template().parameters()
    registry = Registry(stack.registry_uri(), s3=stack.aws.client("s3"))
    return registry.manifest(params.get("ModelName", "breast-cancer"), stack.champion or "champion")


def _predictions(rows: int, version: str) -> Any:
    def check(answer: Answer) -> str | None:
        doc = answer.json()
        if len(doc.get("predictions", [])) != rows:
            return f"expected {rows} predictions, got {len(doc.get('predictions', []))}"
        if doc.get("model", {}).get("version") != version:
            return f"served model {doc.get('model')} is not the champion {version}"
        if not doc.get("request_id"):
            return "no request_id in the answer"
        return None

    return check


def _error(field: str | None, code: str | None = None) -> Any:
    def check(answer: Answer) -> str | None:
        error = answer.json().get("error") or {}
        if code and error.get("code") != code:
            return f"error code {error.get('code')!r}, expected {code!r}"
        if field and field not in f"{error.get('field')} {error.get('message')}":
            return f"the error does not name the field {field!r}: {error}"
        return None

    return check


def _xml(answer: Answer) -> str | None:
    if "xml" not in answer.headers.get("content-type", ""):
        return f"content type is {answer.headers.get('content-type')!r}, not XML"
    root = ET.fromstring(answer.body)
    return None if root.find(".//predictions") is not None else "no <predictions> element in the XML"


def run(demo: Demo) -> None:
    manifest = _served_manifest(demo)
    version = manifest.version
    example = manifest.schema.example_instance()
    names = list(example)
    demo.section(f"online prediction: {manifest.name} {version} ({manifest.task}, {len(names)} features) at {demo.url}")

    demo.http("GET", "/health", expect=200, title="health check")
    demo.http(
        "GET",
        "/model",
        expect=200,
        title="which model answers",
        check=lambda a: (
            None
            if a.json().get("version") == version or a.json().get("model", {}).get("version") == version
            else "GET /model does not name the champion"
        ),
    )
    demo.http(
        "POST",
        "/predict",
        body={"instances": [example]},
        expect=200,
        title="one row, JSON",
        check=_predictions(1, version),
    )
    demo.http(
        "POST",
        "/predict",
        body={"instances": [example, example]},
        expect=200,
        title="two rows, answer in XML",
        headers={"Accept": "application/xml"},
        check=_xml,
    )
    demo.http(
        "POST",
        "/predict",
        body={"columns": names, "data": [list(example.values())] * 3},
        expect=200,
        title="columnar form, three rows",
        check=_predictions(3, version),
    )

    missing = dict(example)
    gone = names[0]
    del missing[gone]
    demo.http(
        "POST",
        "/predict",
        body={"instances": [missing]},
        expect=400,
        title=f"missing feature {gone!r} -> 400",
        check=_error(gone),
    )
    wrong = {**example, names[1]: "not-a-number"}
    demo.http(
        "POST",
        "/predict",
        body={"instances": [wrong]},
        expect=400,
        title=f"text where {names[1]!r} must be a number -> 400",
        check=_error(names[1]),
    )
    demo.http(
        "POST",
        "/predict",
        body='{"instances": [',
        headers={"Content-Type": "application/json"},
        expect=400,
        title="malformed JSON -> 400",
    )
    demo.http(
        "POST",
        "/predict",
        body={"instances": [example] * 1001},
        expect=413,
        title="1001 rows, more than the limit -> 413",
        check=_error(None, "too_many_rows"),
    )
    demo.http(
        "POST",
        "/predict",
        body={"instances": [example]},
        headers={"Accept": "text/csv"},
        expect=406,
        title="an answer format the API does not speak -> 406",
    )
    demo.http(
        "GET",
        "/openapi.json",
        expect=200,
        title="the OpenAPI document",
        check=lambda a: None if "/predict" in json.loads(a.body).get("paths", {}) else "no /predict in paths",
    )
