"""The rollout adapters. Lambda versions and aliases and SSM run on moto. moto's CodeDeploy never moves a
deployment past "Created" and cannot be asked for list_deployments by status usefully, so the CodeDeploy
client is a botocore Stubber that checks the exact requests (AppSpec with alias, current and target
versions and the PreTraffic hook) and returns real-shaped answers."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from modelops.deploy import (
    AliasShiftDeployer,
    CodeDeployDeployer,
    LambdaVersions,
    SsmChampionPin,
    champion_parameter,
)
from modelops.errors import ModelOpsError

from devtools.stand_in_function import create_stand_in_function

FN = "modelops-PredictFunction"


@pytest.fixture
def lam(moto_aws):
    client = boto3.client("lambda")
    create_stand_in_function(client, FN, {"MODELOPS_MODEL_VERSION": "v1", "MODELOPS_MODEL_NAME": "m"})
    v1 = client.publish_version(FunctionName=FN)["Version"]
    client.create_alias(FunctionName=FN, Name="live", FunctionVersion=v1)
    return client


def codedeploy_stub():
    cd = boto3.client("codedeploy")
    return cd, Stubber(cd)


def test_codedeploy_rollout_publishes_a_pinned_version_and_creates_a_deployment(lam):
    cd, stub = codedeploy_stub()
    deployer = CodeDeployDeployer(
        LambdaVersions(lam, FN, sleep=lambda s: None), cd, "app", "group", pre_traffic_hook="CodeDeployHook_modelops"
    )
    captured = {}

    def expect_create():
        stub.add_response(
            "create_deployment",
            {"deploymentId": "d-ABC123"},
            {"applicationName": "app", "deploymentGroupName": "group", "description": ANY, "revision": ANY},
        )

    expect_create()
    orig = cd.create_deployment

    def spy(**kwargs):
        captured.update(kwargs)
        return orig(**kwargs)

    cd.create_deployment = spy
    with stub:
        rollout = deployer.start("v2", "retrain: m v1 -> v2")
    stub.assert_no_pending_responses()
    assert rollout.deployment_id == "d-ABC123"
    assert (rollout.previous_version, rollout.function_version) == ("1", "2")
    # the new Lambda version serves v2, the old one still v1, and the alias has not moved (CodeDeploy moves it)
    versions = LambdaVersions(lam, FN)
    assert versions.model_version_of("2") == "v2"
    assert versions.model_version_of("1") == "v1"
    assert versions.alias_version() == "1"
    env = lam.get_function_configuration(FunctionName=FN, Qualifier="2")["Environment"]["Variables"]
    assert env["MODELOPS_MODEL_NAME"] == "m"  # the rest of the environment is kept
    # $LATEST is back to what the stack deployed, so a later code-only deploy cannot ship the candidate
    assert lam.get_function_configuration(FunctionName=FN)["Environment"]["Variables"]["MODELOPS_MODEL_VERSION"] == "v1"
    spec = json.loads(captured["revision"]["appSpecContent"]["content"])
    props = spec["Resources"][0]["PredictFunction"]["Properties"]
    assert props == {"Name": FN, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}
    assert spec["Hooks"] == [{"BeforeAllowTraffic": "CodeDeployHook_modelops"}]


def test_in_flight_lists_active_deployments(lam):
    cd, stub = codedeploy_stub()
    deployer = CodeDeployDeployer(LambdaVersions(lam, FN), cd, "app", "group")
    params = {
        "applicationName": "app",
        "deploymentGroupName": "group",
        "includeOnlyStatuses": ["Created", "Queued", "InProgress", "Baking", "Ready"],
    }
    stub.add_response("list_deployments", {"deployments": ["d-RUNNING"]}, params)
    stub.add_response("list_deployments", {"deployments": []}, params)
    with stub:
        assert deployer.in_flight() == "d-RUNNING"
        assert deployer.in_flight() is None


def test_create_deployment_failure_is_one_line_and_leaves_the_alias(lam):
    cd, stub = codedeploy_stub()
    stub.add_client_error("create_deployment", "DeploymentLimitExceededException", "too many deployments")
    deployer = CodeDeployDeployer(LambdaVersions(lam, FN, sleep=lambda s: None), cd, "app", "group")
    with stub, pytest.raises(ModelOpsError, match="DeploymentLimitExceeded"):
        deployer.start("v2", "x")
    assert LambdaVersions(lam, FN).live_model_version() == "v1"


def test_local_alias_shift_canary_then_complete(lam):
    deployer = AliasShiftDeployer(LambdaVersions(lam, FN, sleep=lambda s: None), canary_weight=0.1)
    rollout = deployer.start("v2", "x")
    alias = lam.get_alias(FunctionName=FN, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
    assert deployer.in_flight() == "local-canary-2"
    assert deployer.live_model_version() == "v1"
    deployer.complete(rollout)
    assert deployer.live_model_version() == "v2"
    assert deployer.in_flight() is None


def test_ssm_champion_pin_round_trip(moto_aws):
    ssm = boto3.client("ssm")
    pin = SsmChampionPin(ssm, "breast-cancer")
    assert pin.get() is None
    pin.put("20260101T000000Z-aaaa")
    pin.put("20260102T000000Z-bbbb")
    assert pin.get() == "20260102T000000Z-bbbb"
    assert ssm.get_parameter(Name=champion_parameter("breast-cancer"))["Parameter"]["Value"] == pin.get()


def test_failed_publish_still_restores_latest_environment(lam):
    class PublishFails:
        def __getattr__(self, name):
            return getattr(lam, name)

        def publish_version(self, **kwargs):
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ServiceException", "Message": "injected"}}, "PublishVersion")

    cd, stub = codedeploy_stub()
    deployer = CodeDeployDeployer(LambdaVersions(PublishFails(), FN, sleep=lambda s: None), cd, "app", "group")
    with stub, pytest.raises(ModelOpsError, match="ServiceException"):
        deployer.start("v2", "x")
    stub.assert_no_pending_responses()  # no deployment was requested
    assert lam.get_function_configuration(FunctionName=FN)["Environment"]["Variables"]["MODELOPS_MODEL_VERSION"] == "v1"
    assert LambdaVersions(lam, FN).live_model_version() == "v1"


def test_retrain_appspec_is_what_the_pre_traffic_hook_validates(lam):
    """The hook reads the target version from the deployment's AppSpec (Stubber for GetDeployment)."""
    from modelops import hook

    cd, stub = codedeploy_stub()
    deployer = CodeDeployDeployer(LambdaVersions(lam, FN), cd, "app", "group", pre_traffic_hook="CodeDeployHook_x")
    content = json.dumps(deployer.appspec("1", "2"))
    stub.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "deploymentId": "d-1",
                "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
            }
        },
        {"deploymentId": "d-1"},
    )
    with stub:
        target = hook.target_from_deployment(cd, "d-1")
    assert target == f"{FN}:2"
    assert hook.check_target(target, FN) == target
