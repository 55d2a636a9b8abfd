"""The repository's API served locally (template.yaml's routes, the real predict handler under the
Runtime Interface Emulator, the model from the local AWS registry), talked to over real HTTP."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from modelops.registry import Registry
from support.local_fixtures import api_call

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def example(predict_stack) -> dict:
    registry = Registry(predict_stack.registry_uri(), s3=predict_stack.aws.client("s3"))
    manifest = registry.manifest("breast-cancer", predict_stack.champion)
    return manifest.schema.example_instance()


def _post(stack, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return api_call(stack, "POST", "/predict", body=data, headers={"Content-Type": "application/json", **headers})


def test_valid_request_is_answered_by_the_pinned_champion(predict_stack, example):
    answer = _post(predict_stack, {"instances": [example, example]})
    assert answer.status == 200, answer.body
    doc = answer.json()
    assert doc["model"] == {"name": "breast-cancer", "version": predict_stack.champion}
    assert len(doc["predictions"]) == 2 and set(doc["predictions"]) <= {"benign", "malignant"}
    assert set(doc["probabilities"][0]) == {"benign", "malignant"}
    assert doc["request_id"]


def test_invalid_request_is_400_naming_the_field(predict_stack, example):
    row = {**example}
    del row["worst_area"]
    answer = _post(predict_stack, {"instances": [row]})
    assert answer.status == 400
    assert "worst_area" in answer.json()["error"]["field"]


def test_xml_answer(predict_stack, example):
    answer = _post(predict_stack, {"instances": [example]}, Accept="application/xml")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(answer.body)
    assert root.findtext("model/version") == predict_stack.champion
    assert root.find("predictions") is not None


def test_get_model_and_openapi(predict_stack):
    model = api_call(predict_stack, "GET", "/model")
    assert model.status == 200 and model.json()["version"] == predict_stack.champion
    spec = api_call(predict_stack, "GET", "/openapi.json")
    assert spec.status == 200 and "/predict" in spec.json()["paths"]
    # the document's base URL is the one the API is served under: the stage prefix, as on API Gateway
    assert spec.json()["servers"] == [{"url": predict_stack.gateway.base_path}]
