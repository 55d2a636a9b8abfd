"""The retrain decision cannot be steered by labels clients write: the trusted evaluation set decides, the recent
labels can only veto, concentrated or contradicting labels pause the run, and manual approval holds a winner under
the `pending` alias until a person approves or rejects it. moto S3 for the registry; a fake deployer stands in for
the stack update (moto cannot run change sets or CodeDeploy)."""

from __future__ import annotations

import json

import pytest
from modelops.capture.feedback import FeedbackRecord
from modelops.core.errors import ConflictError, NotFoundError
from modelops.model.artifact import EVALUATION_FILE
from modelops.model.dataset import load_builtin
from modelops.registry import CANDIDATE, CHAMPION, PENDING
from modelops.retrain import approval, labelshift
from modelops.retrain.decision import decide_trusted
from modelops.retrain.run import RetrainConfig, Retrainer
from support.lifecycle import NOW, TRUSTED_URI, Clock, FakeDeployer, ListLabelled, Notes, put_trusted_rows

from devtools.lifecycle_sim import labelled_traffic
from modelops_cli import main

NAME = "breast-cancer"
REG = "s3://modelops-test/registry"
ALARM = {"source": "aws.cloudwatch", "alarm": "quality", "state": "ALARM"}


@pytest.fixture(scope="module")
def dataset():
    return load_builtin("breast_cancer")


@pytest.fixture
def champion(registry, classifier_dir, s3):
    put_trusted_rows(s3)
    manifest = registry.register(classifier_dir)
    registry.set_alias(NAME, CHAMPION, manifest.version)
    return registry.load(NAME, manifest.version)


def traffic(dataset, champion, factor=1.3, n=400, **kwargs):
    return labelled_traffic(
        dataset, champion.estimator, champion.manifest.version, n, factor, NOW - n * 60 - 10, **kwargs
    )


def make(registry, records, *, deployer=None, notes=None, clock=None, **config):
    cfg = RetrainConfig(**{"margin": 0.01, "floors": {"accuracy": 0.8}, "trusted_uri": TRUSTED_URI, **config})
    return Retrainer(
        registry,
        NAME,
        labelled=ListLabelled(records),
        deployer=deployer or FakeDeployer(),
        notifier=notes or Notes(),
        config=cfg,
        clock=clock or Clock(),
    )


def events(registry, kind):
    return [e for e in registry.history(NAME) if e["event"] == kind]


# ---- the decision rule ----------------------------------------------------------------------------------------------
ACC = "accuracy"


def scores(candidate, champion):
    return ({ACC: candidate}, {ACC: champion})


def test_trusted_set_decides_and_recent_labels_only_veto():
    ok, reason = decide_trusted(ACC, 0.01, 0.02, {}, scores(0.95, 0.90), scores(0.89, 0.90))
    assert ok and "trusted set: candidate beats the champion" in reason and "tolerance 0.02" in reason
    # however much better on client labels, no gain on the trusted set is no promotion
    ok, reason = decide_trusted(ACC, 0.01, 0.02, {}, scores(0.905, 0.90), scores(0.99, 0.60))
    assert not ok and reason.startswith("trusted set: candidate does not beat the champion by the margin")
    # better on the trusted set but clearly worse on the recent labels: refused too
    ok, reason = decide_trusted(ACC, 0.01, 0.02, {}, scores(0.95, 0.90), scores(0.85, 0.90))
    assert not ok and "loses on the recent holdout by more than the tolerance" in reason
    # floors apply to the trusted set
    ok, reason = decide_trusted(ACC, 0.01, 0.02, {ACC: 0.97}, scores(0.95, 0.90), scores(0.95, 0.90))
    assert not ok and "fails the floors" in reason
    # the direction of a lower-is-better metric is respected
    ok, _ = decide_trusted("mae", 1.0, 2.0, {}, ({"mae": 40.0}, {"mae": 45.0}), ({"mae": 41.0}, {"mae": 40.0}))
    assert ok


