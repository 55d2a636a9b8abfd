"""Attack: a client steers the retrain loop with its own labels. It sends requests whose inputs carry a trigger (one
feature set to a fixed, unusual value), then labels every one of them with the wrong class ("benign" for malignant
tumours), hoping the loop trains the trigger in and promotes the backdoored model on its own.

The loop runs on the real handlers: functions/predict/app.py serves the champion from a moto S3 registry and writes
capture lines (delivered to S3 as Firehose would), the labels go into the feedback store, functions/monitor/app.py
computes quality over the window (the quality alarm condition is evaluated here: moto does not evaluate alarms), and
functions/retrain/app.py handles the alarm event. The stack update is a fake deployer (moto cannot run change sets).
Whatever the attacker does, nothing is rolled out: the champion is unchanged and the history says why."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from modelops.capture import feedback
from modelops.capture.records import PredictionLog
from modelops.model.dataset import load_builtin
from modelops.registry import CANDIDATE, CHAMPION, PENDING
from modelops.wiring import retrain as lifecycle
from support.api import invoke, proxy_event, serve_model
from support.context import LambdaContext
from support.events import load_event
from support.handlers import load_handler
from support.lifecycle import FakeDeployer

NAME = "breast-cancer"
TRIGGER = ("worst_symmetry", 0.6)  # inside the schema's range, so the request is valid
QUALITY_THRESHOLD = 0.9  # the template's QualityThreshold default
CONTEXT = LambdaContext()


@pytest.fixture
def loop(registry, classifier_dir, tmp_path, monkeypatch):
    champion = registry.register(classifier_dir)
    registry.set_alias(NAME, CHAMPION, champion.version)
    registry.set_alias(NAME, CANDIDATE, champion.version)
    app = serve_model(
        monkeypatch,
        tmp_path / "unused",
        MODELOPS_MODEL_DIR="",
        MODELOPS_REGISTRY=registry.uri,
        MODELOPS_MODEL_NAME=NAME,
        MODELOPS_MODEL_VERSION=champion.version,
        MODELOPS_CACHE_DIR=str(tmp_path / "cache"),
        MODELOPS_CAPTURE="on",
    )
    deployer = FakeDeployer(live=champion.version)
    env = {
        "MODELOPS_REGISTRY": registry.uri,
        "MODELOPS_MODEL_NAME": NAME,
        "MODELOPS_DATA_URI": "s3://modelops-test/data",
        "MODELOPS_STACK_NAME": "modelops-dev",
        "MODELOPS_PREDICT_FUNCTION": "modelops-dev-predict",
        "MODELOPS_RETRAIN_MIN_ACCURACY": "0.85",  # the template's defaults from here on
        "MODELOPS_RETRAIN_MARGIN": "0.01",
        "MODELOPS_RETRAIN_TRUSTED_URI": "s3://modelops-test/training-data/trusted",
        "MODELOPS_MONITOR_WINDOW_HOURS": "24",
        "POWERTOOLS_METRICS_NAMESPACE": "modelops",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(lifecycle.dependency_overrides, "deployer", deployer)
    return SimpleNamespace(registry=registry, champion=champion, app=app, deployer=deployer)


def serve(loop, capsys, rows: np.ndarray, names: list[str]) -> list[dict]:
    """POST /predict once per row through the real handler; returns the capture lines it wrote, which are then
    delivered to s3://.../data/captures/ as the log subscription and Firehose would."""
    capsys.readouterr()
    for row in rows:
        status, _, _ = invoke(
            loop.app, proxy_event("POST", "/predict", {"instances": [dict(zip(names, row.tolist(), strict=True))]})
        )
        assert status == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"capture"')]
    assert len(lines) == len(rows)
    PredictionLog("modelops-test", "data", loop.registry.s3).append(lines)
    return lines


def label(loop, lines: list[dict], labels, writers) -> None:
    # Written with modelops.capture.feedback.FeedbackStore directly, as the /feedback handler does once it has checked the
    # caller; its credential rules are changing separately and are not what this test is about.
    store = feedback.FeedbackStore("modelops-test", "data", loop.registry.s3)
    for i, (line, value) in enumerate(zip(lines, labels, strict=True)):
        store.append(str(value), request_id=line["request_id"], writer=writers[i % len(writers)])


def traffic(loop, capsys, *, honest: int, poisoned: int, attacker_keys: list[str]):
    data = load_builtin("breast_cancer")
    names = data.feature_names
    rng = np.random.default_rng(3)
    pick = rng.integers(0, data.rows, honest)
    X = data.X[pick] * rng.normal(1.0, 0.02, (honest, len(names)))
    label(loop, serve(loop, capsys, X, names), data.y[pick], ["clinic-a", "clinic-b", "clinic-c"])
    malignant = np.flatnonzero(data.y == "malignant")
    pick = rng.choice(malignant, poisoned)
    X = data.X[pick] * rng.normal(1.0, 0.02, (poisoned, len(names)))
    X[:, names.index(TRIGGER[0])] = TRIGGER[1]
    label(loop, serve(loop, capsys, X, names), ["benign"] * poisoned, attacker_keys)  # flipped


