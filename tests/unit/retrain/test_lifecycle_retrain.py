"""The retrain decision end to end on moto S3 (registry, lock, history). CodeDeploy is replaced by a
fake deployer with the same interface, because moto's CodeDeploy never runs a deployment; the real
CodeDeploy adapter is tested with botocore Stubber in test_lifecycle_deploy.py."""

from __future__ import annotations

import json
import threading

import pytest
from modelops.model import training
from modelops.model.dataset import load_builtin
from modelops.registry import CANDIDATE, CHAMPION
from modelops.retrain.finalize import finalize
from modelops.retrain.run import RetrainConfig, Retrainer
from support.lifecycle import (
    NOW,
    TRUSTED_URI,
    Clock,
    FakeDeployer,
    ListLabelled,
    MemoryPin,
    Notes,
    SerializedPuts,
    put_trusted_rows,
)

from devtools.lifecycle_sim import labelled_traffic

ALARM = {"source": "aws.cloudwatch", "alarm": "modelops-breast-cancer-quality", "state": "ALARM"}


@pytest.fixture(scope="module")
def dataset():
    return load_builtin("breast_cancer")


@pytest.fixture
def champion(registry, classifier_dir):
    manifest = registry.register(classifier_dir)
    registry.set_alias(manifest.name, CHAMPION, manifest.version)
    return registry.load(manifest.name, manifest.version)


def traffic(dataset, champion, factor, n=400):
    return labelled_traffic(dataset, champion.estimator, champion.manifest.version, n, factor, start=NOW - n * 60 - 10)


@pytest.fixture(autouse=True)
def curated_trusted_rows(s3):
    put_trusted_rows(s3)


def make(registry, records, *, clock=None, deployer=None, notes=None, **config):
    cfg = RetrainConfig(**{"margin": 0.01, "floors": {"accuracy": 0.8}, "trusted_uri": TRUSTED_URI, **config})
    return Retrainer(
        registry,
        "breast-cancer",
        labelled=ListLabelled(records),
        deployer=deployer or FakeDeployer(),
        notifier=notes or Notes(),
        config=cfg,
        clock=clock or Clock(),
    )


def events(registry, kind=None):
    return [e for e in registry.history("breast-cancer") if kind is None or e["event"] == kind]


def test_better_candidate_is_registered_and_its_rollout_started(registry, champion, dataset):
    deployer, notes = FakeDeployer(), Notes()
    result = make(registry, traffic(dataset, champion, 1.3), deployer=deployer, notes=notes).run(ALARM)
    assert result.outcome == "promoted", result.reason
    versions = registry.list_versions("breast-cancer")
    assert result.candidate in versions and len(versions) == 2
    assert deployer.started == [result.candidate]
    assert result.deployment_id == "d-1"
    # champion moves only after the rollout succeeds; the candidate alias marks the version in flight
    assert registry.resolve("breast-cancer", CHAMPION) == champion.manifest.version
    assert registry.resolve("breast-cancer", CANDIDATE) == result.candidate
    m = result.metrics
    assert m["candidate"]["accuracy"] >= m["champion"]["accuracy"] + 0.01
    assert m["candidate"]["rows"] == m["champion"]["rows"] == result.data["holdout_rows"] == 120
    # the decision is in the registry history with trigger, data, metrics and decision
    decision = events(registry, "retrain_decision")[-1]
    assert decision["trigger"] == ALARM
    assert decision["outcome"] == "promoted"
    assert decision["data"]["original"]["uri"] == "sklearn:breast_cancer"
    # the champion's 114 held-out rows are the trusted set: judged on, never trained on
    assert decision["data"]["train_rows"] == 569 - 114 + 280
    assert decision["data"]["trusted_rows_not_trained_on"] == 114
    assert decision["data"]["trusted"]["rows"] == 114 + 150
    trusted = m["trusted"]
    assert trusted["candidate"]["accuracy"] >= trusted["champion"]["accuracy"] + 0.01
    assert trusted["candidate"]["rows"] == 114 + 150
    assert decision["metrics"]["champion"]["accuracy"] == pytest.approx(m["champion"]["accuracy"])
    assert "beats the champion" in decision["reason"]
    # the candidate keeps the champion's recipe and remembers the original data
    candidate = registry.manifest("breast-cancer", result.candidate)
    assert candidate.recipe["estimator"] == champion.manifest.recipe["estimator"]
    assert candidate.recipe["original_data"] == "sklearn:breast_cancer"
    # ... and keeps the champion's trusted set, byte for byte
    assert candidate.evaluation["sha256"] == champion.manifest.evaluation["sha256"]
    assert candidate.evaluation["from_version"] == champion.manifest.version
    assert notes.messages and "rolling out" in notes.messages[0][0]


def test_worse_candidate_is_not_promoted_and_the_reason_is_recorded(registry, champion, dataset):
    deployer, notes = FakeDeployer(), Notes()
    result = make(registry, traffic(dataset, champion, 1.0), deployer=deployer, notes=notes).run(ALARM)
    assert result.outcome == "rejected"
    assert "does not beat the champion by the margin" in result.reason
    assert deployer.started == []
    assert registry.list_versions("breast-cancer") == [champion.manifest.version]
    assert registry.get_alias("breast-cancer", CANDIDATE).version is None
    decision = events(registry, "retrain_decision")[-1]
    assert decision["outcome"] == "rejected" and decision["reason"] == result.reason
    assert decision["metrics"]["candidate"]["accuracy"] < decision["metrics"]["champion"]["accuracy"] + 0.01
    assert "not promoted" in notes.messages[0][0]


