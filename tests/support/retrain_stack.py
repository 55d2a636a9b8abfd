"""A deployed stack for the retrain tests: the champion registered and pinned in SSM, the predict function live on it
in moto Lambda, CloudFormation the fake in stack_fake.py (moto runs no SAM change set), and six hours of drifted
traffic captured with feedback for every row."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from modelops.capture import feedback
from modelops.capture.records import PredictionLog, prediction_record
from modelops.model.artifact import load_from_dir
from modelops.model.dataset import load_builtin
from modelops.registry import CHAMPION
from modelops.rollout.deploy import LambdaVersions, PinNames, SsmPins, StackRolloutDeployer
from modelops.wiring import retrain as lifecycle

from devtools.lifecycle_sim import drifted_rows
from support.lifecycle import TRUSTED_URI, put_trusted_rows
from support.predict_function import FN
from support.stack_fake import FakeStack, ReadOnlyLambda

STACK = "modelops-dev"


@pytest.fixture
def deployed(registry, classifier_dir, lam, monkeypatch):
    """A deployed stack's state: champion registered and pinned, predict function live on it."""
    champion = registry.register(classifier_dir)
    registry.set_alias("breast-cancer", CHAMPION, champion.version)
    ssm = boto3.client("ssm")
    pins = SsmPins(ssm, PinNames(STACK, "breast-cancer"))
    pins.put(champion.version)
    cloudformation = FakeStack(
        lam, ssm, name=STACK, function=FN, parameters={"ModelName": "breast-cancer", "ModelVersion": pins.name}
    )
    env = {
        "MODELOPS_REGISTRY": "s3://modelops-test/registry",
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "MODELOPS_DATA_URI": "s3://modelops-test/data",
        "MODELOPS_PREDICT_FUNCTION": FN,
        "MODELOPS_STACK_NAME": STACK,
        "MODELOPS_RETRAIN_MIN_ACCURACY": "0.8",
        "MODELOPS_RETRAIN_COOLDOWN_HOURS": "24",
        "MODELOPS_RETRAIN_TRUSTED_URI": TRUSTED_URI,
    }
    put_trusted_rows(registry.s3)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(
        lifecycle,
        "deployer_from_env",
        lambda env=None: StackRolloutDeployer(
            cloudformation, pins, STACK, LambdaVersions(ReadOnlyLambda(lam), FN), sleep=lambda s: None
        ),
    )
    return SimpleNamespace(
        champion=champion,
        registry=registry,
        estimator=load_from_dir(classifier_dir).estimator,
        cloudformation=cloudformation,
        pins=pins,
    )


@pytest.fixture
def stack(deployed):
    """...plus six hours of drifted traffic captured (40 requests of 10 rows) with feedback for every row."""
    import time

    X, y = drifted_rows(load_builtin("breast_cancer"), 400, 1.3)
    names = [f["name"] for f in deployed.champion.features]
    predictions, scores = deployed.estimator.predict(X), deployed.estimator.predict_proba(X)[:, 1]
    now = time.time()
    registry = deployed.registry
    log = PredictionLog("modelops-test", "data", registry.s3)
    store = feedback.FeedbackStore("modelops-test", "data", registry.s3)
    records = []
    for r in range(40):
        rows = slice(r * 10, r * 10 + 10)
        at = now - 3600 * 6 + r * 300
        records.append(
            prediction_record(
                request_id=f"r{r}",
                model_version=deployed.champion.version,
                at=at,
                instances=[dict(zip(names, x, strict=True)) for x in X[rows].tolist()],
                predictions=[str(p) for p in predictions[rows]],
                scores=[float(v) for v in scores[rows]],
            )
        )
        store.append([str(v) for v in y[rows]], request_id=f"r{r}", at=at + 5, writer=f"clinic-{r % 3}")
    log.append(records)
    return deployed
