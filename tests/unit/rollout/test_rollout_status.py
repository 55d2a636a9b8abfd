"""`modelops rollout status|rollback`. Lambda versions and the alias's RoutingConfig run on moto; moto's
CodeDeploy has no list-by-status, StopDeployment or AppSpec revisions, so the CodeDeploy client is a
botocore Stubber that checks the exact requests and returns real-shaped answers."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber
from modelops.core.errors import ModelOpsError
from modelops.rollout.status import ACTIVE_STATUSES, Rollouts, Target

from devtools.stand_in_function import create_stand_in_function
from modelops_cli import main

FN = "stack-PredictFunction-abc"
TARGET = Target(FN, "stack-ServerlessDeploymentApplication-x", "stack-PredictFunctionDeploymentGroup-y")


@pytest.fixture
def lam(moto_aws):
    client = boto3.client("lambda")
    create_stand_in_function(client, FN, {"MODELOPS_MODEL_VERSION": "20260101-a"})
    v1 = client.publish_version(FunctionName=FN)["Version"]
    client.update_function_configuration(
        FunctionName=FN, Environment={"Variables": {"MODELOPS_MODEL_VERSION": "20260102-b"}}
    )
    v2 = client.publish_version(FunctionName=FN)["Version"]
    # a canary in progress: 90 % on v1, 10 % on v2
    client.create_alias(
        FunctionName=FN, Name="live", FunctionVersion=v1, RoutingConfig={"AdditionalVersionWeights": {v2: 0.1}}
    )
    return client, v1, v2


def deployment_info(deployment_id: str, status: str, current: str, target: str) -> dict:
    spec = {
        "version": 0.0,
        "Resources": [
            {
                "PredictFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Name": FN, "Alias": "live", "CurrentVersion": current, "TargetVersion": target},
                }
            }
        ],
    }
    return {
        "deploymentInfo": {
            "deploymentId": deployment_id,
            "status": status,
            "applicationName": TARGET.application,
            "deploymentGroupName": TARGET.group,
            "deploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "creator": "user",
            "createTime": dt.datetime(2026, 1, 2, 12, 0),
            "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(spec)}},
        }
    }


def group_kwargs(**extra):
    return {"applicationName": TARGET.application, "deploymentGroupName": TARGET.group, **extra}


def test_status_shows_traffic_split_models_and_deployment(lam):
    client, v1, v2 = lam
    cd = boto3.client("codedeploy")
    with Stubber(cd) as stub:
        stub.add_response("list_deployments", {"deployments": ["d-2"]}, group_kwargs())
        stub.add_response("get_deployment", deployment_info("d-2", "InProgress", v1, v2), {"deploymentId": "d-2"})
        status = Rollouts(TARGET, client, cd).status()
        stub.assert_no_pending_responses()
    assert status["traffic"] == [
        {"function_version": v1, "model_version": "20260101-a", "weight": 0.9},
        {"function_version": v2, "model_version": "20260102-b", "weight": 0.1},
    ]
    d = status["deployment"]
    assert (d["id"], d["status"], d["from_version"], d["to_version"]) == ("d-2", "InProgress", v1, v2)


def test_rollback_stops_the_deployment_and_leaves_the_alias_to_codedeploy(lam):
    """StopDeployment with auto-rollback makes CodeDeploy send the traffic back and CloudFormation roll the stack update
    back. The alias itself is not touched here: CloudFormation must stay the only writer of `live`, or its next
    deployment fails CodeDeploy's CurrentVersion check (see modelops.rollout.deploy)."""
    client, v1, v2 = lam
    cd = boto3.client("codedeploy")
    with Stubber(cd) as stub:
        stub.add_response(
            "list_deployments", {"deployments": ["d-2"]}, group_kwargs(includeOnlyStatuses=ACTIVE_STATUSES)
        )
        stub.add_response("get_deployment", deployment_info("d-2", "InProgress", v1, v2), {"deploymentId": "d-2"})
        stub.add_response(
            "stop_deployment",
            {"status": "Pending", "statusMessage": "stopping"},
            {"deploymentId": "d-2", "autoRollbackEnabled": True},
        )
        result = Rollouts(TARGET, client, cd).rollback()
        stub.assert_no_pending_responses()
    assert result["stopped_deployment"] == "d-2" and result["function_version"] == v1
    assert result["model_version"] == "20260101-a"
    alias = client.get_alias(FunctionName=FN, Name="live")
    assert alias["FunctionVersion"] == v1 and alias["RoutingConfig"]["AdditionalVersionWeights"] == {v2: 0.1}


def test_rollback_with_no_deployment_in_flight_points_to_a_rollout(lam):
    client, v1, v2 = lam
    cd = boto3.client("codedeploy")
    with Stubber(cd) as stub:
        stub.add_response("list_deployments", {"deployments": []}, group_kwargs(includeOnlyStatuses=ACTIVE_STATUSES))
        with pytest.raises(ModelOpsError, match="no deployment .* in flight.*modelops rollout start"):
            Rollouts(TARGET, client, cd).rollback()
    assert client.get_alias(FunctionName=FN, Name="live")["FunctionVersion"] == v1  # nothing moved


def test_target_from_stack_outputs_and_cli_errors(moto_aws, capsys):
    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName="plain", TemplateBody=json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}))
    with pytest.raises(ModelOpsError, match="PredictFunctionName"):
        Target.from_stack("plain", cfn)
    assert main(["rollout", "status"]) == 1
    assert "--stack" in capsys.readouterr().err
    assert main(["rollout", "status", "--stack", "plain"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("modelops: error:") and "Traceback" not in err


def test_cli_status_prints_split(lam, monkeypatch, capsys):
    client, v1, v2 = lam
    cd = boto3.client("codedeploy")
    stub = Stubber(cd)
    stub.add_response("list_deployments", {"deployments": []}, group_kwargs())
    stub.activate()
    import modelops.rollout.status as rollout

    monkeypatch.setattr(rollout, "client", lambda service: cd if service == "codedeploy" else client)
    assert (
        main(
            [
                "--json",
                "rollout",
                "status",
                "--function",
                FN,
                "--application",
                TARGET.application,
                "--group",
                TARGET.group,
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert [t["weight"] for t in out["traffic"]] == [0.9, 0.1] and out["deployment"] is None