def test_candidate_that_wins_on_client_labels_but_not_on_the_trusted_set_is_rejected(registry, champion, dataset, s3):
    # no curated rows: the trusted set is the champion's own holdout, where the shifted-world candidate gains nothing
    s3.delete_object(Bucket="modelops-test", Key="training-data/trusted/device-b.csv")
    deployer = FakeDeployer()
    result = make(registry, traffic(dataset, champion), deployer=deployer).run(ALARM)
    assert result.outcome == "rejected", result.reason
    m = result.metrics
    assert m["candidate"][ACC] > m["champion"][ACC] + 0.05  # the recent labels alone would have promoted it
    assert m["trusted"]["candidate"][ACC] < m["trusted"]["champion"][ACC] + 0.01
    assert "trusted set" in result.reason and deployer.started == []
    assert registry.list_versions(NAME) == [champion.manifest.version]


def test_recent_label_tolerance_is_a_config_setting(registry, champion, dataset):
    records = traffic(dataset, champion)
    # a tolerance below zero demands a recent-holdout gain the candidate does not have
    result = make(registry, records, recent_tolerance=-0.5).run(ALARM)
    assert result.outcome == "rejected" and "loses on the recent holdout" in result.reason


def test_tampered_trusted_set_stops_the_retrain(registry, champion, dataset):
    key = registry.version_key(NAME, champion.manifest.version, EVALUATION_FILE)
    body, _ = registry.store.get(key)
    registry.store.put(key, body.replace(b"malignant", b"benign", 30))
    deployer = FakeDeployer()
    result = make(registry, traffic(dataset, champion), deployer=deployer).run(ALARM)
    assert result.outcome == "failed" and result.stage == "champion"
    assert "does not match its sha256" in result.reason and deployer.started == []


# ---- label-shift pauses ---------------------------------------------------------------------------------------------
def test_one_writer_with_most_of_the_labels_pauses_the_retrain(registry, champion, dataset):
    deployer, notes = FakeDeployer(), Notes()
    records = traffic(dataset, champion, writers=("key-attacker", "key-attacker", "key-attacker", "clinic-a"))
    result = make(registry, records, deployer=deployer, notes=notes).run(ALARM)
    assert result.outcome == "paused" and result.stage == "inspect"
    assert "writer key-attacker wrote 75% of the 400 labels" in result.reason
    assert deployer.started == [] and registry.list_versions(NAME) == [champion.manifest.version]
    paused = events(registry, "retrain_paused")[-1]
    assert paused["reason"] == result.reason and paused["data"]["labels"]["top_writer"]["writer"] == "key-attacker"
    assert "paused" in notes.messages[-1][0]
    # a pause is not a decision: no cooldown, the next (clean) window retrains at once
    again = make(registry, traffic(dataset, champion)).run(ALARM)
    assert again.outcome == "promoted", again.reason


def test_labels_contradicting_the_served_predictions_pause_the_retrain(registry, champion, dataset):
    records = traffic(dataset, champion)
    for r in records[::2]:  # half the labels flipped: far above the champion's error on its trusted set
        r.actual = "benign" if r.prediction == "malignant" else "malignant"
    result = make(registry, records).run(ALARM)
    assert result.outcome == "paused"
    assert "disagree with the served predictions" in result.reason
    assert result.data["labels"]["disagreement"]["window"] > 0.4


def test_inspect_rules():
    def rows(writers, n=100):
        return [FeedbackRecord(at=i, actual="a", writer=writers[i % len(writers)]) for i in range(n)]

    def check(records, **kw):
        args = {"classification": False, "baseline_error": None, "max_writer_share": 0.5}
        return labelshift.inspect(records, **{**args, "max_disagreement_jump": 0.2, "min_rows": 50, **kw})

    # one labelling key (the template creates one) writes every label: not a sign of steering by itself
    assert not check(rows(["feedback-key"])).suspect and not check(rows([None])).suspect
    assert check(rows(["a", "a", "a", None])).suspect  # unattributed labels are one more, unknown writer
    assert "writer a wrote 75%" in check(rows(["a", "a", "a", None])).reasons[0]
    assert "(unknown)" in check(rows([None, None, None, "b"])).reasons[0]
    assert not check(rows(["a", "b", "c"])).suspect
    assert not check(rows(["a", "a", "b"], n=40)).suspect  # too few rows to judge
    assert not check(rows(["a", "a", "b"]), max_writer_share=1.0).suspect  # 1 turns the check off


