"""The rollout adapters. A rollout is an update of the stack itself (modelops.rollout.deploy). moto can run neither change sets
of a SAM template nor CodeDeploy, so CloudFormation is the fake in stack_fake.py, which follows CloudFormation's and
CodeDeploy's documented behaviour on moto's Lambda and SSM (its docstring names the sources). The Lambda client handed
to modelops is read-only: only the fake CloudFormation may publish versions or move `live`."""

from __future__ import annotations

import boto3
import pytest
from modelops.core.errors import ConflictError, ModelOpsError
from modelops.rollout.deploy import (
    AliasShiftDeployer,
    LambdaVersions,
    PinNames,
    SsmPins,
    StackRolloutDeployer,
    unexpected_changes,
)
from support.predict_function import FN, MODEL
from support.stack_fake import ROLLOUT_CHANGES, FakeStack, ReadOnlyLambda

STACK = "modelops-dev"


@pytest.fixture
def ssm(moto_aws):
    return boto3.client("ssm")


@pytest.fixture
def pins(ssm):
    pins = SsmPins(ssm, PinNames(STACK, MODEL))
    pins.put("v1")
    return pins


@pytest.fixture
def stack(lam, ssm, pins):
    """The deployed stack: ModelVersion names its champion pin, as samconfig.toml sets it."""
    return FakeStack(lam, ssm, name=STACK, function=FN, parameters={"ModelName": MODEL, "ModelVersion": pins.name})


def deployer(stack, lam, pins):
    return StackRolloutDeployer(stack, pins, STACK, LambdaVersions(ReadOnlyLambda(lam), FN), sleep=lambda s: None)


def test_rollout_is_a_change_set_of_the_stack_that_points_model_version_at_an_immutable_pin(stack, lam, pins, ssm):
    rollout = deployer(stack, lam, pins).start("v2", "retrain: m v1 -> v2")
    assert rollout.mechanism == "cloudformation" and rollout.previous_version == "1"
    (executed,) = stack.executed
    assert executed["name"] == rollout.deployment_id == "modelops-rollout-v2"
    assert executed["parameters"] == {"ModelName": MODEL, "ModelVersion": f"/modelops/{STACK}/{MODEL}/versions/v2"}
    assert ssm.get_parameter(Name=f"/modelops/{STACK}/{MODEL}/versions/v2")["Parameter"]["Value"] == "v2"
    # CloudFormation (the fake) published the version and moved live through the canary; modelops moved nothing
    assert stack.status == "UPDATE_COMPLETE" and stack.live_model_version() == "v2"
    assert stack.events[-1]["detail"]["client-request-token"] == "modelops-rollout-v2"
    assert pins.get() == "v1"  # the champion pin moves only when finalize sees the update complete


def test_failed_canary_rolls_the_stack_back_and_nothing_needs_restoring(stack, lam, pins):
    stack.canary = lambda version: "alarm PredictNewVersionErrorsAlarm is ALARM"
    deployer(stack, lam, pins).start("v2", "x")
    assert stack.status == "UPDATE_ROLLBACK_COMPLETE" and stack.live_model_version() == "v1"
    assert stack.parameters["ModelVersion"] == pins.name  # rolled back to the champion pin, whose value never changed
    assert pins.get() == "v1"


def test_in_flight_follows_the_stack_status(stack, lam, pins):
    d = deployer(stack, lam, pins)
    assert d.in_flight() is None
    stack.status = "UPDATE_IN_PROGRESS"
    assert d.in_flight() == f"stack {STACK} is UPDATE_IN_PROGRESS"
    with pytest.raises(ModelOpsError, match="deployed and idle"):
        d.start("v2", "x")
    assert stack.change_sets == {}


def test_a_change_set_that_changes_more_than_the_model_is_refused_and_deleted(stack, lam, pins):
    """A template or transform change not yet deployed would ride along with the rollout: refuse it."""
    stack.pending_template_changes = [("BatchFunction", "AWS::Lambda::Function")]
    with pytest.raises(ModelOpsError, match=r"would also change .*BatchFunction.*sam deploy"):
        deployer(stack, lam, pins).start("v2", "x")
    assert stack.executed == [] and stack.change_sets == {}
    assert stack.live_model_version() == "v1"


