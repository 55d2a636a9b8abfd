"""Fault injection: a crash at each stage of a retrain leaves the champion serving (registry alias, SSM pin
and the live Lambda alias unchanged), is recorded with its stage, and does not leave the lock held.
Lambda, SSM and S3 are moto; CloudFormation is the fake in stack_fake.py (moto runs no SAM change sets or
CodeDeploy deployments) or the fake deployer from lifecycle_fakes."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from modelops.model import training
from modelops.model.dataset import load_builtin
from modelops.registry import CANDIDATE, CHAMPION
from modelops.retrain.run import RetrainConfig, Retrainer
from modelops.rollout.deploy import LambdaVersions, PinNames, SsmPins, StackRolloutDeployer
from support.lifecycle import NOW, TRUSTED_URI, Clock, FakeDeployer, ListLabelled, MemoryPin, Notes, put_trusted_rows
from support.predict_function import FN
from support.stack_fake import FakeStack, ReadOnlyLambda

from devtools.lifecycle_sim import labelled_traffic

ALARM = {"alarm": "quality"}


class Boom(RuntimeError):
    pass


class FailingS3:
    """Passes every call to the real (moto) client except the one chosen to fail."""

    def __init__(self, s3, method: str, key_part: str):
        self._s3, self._method, self._key_part = s3, method, key_part

    def __getattr__(self, name):
        attr = getattr(self._s3, name)
        if name != self._method:
            return attr

        def failing(**kwargs):
            if self._key_part in kwargs.get("Key", ""):
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, name)
            return attr(**kwargs)

        return failing


@pytest.fixture(scope="module")
def records(classifier_dir):
    from modelops.model.artifact import load_from_dir

    champion = load_from_dir(classifier_dir)
    return labelled_traffic(
        load_builtin("breast_cancer"),
        champion.estimator,
        champion.manifest.version,
        300,
        1.3,
        start=NOW - 300 * 60 - 10,
    )


@pytest.fixture
def champion_version(registry, classifier_dir, s3):
    put_trusted_rows(s3)
    version = registry.register(classifier_dir).version
    registry.set_alias("breast-cancer", CHAMPION, version)
    return version


class BrokenEstimator:
    def predict(self, X):
        raise Boom("predict crashed")

    predict_proba = predict


def broken_training(*args, **kwargs):
    trained = training.train(*args, **kwargs)
    trained.estimator = BrokenEstimator()
    return trained


def raising(exc):
    def fn(*args, **kwargs):
        raise exc

    return fn


STAGES = ["lock", "guard", "champion", "data", "train", "evaluate", "register-upload", "register-history", "deploy"]


@pytest.mark.parametrize("stage", STAGES)
def test_crash_at_each_stage_keeps_the_champion(stage, registry, champion_version, records):
    deployer, pin, notes = FakeDeployer(live=champion_version), MemoryPin(champion_version), Notes()
    labelled = ListLabelled(records)
    retrainer = Retrainer(
        registry,
        "breast-cancer",
        labelled=labelled,
        deployer=deployer,
        notifier=notes,
        config=RetrainConfig(margin=0.01, trusted_uri=TRUSTED_URI),
        clock=Clock(),
    )
    if stage == "lock":
        retrainer.lock.store.s3 = FailingS3(registry.s3, "get_object", "locks/")  # the registry's own store
    elif stage == "guard":
        deployer.in_flight = raising(Boom("codedeploy unreachable"))
    elif stage == "champion":
        registry.s3 = FailingS3(registry.s3, "get_object", "model.joblib")
    elif stage == "data":
        labelled.labelled = raising(Boom("feedback store unreadable"))
    elif stage == "train":
        retrainer.train_fn = raising(MemoryError("out of memory while fitting"))
    elif stage == "evaluate":
        retrainer.train_fn = broken_training
    elif stage == "register-upload":  # model file uploaded, manifest write fails: the version is never listed
        registry.s3 = FailingS3(registry.s3, "put_object", "/manifest.json")
    elif stage == "register-history":
        registry.s3 = FailingS3(registry.s3, "put_object", "history/")
    elif stage == "deploy":
        deployer.fail = Boom("create_deployment crashed")

    result = retrainer.run(ALARM)

    assert result.outcome == "failed", result
    expected_stage = {"register-upload": "register", "register-history": "register"}.get(stage, stage)
    assert result.stage == expected_stage
    registry.s3 = registry.s3._s3 if isinstance(registry.s3, FailingS3) else registry.s3
    assert registry.resolve("breast-cancer", CHAMPION) == champion_version
    versions = registry.list_versions("breast-cancer")
    if stage in ("register-history", "deploy"):  # registered (immutable, audited) but never rolled out
        assert versions == sorted([champion_version, result.candidate]) and result.metrics
    else:
        assert versions == [champion_version]
    assert deployer.started == [] and pin.value == champion_version and deployer.live == champion_version
    retrainer.lock.store.s3 = registry.s3
    assert not retrainer.lock.status()["locked"]
    assert "in_cooldown" not in retrainer.lock.status()  # a failure starts no cooldown
    if stage != "register-history":
        failed = [e for e in registry.history("breast-cancer") if e["event"] == "retrain_failed"]
        assert failed and failed[-1]["stage"] == expected_stage
    assert "failed" in notes.messages[-1][0]


def test_announcement_failure_does_not_undo_the_decision(registry, champion_version, records):
    notes = Notes()
    notes.publish = raising(Boom("SNS down"))
    deployer = FakeDeployer()
    result = Retrainer(
        registry,
        "breast-cancer",
        labelled=ListLabelled(records),
        deployer=deployer,
        notifier=notes,
        config=RetrainConfig(margin=0.01, trusted_uri=TRUSTED_URI),
        clock=Clock(),
    ).run(ALARM)
    assert result.outcome == "promoted" and deployer.started == [result.candidate]


def test_refused_stack_update_after_registering_keeps_live_alias_and_pin(registry, champion_version, records, lam):
    """Real adapters: the candidate is registered, then its change set would change more than the model version, so
    the rollout is refused before anything runs."""
    ssm = boto3.client("ssm")
    pins = SsmPins(ssm, PinNames("modelops-dev", "breast-cancer"))
    pins.put(champion_version)
    stack = FakeStack(
        lam, ssm, name="modelops-dev", function=FN, parameters={"ModelName": "breast-cancer", "ModelVersion": pins.name}
    )
    stack.pending_template_changes = [("MonitorFunction", "AWS::Lambda::Function")]
    deployer = StackRolloutDeployer(stack, pins, "modelops-dev", LambdaVersions(ReadOnlyLambda(lam), FN))
    result = Retrainer(
        registry,
        "breast-cancer",
        labelled=ListLabelled(records),
        deployer=deployer,
        config=RetrainConfig(margin=0.01, trusted_uri=TRUSTED_URI),
        clock=Clock(),
    ).run(ALARM)
    assert result.outcome == "failed" and result.stage == "deploy"
    assert "MonitorFunction" in result.reason
    assert stack.executed == [] and deployer.live_model_version() == champion_version
    assert pins.get() == champion_version
    assert registry.resolve("breast-cancer", CHAMPION) == champion_version
    assert registry.resolve("breast-cancer", CANDIDATE) == champion_version  # the hook accepts only the champion