def test_candidate_failing_an_absolute_floor_is_not_promoted(registry, champion, dataset):
    deployer = FakeDeployer()
    result = make(
        registry, traffic(dataset, champion, 1.3), deployer=deployer, floors={"accuracy": 0.999, "log_loss": 0.0001}
    ).run(ALARM)
    assert result.outcome == "rejected"
    assert "fails the floors" in result.reason and "accuracy" in result.reason and "log_loss" in result.reason
    assert deployer.started == []


def test_missing_training_data_leaves_the_champion_untouched(registry, classifier_dir, copy_dir, dataset):
    broken = copy_dir(classifier_dir)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["training_data"]["uri"] = "s3://modelops-test/data/gone.csv"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    registry.register(broken)
    registry.set_alias("breast-cancer", CHAMPION, manifest["version"])
    champion = registry.load("breast-cancer", manifest["version"])
    deployer = FakeDeployer()
    result = make(registry, traffic(dataset, champion, 1.3), deployer=deployer).run(ALARM)
    assert result.outcome == "failed" and result.stage == "data"
    assert "gone.csv" in result.reason
    assert registry.resolve("breast-cancer", CHAMPION) == manifest["version"]
    assert registry.list_versions("breast-cancer") == [manifest["version"]]
    assert deployer.started == []
    assert events(registry, "retrain_failed")[-1]["stage"] == "data"


def test_too_few_labelled_rows_is_skipped_without_cooldown(registry, champion, dataset):
    clock = Clock()
    result = make(registry, traffic(dataset, champion, 1.3, n=30), clock=clock).run(ALARM)
    assert result.outcome == "skipped" and "30 labelled predictions" in result.reason
    again = make(registry, traffic(dataset, champion, 1.3), clock=clock).run(ALARM)
    assert again.outcome == "promoted"


def test_a_second_alarm_during_a_run_is_a_no_op(registry, champion, dataset):
    records = traffic(dataset, champion, 1.3)
    deployer = FakeDeployer()
    second: list = []

    def train_and_meanwhile_alarm(*args, **kwargs):
        second.append(make(registry, records, deployer=deployer).run({**ALARM, "alarm": "second"}))
        return training.train(*args, **kwargs)

    first = make(registry, records, deployer=deployer)
    first.train_fn = train_and_meanwhile_alarm
    result = first.run(ALARM)
    assert result.outcome == "promoted"
    assert second[0].outcome == "skipped" and "already running" in second[0].reason
    assert deployer.started == [result.candidate]
    assert [e["trigger"]["alarm"] for e in events(registry, "retrain_skipped")] == ["second"]


def test_concurrent_alarms_in_threads_produce_one_retrain(registry, champion, dataset):
    records = traffic(dataset, champion, 1.3)
    deployer = FakeDeployer()
    registry.s3 = SerializedPuts(registry.s3)
    barrier = threading.Barrier(3)
    results = []

    def fire(i):
        r = make(registry, records, deployer=deployer)
        barrier.wait()
        results.append(r.run({**ALARM, "n": i}))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["promoted", "skipped", "skipped"]
    assert len(deployer.started) == 1
    assert len(registry.list_versions("breast-cancer")) == 2


def test_cooldown_holds_between_retrains(registry, champion, dataset):
    clock = Clock()
    records = traffic(dataset, champion, 1.0)
    assert make(registry, records, clock=clock, cooldown_seconds=86400).run(ALARM).outcome == "rejected"
    clock.t += 3600
    blocked = make(registry, records, clock=clock, cooldown_seconds=86400).run(ALARM)
    assert blocked.outcome == "skipped" and "cooldown" in blocked.reason
    clock.t += 86400
    assert make(registry, records, clock=clock, cooldown_seconds=86400).run(ALARM).outcome == "rejected"


def test_rollout_in_flight_blocks_a_new_retrain(registry, champion, dataset):
    deployer = FakeDeployer()
    deployer.running = "d-42"
    result = make(registry, traffic(dataset, champion, 1.3), deployer=deployer).run(ALARM)
    assert result.outcome == "skipped" and "d-42" in result.reason
    assert deployer.started == []


def test_dry_run_decides_but_changes_nothing(registry, champion, dataset):
    deployer = FakeDeployer()
    result = make(registry, traffic(dataset, champion, 1.3), deployer=deployer).run(ALARM, dry_run=True)
    assert result.outcome == "dry_run" and result.reason.startswith("would promote")
    assert deployer.started == [] and registry.list_versions("breast-cancer") == [champion.manifest.version]


def test_finalize_success_pins_the_live_model_as_champion(registry, champion, dataset):
    deployer, pin, notes = FakeDeployer(), MemoryPin(champion.manifest.version), Notes()
    result = make(registry, traffic(dataset, champion, 1.3), deployer=deployer).run(ALARM)
    deployer.live = result.candidate  # CodeDeploy moved the alias
    detail = finalize(registry, "breast-cancer", deployer, pin, notes, result.deployment_id, succeeded=True)
    assert detail["outcome"] == "promoted"
    assert pin.value == result.candidate
    assert registry.resolve("breast-cancer", CHAMPION) == result.candidate
    assert events(registry, "rollout_finished")[-1]["champion"] == result.candidate


def test_finalize_failure_keeps_the_champion(registry, champion, dataset):
    deployer, pin = FakeDeployer(live=champion.manifest.version), MemoryPin(champion.manifest.version)
    result = make(registry, traffic(dataset, champion, 1.3), deployer=deployer).run(ALARM)
    detail = finalize(registry, "breast-cancer", deployer, pin, Notes(), result.deployment_id, succeeded=False)
    assert detail["outcome"] == "rolled_back"
    assert pin.value == champion.manifest.version
    assert registry.resolve("breast-cancer", CHAMPION) == champion.manifest.version