def test_changes_caused_by_model_version_are_allowed_and_others_refused():
    from support.stack_fake import change_of

    rollout = [change_of(*c) for c in ROLLOUT_CHANGES]
    assert unexpected_changes(rollout) == []
    template_change = change_of(
        "BatchFunction", "AWS::Lambda::Function", "False", "Code", "DirectModification", "", "Static"
    )
    other_parameter = change_of(
        "PredictFunction",
        "AWS::Lambda::Function",
        "False",
        "MemorySize",
        "ParameterReference",
        "PredictMemorySize",
        "Static",
    )
    unrelated_attribute = change_of(
        "MonitorFunction",
        "AWS::Lambda::Function",
        "False",
        "Environment",
        "ResourceAttribute",
        "ModelBucket.Arn",
        "Dynamic",
    )
    problems = unexpected_changes([*rollout, template_change, other_parameter, unrelated_attribute])
    assert problems == [
        "Modify BatchFunction (AWS::Lambda::Function): Code by DirectModification",
        "Modify PredictFunction (AWS::Lambda::Function): MemorySize by ParameterReference PredictMemorySize",
        "Modify MonitorFunction (AWS::Lambda::Function): Environment by ResourceAttribute ModelBucket.Arn",
    ]


def test_without_details_only_the_rollout_resources_and_no_replacements_are_allowed():
    plain = [
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": c[0], "ResourceType": c[1], "Replacement": c[2]}}
        for c in ROLLOUT_CHANGES
    ]
    assert unexpected_changes(plain) == []
    replaced_alias = {"ResourceChange": {**plain[2]["ResourceChange"], "Replacement": "True"}}
    removed_role = {
        "ResourceChange": {
            "Action": "Remove",
            "LogicalResourceId": "PredictFunctionRole",
            "ResourceType": "AWS::IAM::Role",
        }
    }
    log_group = {
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "PredictFunctionLogGroup",
            "ResourceType": "AWS::Logs::LogGroup",
        }
    }
    assert unexpected_changes([replaced_alias, removed_role, log_group]) == [
        "replacement of PredictFunctionAliaslive (AWS::Lambda::Alias)",
        "Remove PredictFunctionRole (AWS::IAM::Role)",
        "Modify PredictFunctionLogGroup (AWS::Logs::LogGroup)",
    ]


def test_a_stack_reading_another_stacks_pin_is_refused(lam, ssm):
    """Two stacks in one account: prod deployed with dev's pin would serve (and be retrained into) dev's model."""
    dev = SsmPins(ssm, PinNames("modelops-dev", MODEL))
    dev.put("v1")
    prod = FakeStack(
        lam, ssm, name="modelops-prod", function=FN, parameters={"ModelName": MODEL, "ModelVersion": dev.name}
    )
    prod_pins = SsmPins(ssm, PinNames("modelops-prod", MODEL))
    d = StackRolloutDeployer(prod, prod_pins, "modelops-prod", LambdaVersions(ReadOnlyLambda(lam), FN))
    with pytest.raises(
        ModelOpsError, match="not one of its own pins .*ModelVersion=/modelops/modelops-prod/m/champion"
    ):
        d.start("v2", "x")
    assert prod.executed == []


def test_rolling_out_what_already_serves_is_a_clear_error(stack, lam, pins):
    deployer(stack, lam, pins).start("v2", "x")
    with pytest.raises(ModelOpsError, match="already serves this model version"):
        deployer(stack, lam, pins).start("v2", "again")
    assert len(stack.executed) == 1 and stack.change_sets == {}  # the empty change set was deleted


def test_version_pins_are_never_overwritten(ssm):
    pins = SsmPins(ssm, PinNames(STACK, MODEL))
    assert pins.ensure_version("v2") == f"/modelops/{STACK}/{MODEL}/versions/v2"
    assert pins.ensure_version("v2") == f"/modelops/{STACK}/{MODEL}/versions/v2"  # the same value again is fine
    ssm.put_parameter(Name=f"/modelops/{STACK}/{MODEL}/versions/v3", Value="tampered", Type="String")
    with pytest.raises(ConflictError, match="holds 'tampered'"):
        pins.ensure_version("v3")


def test_champion_pin_round_trip_per_stack(ssm):
    dev, prod = (
        SsmPins(ssm, PinNames("modelops-dev", "breast-cancer")),
        SsmPins(ssm, PinNames("modelops-prod", "breast-cancer")),
    )
    assert dev.get() is None
    dev.put("20260101T000000Z-aaaa")
    dev.put("20260102T000000Z-bbbb")
    assert dev.get() == "20260102T000000Z-bbbb" and prod.get() is None
    assert dev.name == "/modelops/modelops-dev/breast-cancer/champion"
    assert ssm.get_parameter(Name=dev.name)["Parameter"]["Value"] == dev.get()


