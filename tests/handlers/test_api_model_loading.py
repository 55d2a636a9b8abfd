"""Loading the pinned model at init: from the S3 registry (moto) through the /tmp cache, from a local
directory, and every way it can fail, which must answer 503 (reason in the logs), never crash."""

from __future__ import annotations

import io
import json

import pytest
from modelops.model.artifact import Manifest
from support.api import invoke, predict_app, proxy_event

MODEL_VARS = (
    "MODELOPS_MODEL_DIR",
    "MODELOPS_MODEL_NAME",
    "MODELOPS_MODEL_VERSION",
    "MODELOPS_CACHE_DIR",
    "MODELOPS_LOAD_RETRY_SECONDS",
)


@pytest.fixture
def start(monkeypatch):
    def _start(**env):
        for var in MODEL_VARS:
            monkeypatch.delenv(var, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        app = predict_app()
        app.reset()
        return app

    return _start


def _version(directory) -> str:
    return Manifest.from_json((directory / "manifest.json").read_bytes()).version


def _golden_body(directory):
    return {"instances": json.loads((directory / "golden.json").read_text())["instances"][:2]}


def test_loads_the_pinned_version_from_the_registry_and_caches_it(start, registry, classifier_dir, tmp_path):
    version = registry.register(classifier_dir).version
    cache = tmp_path / "cache"
    app = start(
        MODELOPS_REGISTRY=registry.uri,
        MODELOPS_MODEL_NAME="breast-cancer",
        MODELOPS_MODEL_VERSION=version,
        MODELOPS_CACHE_DIR=str(cache),
    )
    status, _, body = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 200 and body["model"]["version"] == version
    cached = cache / "breast-cancer" / version
    assert {p.name for p in cached.iterdir()} == {"model.joblib", "manifest.json", "golden.json"}
    # a re-initialised environment reuses the verified copy: it works with the registry object gone
    registry.s3.delete_object(
        Bucket=registry.bucket, Key=registry.version_key("breast-cancer", version, "model.joblib")
    )
    app.reset()
    assert invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))[0] == 200


def test_corrupt_cache_is_downloaded_again(start, registry, classifier_dir, tmp_path):
    version = registry.register(classifier_dir).version
    cached = tmp_path / "breast-cancer" / version
    cached.mkdir(parents=True)
    for name in ("manifest.json", "golden.json"):
        (cached / name).write_bytes((classifier_dir / name).read_bytes())
    (cached / "model.joblib").write_bytes(b"truncated")
    app = start(
        MODELOPS_REGISTRY=registry.uri,
        MODELOPS_MODEL_NAME="breast-cancer",
        MODELOPS_MODEL_VERSION=version,
        MODELOPS_CACHE_DIR=str(tmp_path),
    )
    assert invoke(app, proxy_event("GET", "/health"))[0] == 200
    assert (cached / "model.joblib").read_bytes() == (classifier_dir / "model.joblib").read_bytes()


def _capture_logs(app, monkeypatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr(app.gateway.log.registered_handler, "stream", stream)
    return stream


@pytest.mark.parametrize(
    "path, method, body", [("/predict", "POST", True), ("/model", "GET", False), ("/health", "GET", False)]
)
def test_missing_version_answers_503_with_the_reason_in_the_logs(
    start, registry, classifier_dir, tmp_path, monkeypatch, path, method, body
):
    registry.register(classifier_dir)
    app = start(
        MODELOPS_REGISTRY=registry.uri,
        MODELOPS_MODEL_NAME="breast-cancer",
        MODELOPS_MODEL_VERSION="20990101T000000000Z-abcdef",
        MODELOPS_CACHE_DIR=str(tmp_path),
    )
    logs = _capture_logs(app, monkeypatch)
    status, headers, answer = invoke(app, proxy_event(method, path, _golden_body(classifier_dir) if body else None))
    assert status == 503
    assert answer["error"]["code"] == "model_unavailable"
    assert int(headers["retry-after"]) >= 1
    assert "20990101T000000000Z-abcdef" not in json.dumps(answer)  # the reason is for the logs, not the client
    records = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    reasons = [r.get("reason", "") for r in records if r.get("message") == "model unavailable"]
    assert reasons and "not found" in reasons[0]


def test_unreachable_bucket_is_503(start, s3, tmp_path):
    app = start(
        MODELOPS_REGISTRY="s3://no-such-bucket/registry",
        MODELOPS_MODEL_NAME="breast-cancer",
        MODELOPS_MODEL_VERSION="20260101T000000000Z-abcdef",
        MODELOPS_CACHE_DIR=str(tmp_path),
    )
    assert invoke(app, proxy_event("GET", "/health"))[0] == 503
    assert "no-such-bucket" in app.gateway.holder.error


def test_load_is_retried_after_the_pause(start, registry, classifier_dir, tmp_path):
    version = _version(classifier_dir)
    app = start(
        MODELOPS_REGISTRY=registry.uri,
        MODELOPS_MODEL_NAME="breast-cancer",
        MODELOPS_MODEL_VERSION=version,
        MODELOPS_CACHE_DIR=str(tmp_path),
        MODELOPS_LOAD_RETRY_SECONDS="0",
    )
    assert invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))[0] == 503
    registry.register(classifier_dir)  # the version appears (e.g. an S3 outage ends)
    status, _, body = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 200 and body["model"]["version"] == version
    assert invoke(app, proxy_event("GET", "/model"))[0] == 200