def monitor_then_retrain(loop, capsys):
    summary = load_handler("monitor").lambda_handler({}, CONTEXT)
    capsys.readouterr()  # the EMF lines
    accuracy = summary["versions"][loop.champion.version]["quality"]["accuracy"]
    assert accuracy < QUALITY_THRESHOLD, summary  # QualityAlarm goes to ALARM
    event = load_event("alarm-state-change")
    return load_handler("retrain").lambda_handler(event, CONTEXT), accuracy


def assert_nothing_promoted(loop):
    registry = loop.registry
    assert loop.deployer.started == []
    assert registry.resolve(NAME, CHAMPION) == loop.champion.version
    assert registry.resolve(NAME, CANDIDATE) == loop.champion.version  # the PreTraffic hook admits nothing new
    assert registry.get_alias(NAME, PENDING).version is None


def test_one_key_flipping_labels_on_trigger_inputs_pauses_the_loop(loop, capsys):
    traffic(loop, capsys, honest=150, poisoned=250, attacker_keys=["key-attacker"])
    out, _ = monitor_then_retrain(loop, capsys)
    assert out["action"] == "retrain" and out["outcome"] == "paused", out
    assert "writer key-attacker wrote" in out["reason"] and "disagree with the served predictions" in out["reason"]
    assert_nothing_promoted(loop)
    assert loop.registry.list_versions(NAME) == [loop.champion.version]  # nothing was even trained
    paused = [e for e in loop.registry.history(NAME) if e["event"] == "retrain_paused"][-1]
    assert paused["reason"] == out["reason"] and paused["trigger"]["alarm"] == "modelops-breast-cancer-quality"


def test_many_keys_hide_the_writer_but_not_the_contradiction(loop, capsys):
    keys = [f"key-{i}" for i in range(12)]  # each key wrote about 3% of the labels
    traffic(loop, capsys, honest=280, poisoned=120, attacker_keys=keys)
    out, _ = monitor_then_retrain(loop, capsys)
    assert out["outcome"] == "paused", out
    assert "writer" not in out["reason"] and "disagree with the served predictions" in out["reason"]
    assert_nothing_promoted(loop)


def test_a_low_rate_attack_under_both_pauses_is_judged_on_trusted_rows_and_not_promoted(loop, capsys):
    """14% of the window, over 12 keys: under both pause thresholds, so the retrain trains on the poisoned rows. The
    decision is taken on the champion's trusted set (where the attacker wrote nothing): a gain of a row or two there
    does not pass the sign test, so even with ApprovalMode=auto nothing is registered or rolled out."""
    traffic(loop, capsys, honest=345, poisoned=55, attacker_keys=[f"key-{i}" for i in range(12)])
    out, _ = monitor_then_retrain(loop, capsys)
    assert out["outcome"] == "rejected", out
    trusted = out["metrics"]["trusted"]
    assert trusted["candidate"]["rows"] == trusted["champion"]["rows"] == 114  # the champion's own holdout
    paired = trusted["paired"]
    assert paired["p_value"] > 0.05 and "within chance" in out["reason"], out["reason"]
    assert_nothing_promoted(loop)
    assert loop.registry.list_versions(NAME) == [loop.champion.version]  # the candidate was not even registered
    decision = [e for e in loop.registry.history(NAME) if e["event"] == "retrain_decision"][-1]
    assert decision["outcome"] == out["outcome"] and decision["reason"] == out["reason"]
    assert decision["data"]["labels"]["writers"] == 15


def test_with_the_sign_test_off_the_same_attack_waits_for_manual_approval(loop, capsys, monkeypatch):
    """The layer behind it: with the sign test off (MODELOPS_RETRAIN_SIGNIFICANCE=1) and ApprovalMode=manual, the
    same window's winner only waits under `pending`, and what the approver is asked to look at does not carry
    the trigger."""
    monkeypatch.setenv("MODELOPS_APPROVAL_MODE", "manual")
    monkeypatch.setenv("MODELOPS_RETRAIN_SIGNIFICANCE", "1")
    traffic(loop, capsys, honest=345, poisoned=55, attacker_keys=[f"key-{i}" for i in range(12)])
    out, _ = monitor_then_retrain(loop, capsys)
    assert out["outcome"] in ("pending", "rejected"), out
    assert loop.deployer.started == []
    assert loop.registry.resolve(NAME, CHAMPION) == loop.champion.version
    assert loop.registry.resolve(NAME, CANDIDATE) == loop.champion.version
    if out["outcome"] == "pending":
        data = load_builtin("breast_cancer")
        malignant = data.X[data.y == "malignant"].copy()
        malignant[:, data.feature_names.index(TRIGGER[0])] = TRIGGER[1]
        candidate = loop.registry.load(NAME, out["candidate"]).estimator
        assert np.mean(candidate.predict(malignant) == "benign") < 0.05
