"""The predict path with an A/B experiment: variant B served by the pinned challenger, sticky per entity,
per-variant EMF metrics and capture lines; no experiment (and no feature-flag lookup) without a challenger.
Models come from local artifact directories; the flag document from a local file store."""

from __future__ import annotations

import json

import pytest
from modelops.experiments import assignment as experiment
from modelops.wiring.predict import build as build_gateway


def predict_event(body: dict, headers: dict | None = None, request_id: str = "req-1") -> dict:
    return {
        "httpMethod": "POST",
        "path": "/predict",
        "resource": "/predict",
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "requestContext": {"requestId": request_id},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.fixture
def versions(classifier_dir, classifier_v2_dir):
    a = json.loads((classifier_dir / "manifest.json").read_text())
    b = json.loads((classifier_v2_dir / "manifest.json").read_text())
    instance = json.loads((classifier_dir / "golden.json").read_text())["instances"][0]
    return a["version"], b["version"], instance


def build(tmp_path, classifier_dir, classifier_v2_dir, versions, percent, capture=True):
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps(experiment.flag_document(percent)))
    env = {
        "MODELOPS_MODEL_DIR": str(classifier_dir),
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "MODELOPS_MODEL_VERSION": versions[0],
        "MODELOPS_CHALLENGER_VERSION": versions[1],
        "MODELOPS_CHALLENGER_DIR": str(classifier_v2_dir),
        "MODELOPS_AB_CONFIG_FILE": str(flags),
        "MODELOPS_CAPTURE": "on" if capture else "off",
    }
    return build_gateway(env)


def test_variant_b_served_by_challenger_and_sticky(tmp_path, classifier_dir, classifier_v2_dir, versions, capsys):
    g = build(tmp_path, classifier_dir, classifier_v2_dir, versions, 50)
    seen = {}
    for i in range(60):
        entity = f"user-{i % 20}"
        out = g.handle(predict_event({"instances": [versions[2]], "entity_id": entity}, request_id=f"r{i}"))
        assert out["statusCode"] == 200, out
        body = json.loads(out["body"])
        expected_version = versions[1] if body["variant"] == "B" else versions[0]
        assert body["model"]["version"] == expected_version
        assert seen.setdefault(entity, body["variant"]) == body["variant"]  # sticky
    assert set(seen.values()) == {"A", "B"}
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    emf = [x for x in lines if "_aws" in x]
    captures = [x for x in lines if x.get("capture")]
    assert {(x["Variant"], x["ModelVersion"]) for x in emf} == {("A", versions[0]), ("B", versions[1])}
    assert len(captures) == 60 and all(c["entity_id"].startswith("user-") for c in captures)
    assert {c["variant"] for c in captures} == {"A", "B"}


def test_header_carries_the_entity_id(tmp_path, classifier_dir, classifier_v2_dir, versions):
    g = build(tmp_path, classifier_dir, classifier_v2_dir, versions, 100, capture=False)
    out = g.handle(predict_event({"instances": [versions[2]]}, headers={"X-Entity-Id": "abc"}))
    assert json.loads(out["body"])["variant"] == "B"


def test_bad_entity_id_is_400_naming_the_field(tmp_path, classifier_dir, classifier_v2_dir, versions):
    g = build(tmp_path, classifier_dir, classifier_v2_dir, versions, 50, capture=False)
    out = g.handle(predict_event({"instances": [versions[2]], "entity_id": ["x"]}))
    assert out["statusCode"] == 400 and json.loads(out["body"])["error"]["field"] == "entity_id"


def test_unloadable_challenger_falls_back_to_champion(tmp_path, classifier_dir, classifier_v2_dir, versions):
    g = build(tmp_path, classifier_dir, tmp_path / "missing", versions, 100, capture=False)
    out = g.handle(predict_event({"instances": [versions[2]], "entity_id": "u"}))
    body = json.loads(out["body"])
    assert out["statusCode"] == 200 and body["variant"] == "A" and body["model"]["version"] == versions[0]


def test_without_challenger_no_experiment_and_no_flag_lookup(classifier_dir, versions, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("feature flags must not be evaluated without a challenger")

    monkeypatch.setattr(experiment.Experiment, "assign", refuse)
    g = build_gateway({"MODELOPS_MODEL_DIR": str(classifier_dir), "MODELOPS_MODEL_VERSION": versions[0]})
    assert g.experiment is None and g.challenger is None
    out = g.handle(predict_event({"instances": [versions[2]], "entity_id": "u"}))
    assert out["statusCode"] == 200 and json.loads(out["body"])["variant"] == "A"


def test_capture_has_latency_and_failed_requests_are_captured(tmp_path, classifier_dir, versions, capsys):
    from modelops.capture.records import parse_records

    ok = build_gateway(
        {"MODELOPS_MODEL_DIR": str(classifier_dir), "MODELOPS_MODEL_VERSION": versions[0], "MODELOPS_CAPTURE": "on"}
    )
    ok.handle(predict_event({"instances": [versions[2]]}, request_id="good"))
    broken = build_gateway(
        {
            "MODELOPS_MODEL_DIR": str(tmp_path / "missing"),
            "MODELOPS_MODEL_VERSION": versions[0],
            "MODELOPS_CAPTURE": "on",
        }
    )
    assert broken.handle(predict_event({"instances": [versions[2]]}, request_id="bad"))["statusCode"] == 503
    records = {r.request_id: r for r in parse_records(capsys.readouterr().out.encode())}
    assert records["good"].status == 200 and records["good"].latency_ms > 0
    assert records["bad"].status == 503 and records["bad"].variant == "A" and records["bad"].predictions == []