def test_local_alias_shift_canary_then_complete(lam):
    v1 = lam.publish_version(FunctionName=FN)["Version"]
    lam.create_alias(FunctionName=FN, Name="live", FunctionVersion=v1)
    local = AliasShiftDeployer(LambdaVersions(lam, FN, sleep=lambda s: None), canary_weight=0.1)
    rollout = local.start("v2", "x")
    alias = lam.get_alias(FunctionName=FN, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
    assert local.in_flight() == "local-canary-2"
    assert local.live_model_version() == "v1"
    local.complete(rollout)
    assert local.live_model_version() == "v2"
    assert local.in_flight() is None
    # $LATEST is back to what it was, so nothing but the published version serves the candidate
    assert lam.get_function_configuration(FunctionName=FN)["Environment"]["Variables"]["MODELOPS_MODEL_VERSION"] == "v1"


# ---- the next `sam deploy` after a promotion ------------------------------------------------------------------------
V1, V2 = "20260101T000000000Z-aaaaaa", "20260102T000000000Z-bbbbbb"
SAMCONFIG = {"ModelName": MODEL, "ModelVersion": f"/modelops/{STACK}/{MODEL}/champion", "LogLevel": "INFO"}


@pytest.fixture
def promoted(lam, ssm, pins, registry_for_finalize):
    """v1 served, then a retrain rollout of v2 succeeded and finalize pinned it as the champion."""
    from modelops.retrain.finalize import finalize

    pins.put(V1)
    stack = FakeStack(lam, ssm, name=STACK, function=FN, parameters=dict(SAMCONFIG))
    d = deployer(stack, lam, pins)
    rollout = d.start(V2, "retrain: m v1 -> v2")
    detail = finalize(registry_for_finalize, MODEL, d, pins, None, rollout.deployment_id, succeeded=True)
    assert detail["outcome"] == "promoted" and pins.get() == V2 and stack.live_model_version() == V2
    return stack


@pytest.fixture
def registry_for_finalize(moto_aws, classifier_dir, tmp_path):
    """finalize moves the registry's champion alias too; V1 and V2 are registered under those versions."""
    import shutil

    from modelops.model.artifact import Manifest
    from modelops.registry import CHAMPION, Registry

    boto3.client("s3").create_bucket(Bucket="promotions")
    registry = Registry("s3://promotions/registry")
    for version in (V1, V2):
        copy = tmp_path / version
        shutil.copytree(classifier_dir, copy)
        manifest = Manifest.from_json((copy / "manifest.json").read_bytes())
        manifest.name, manifest.version = MODEL, version
        (copy / "manifest.json").write_bytes(manifest.to_json())
        registry.register(copy)
    registry.set_alias(MODEL, CHAMPION, V1)
    return registry


@pytest.mark.parametrize(
    ("change", "overrides", "code"),
    [
        ("no change at all", SAMCONFIG, None),
        ("a code-only change", SAMCONFIG, "code-2"),
        ("a parameter change", {**SAMCONFIG, "LogLevel": "DEBUG"}, None),
    ],
)
def test_the_next_sam_deploy_after_a_promotion_keeps_the_promoted_model(promoted, change, overrides, code):
    """samconfig.toml names the champion pin, which finalize moved to V2: whatever the deploy changes, it succeeds
    and `live` keeps serving V2. A code change publishes a new version pinned to V2 and CodeDeploy's CurrentVersion
    check passes, because only CloudFormation ever moved the alias."""
    status = promoted.sam_deploy(overrides, code)
    assert status == "UPDATE_COMPLETE", (change, promoted.events[-1]["detail"])
    assert promoted.live_model_version() == V2, change
    assert promoted.resolved == V2


def test_an_alias_moved_outside_cloudformation_fails_the_next_deploy(stack, lam):
    """Why rollouts are stack updates: CodeDeploy refuses the next deployment CloudFormation starts once `live` was
    moved behind its back (the fake follows aws/serverless-application-model #291)."""
    version = lam.publish_version(FunctionName=FN)["Version"]
    lam.update_alias(FunctionName=FN, Name="live", FunctionVersion=version)  # what a rollout outside the stack did
    assert stack.sam_deploy(code="code-2") == "UPDATE_ROLLBACK_COMPLETE"
    assert "INVALID_LAMBDA_CONFIGURATION" in stack.events[-1]["detail"]["status-details"]["status-reason"]