# ---- manual approval ------------------------------------------------------------------------------------------------
def test_manual_mode_registers_the_winner_as_pending_and_starts_nothing(registry, champion, dataset):
    deployer, notes = FakeDeployer(), Notes()
    result = make(registry, traffic(dataset, champion), deployer=deployer, notes=notes, approval="manual").run(ALARM)
    assert result.outcome == "pending" and result.stage == "approval", result.reason
    assert f"modelops models approve {NAME} {result.candidate}" in result.reason
    assert deployer.started == []
    assert registry.resolve(NAME, PENDING) == result.candidate
    assert registry.get_alias(NAME, CANDIDATE).version is None
    assert registry.resolve(NAME, CHAMPION) == champion.manifest.version
    decision = events(registry, "retrain_decision")[-1]
    assert decision["outcome"] == "pending" and decision["metrics"]["trusted"]["candidate"][ACC] > 0
    assert "waits for approval" in notes.messages[-1][0]


def test_approve_starts_the_same_rollout_and_records_who(registry, champion, dataset):
    pending = make(registry, traffic(dataset, champion), approval="manual").run(ALARM).candidate
    deployer, notes = FakeDeployer(), Notes()
    with pytest.raises(ConflictError, match="is not the candidate waiting for approval"):
        approval.approve(registry, NAME, champion.manifest.version, deployer, approver="alice")
    out = approval.approve(registry, NAME, pending, deployer, approver="arn:aws:iam::1:user/alice", notifier=notes)
    assert deployer.started == [pending] and out["deployment_id"] == "d-1"
    assert registry.resolve(NAME, CANDIDATE) == pending  # what the PreTraffic hook admits
    assert registry.get_alias(NAME, PENDING).version is None
    assert registry.resolve(NAME, CHAMPION) == champion.manifest.version  # moves only when the rollout succeeds
    record = events(registry, "approval")[-1]
    assert record["approved_by"] == "arn:aws:iam::1:user/alice" and record["version"] == pending
    with pytest.raises(NotFoundError, match="no candidate waiting for approval"):
        approval.approve(registry, NAME, pending, deployer, approver="alice")


def test_approval_whose_rollout_cannot_start_keeps_it_pending(registry, champion, dataset):
    pending = make(registry, traffic(dataset, champion), approval="manual").run(ALARM).candidate
    deployer = FakeDeployer()
    deployer.fail = RuntimeError("stack busy")
    with pytest.raises(RuntimeError):
        approval.approve(registry, NAME, pending, deployer, approver="alice")
    assert registry.resolve(NAME, PENDING) == pending
    assert registry.resolve(NAME, CANDIDATE) == champion.manifest.version


def test_reject_clears_pending_and_records_the_reason(registry, champion, dataset):
    pending = make(registry, traffic(dataset, champion), approval="manual").run(ALARM).candidate
    out = approval.reject(registry, NAME, pending, reason="labels from one clinic", approver="bob")
    assert out["outcome"] == "rejected" and registry.get_alias(NAME, PENDING).version is None
    assert events(registry, "approval")[-1]["reason"] == "labels from one clinic"
    assert registry.get_alias(NAME, CANDIDATE).version is None


def test_a_newer_winner_replaces_the_pending_one_on_the_record(registry, champion, dataset):
    first = make(registry, traffic(dataset, champion), approval="manual", cooldown_seconds=0).run(ALARM)
    second = make(registry, traffic(dataset, champion), approval="manual", cooldown_seconds=0).run(ALARM)
    assert second.outcome == "pending" and second.data["replaced_pending"] == first.candidate
    assert f"replaces the pending {first.candidate}" in second.reason
    assert registry.resolve(NAME, PENDING) == second.candidate
    with pytest.raises(ConflictError):
        approval.approve(registry, NAME, first.candidate, FakeDeployer(), approver="alice")


