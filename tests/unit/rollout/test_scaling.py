"""Autoscaled provisioned concurrency after a stack update: the live alias is put back inside its scalable target.

Application Auto Scaling is moto (RegisterScalableTarget / DescribeScalableTargets for the lambda namespace; a
scheduled action is simulated by what the Application Auto Scaling guide says it does when it runs: it sets the
target's MinCapacity and MaxCapacity). moto has no Lambda provisioned concurrency API, so a botocore Stubber (tests/support/scaling.py) answers
GetAlias, GetProvisionedConcurrencyConfig and PutProvisionedConcurrencyConfig with the shapes of the Lambda API
reference (botocore validates both the requests and the responses against the service model); the not-found error
code is the documented ProvisionedConcurrencyConfigNotFoundException."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from modelops.core.errors import ModelOpsError
from modelops.rollout.scaling import AliasScaling, reconcile_quietly
from modelops.wiring import retrain as lifecycle
from support.scaling import FN, expect_put, lambda_stub, register


@pytest.fixture
def autoscaling(moto_aws):
    return boto3.client("application-autoscaling", region_name="us-east-1")


def test_a_scheduled_minimum_missed_during_the_canary_is_restored(autoscaling):
    register(autoscaling, 1, 10)
    register(autoscaling, 4, 10)  # the business-hours action ran while the alias was weighted: min moved, PC did not
    lam, stub = lambda_stub(requested=1)
    expect_put(stub, 4)
    with stub:
        out = AliasScaling(autoscaling, lam, FN, "live").reconcile()
    stub.assert_no_pending_responses()
    assert out == {
        "resource": f"function:{FN}:live",
        "min": 4,
        "max": 10,
        "requested": 1,
        "scaling": "restored",
        "set_to": 4,
    }


def test_above_a_lowered_maximum_is_scaled_in_to_it(autoscaling):
    register(autoscaling, 1, 2)  # the night action lowered the maximum during the canary
    lam, stub = lambda_stub(requested=6)
    expect_put(stub, 2)
    with stub:
        out = AliasScaling(autoscaling, lam, FN, "live").reconcile()
    stub.assert_no_pending_responses()
    assert out["scaling"] == "restored" and out["set_to"] == 2


def test_inside_the_range_nothing_is_written(autoscaling):
    register(autoscaling, 2, 10)
    lam, stub = lambda_stub(requested=5)  # no put_provisioned_concurrency_config queued: a call would fail
    with stub:
        out = AliasScaling(autoscaling, lam, FN, "live").reconcile()
    stub.assert_no_pending_responses()
    assert out["scaling"] == "in range" and out["requested"] == 5


def test_an_alias_without_provisioned_concurrency_gets_the_minimum(autoscaling):
    register(autoscaling, 3, 10)
    lam, stub = lambda_stub(requested=None)
    expect_put(stub, 3)
    with stub:
        out = AliasScaling(autoscaling, lam, FN, "live").reconcile()
    stub.assert_no_pending_responses()
    assert out["requested"] == 0 and out["set_to"] == 3


def test_a_weighted_alias_is_left_alone(autoscaling):
    """Lambda would refuse the change ("Alias with weights can not be used with Provisioned Concurrency")."""
    register(autoscaling, 4, 10)
    lam, stub = lambda_stub(weights={"8": 0.1})
    with stub:
        out = AliasScaling(autoscaling, lam, FN, "live").reconcile()
    stub.assert_no_pending_responses()
    assert out["scaling"] == "skipped" and "routing weights" in out["why"]


def test_no_scalable_target_means_nothing_to_do(autoscaling):
    lam = boto3.client("lambda", region_name="us-east-1")
    with Stubber(lam):  # no Lambda call expected
        assert AliasScaling(autoscaling, lam, FN, "live").reconcile()["scaling"] == "none"


def test_a_refused_write_is_reported_not_raised(autoscaling):
    register(autoscaling, 4, 10)
    lam, stub = lambda_stub(requested=1)
    stub.add_client_error(
        "put_provisioned_concurrency_config",
        "InvalidParameterValueException",
        "Alias with weights can not be used with Provisioned Concurrency",
    )
    with stub:
        out = reconcile_quietly(AliasScaling(autoscaling, lam, FN, "live"))
    assert out["scaling"] == "failed" and "Alias with weights" in out["error"]
    assert reconcile_quietly(None) == {"scaling": "not autoscaled"}


def test_a_stack_switched_to_provisioned_returns_to_its_fixed_count(moto_aws):
    """Deregistering the scalable target leaves whatever it last set; CloudFormation only writes its own value when
    that value changes, so the fixed count is put back here (no Application Auto Scaling call)."""
    lam, stub = lambda_stub(requested=37)
    expect_put(stub, 2)
    with stub:
        out = AliasScaling(None, lam, FN, "live", fixed=2).reconcile()
    stub.assert_no_pending_responses()
    assert out["scaling"] == "restored" and out["set_to"] == 2 and out["min"] == out["max"] == 2


def test_scaling_follows_the_stacks_mode(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    base = {"MODELOPS_PREDICT_FUNCTION": FN, "MODELOPS_PREDICT_INSTANCE_COUNT": "3"}
    for mode in ("OnDemand", "SnapStart", ""):
        assert lifecycle.scaling_from_env({**base, "MODELOPS_PREDICT_SCALING_MODE": mode}) is None
    autoscaled = lifecycle.scaling_from_env({**base, "MODELOPS_PREDICT_SCALING_MODE": "Autoscaled"})
    assert autoscaled is not None and autoscaled.fixed is None and autoscaled.aas is not None
    assert autoscaled.resource == f"function:{FN}:live"
    provisioned = lifecycle.scaling_from_env({**base, "MODELOPS_PREDICT_SCALING_MODE": "Provisioned"})
    assert provisioned is not None and provisioned.fixed == 3 and provisioned.aas is None
    with pytest.raises(ModelOpsError, match="MODELOPS_PREDICT_INSTANCE_COUNT"):
        lifecycle.scaling_from_env(
            {**base, "MODELOPS_PREDICT_SCALING_MODE": "Provisioned", "MODELOPS_PREDICT_INSTANCE_COUNT": "x"}
        )