def test_no_retry_before_the_pause(start, registry, classifier_dir, tmp_path):
    version = _version(classifier_dir)
    app = start(
        MODELOPS_REGISTRY=registry.uri,
        MODELOPS_MODEL_NAME="breast-cancer",
        MODELOPS_MODEL_VERSION=version,
        MODELOPS_CACHE_DIR=str(tmp_path),
        MODELOPS_LOAD_RETRY_SECONDS="3600",
    )
    registry.register(classifier_dir)
    assert invoke(app, proxy_event("GET", "/health"))[0] == 503


@pytest.mark.parametrize(
    "env, words",
    [
        ({"MODELOPS_MODEL_VERSION": "champion"}, "alias"),
        ({"MODELOPS_MODEL_VERSION": ""}, "MODELOPS_MODEL_VERSION"),
        ({"MODELOPS_MODEL_NAME": ""}, "MODELOPS_MODEL_NAME"),
    ],
)
def test_incomplete_or_alias_pin_is_refused(start, env, words):
    base = {
        "MODELOPS_REGISTRY": "s3://modelops-test/registry",
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "MODELOPS_MODEL_VERSION": "20260101T000000000Z-abcdef",
    }
    app = start(**{**base, **env})
    assert invoke(app, proxy_event("GET", "/health"))[0] == 503
    assert words in app.gateway.holder.error


def test_model_dir_must_match_the_pin(start, classifier_dir, regressor_dir):
    app = start(MODELOPS_MODEL_DIR=str(classifier_dir), MODELOPS_MODEL_VERSION="20000101T000000000Z-000000")
    assert invoke(app, proxy_event("GET", "/health"))[0] == 503
    assert "pinned to 20000101T000000000Z-000000" in app.gateway.holder.error
    app = start(MODELOPS_MODEL_DIR=str(regressor_dir), MODELOPS_MODEL_NAME="breast-cancer")
    assert invoke(app, proxy_event("GET", "/health"))[0] == 503
    app = start(
        MODELOPS_MODEL_DIR=str(classifier_dir),
        MODELOPS_MODEL_VERSION=_version(classifier_dir),
        MODELOPS_MODEL_NAME="breast-cancer",
    )
    assert invoke(app, proxy_event("GET", "/health"))[0] == 200


def test_tampered_model_is_refused(start, classifier_dir, copy_dir):
    tampered = copy_dir(classifier_dir)
    data = bytearray((tampered / "model.joblib").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "model.joblib").write_bytes(bytes(data))
    app = start(MODELOPS_MODEL_DIR=str(tampered))
    assert invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))[0] == 503
    assert "sha256" in app.gateway.holder.error


def test_client_errors_still_answered_while_the_model_is_missing(start, tmp_path):
    app = start(MODELOPS_MODEL_DIR=str(tmp_path / "missing"))
    assert invoke(app, proxy_event("POST", "/predict", raw_body="{oops"))[0] == 400
    assert invoke(app, proxy_event("GET", "/nowhere"))[0] == 404
    assert invoke(app, proxy_event("GET", "/openapi.json"))[0] == 200  # the generic document still serves