def test_cli_approve_and_reject_give_one_line_errors(registry, champion, dataset, capsys, monkeypatch):
    monkeypatch.setattr(approval, "caller_identity", lambda sts=None: "local:tester")
    assert main(["--registry", REG, "models", "approve", NAME, "20990101T000000Z-000000"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no candidate waiting for approval" in err
    pending = make(registry, traffic(dataset, champion), approval="manual").run(ALARM).candidate
    assert main(["--registry", REG, "models", "reject", NAME, champion.manifest.version, "--reason", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"({pending} is)" in err
    # approving needs a stack to update; the check comes before anything changes
    monkeypatch.delenv("MODELOPS_STACK_NAME", raising=False)
    assert main(["--registry", REG, "models", "approve", NAME, pending]) == 1
    assert "--stack" in capsys.readouterr().err and registry.resolve(NAME, PENDING) == pending
    assert main(["--registry", REG, "--json", "models", "reject", NAME, pending, "--reason", "one clinic"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rejected_by"] == "local:tester" and registry.get_alias(NAME, PENDING).version is None


def test_cli_approve_rolls_out_through_the_deployer(registry, champion, dataset, capsys, monkeypatch):
    from modelops.wiring import retrain as lifecycle

    deployer = FakeDeployer()
    monkeypatch.setitem(lifecycle.dependency_overrides, "deployer", deployer)
    monkeypatch.setattr(approval, "caller_identity", lambda sts=None: "local:tester")
    monkeypatch.setenv("MODELOPS_STACK_NAME", "modelops-test")
    monkeypatch.setenv("MODELOPS_PREDICT_FUNCTION", "fn")
    pending = make(registry, traffic(dataset, champion), approval="manual").run(ALARM).candidate
    assert main(["--registry", REG, "models", "approve", NAME, pending]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "approved by local:tester" in line
    assert deployer.started == [pending]


def test_caller_identity_falls_back_to_the_local_user():
    class NoCredentials:
        def get_caller_identity(self):
            raise RuntimeError("Unable to locate credentials")

    class Sts:
        def get_caller_identity(self):
            return {"Arn": "arn:aws:sts::123456789012:assumed-role/ops/alice"}

    assert approval.caller_identity(Sts()) == "arn:aws:sts::123456789012:assumed-role/ops/alice"
    assert approval.caller_identity(NoCredentials()).startswith("local:")


# ---- champions from before the trusted set --------------------------------------------------------------------------
def test_champion_without_a_trusted_set_still_loads_and_a_winner_needs_approval(
    registry, classifier_dir, copy_dir, dataset, s3
):
    put_trusted_rows(s3)
    old = copy_dir(classifier_dir)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["evaluation"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    (old / EVALUATION_FILE).unlink()
    registry.register(old)
    registry.set_alias(NAME, CHAMPION, manifest["version"])
    champion = registry.load(NAME, manifest["version"])  # an artifact from before still loads
    assert champion.manifest.evaluation == {}
    deployer, notes = FakeDeployer(), Notes()
    result = make(registry, traffic(dataset, champion), deployer=deployer, notes=notes).run(ALARM)
    assert result.outcome == "pending", result.reason
    assert "has no trusted evaluation set" in result.reason and "manual approval" in result.reason
    assert deployer.started == [] and registry.resolve(NAME, PENDING) == result.candidate
    assert result.data["trusted"] == {"stored": None}
    # the candidate does not adopt a split of client labels as its trusted set
    assert registry.manifest(NAME, result.candidate).evaluation == {}
    assert events(registry, "retrain_decision")[-1]["outcome"] == "pending"


# ---- the sign test on the trusted set ---------------------------------------------------------------------------------
def test_sign_test_is_the_exact_one_sided_binomial():
    from modelops.retrain.decision import sign_test

    assert sign_test(0, 0) == 1.0  # nothing tells the models apart
    assert sign_test(2, 0) == 0.25  # two rows: as likely as two coin flips
    assert sign_test(3, 1) == 5 / 16
    assert sign_test(10, 0) == 1 / 1024
    assert sign_test(33, 23) > 0.1 > sign_test(40, 16)
    assert sign_test(0, 5) == 1.0
