"""PredictScalingMode on samtranslator's output, mode by mode: what CloudFormation would create for each (conditions
evaluated as CloudFormation does, tests/support/template.py). CloudFormation cannot run offline, and moto cannot
deploy SAM-translated templates."""

from __future__ import annotations

import json

import pytest
from support.template import deployed_resources, policy_statements, sam_translate

MODES = ["OnDemand", "Provisioned", "Autoscaled", "SnapStart"]
SCALING_TYPES = {"AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy"}
BUSINESS_HOURS = {
    "PredictScaleUpSchedule": "cron(0 8 ? * MON-FRI *)",
    "PredictScaleUpMinInstances": "5",
    "PredictScaleUpMaxInstances": "40",
    "PredictScaleDownSchedule": "cron(0 20 ? * * *)",
    "PredictScaleDownMinInstances": "1",
    "PredictScaleDownMaxInstances": "4",
    "PredictScheduleTimezone": "Europe/Berlin",
}


def deployed(template, **parameters):
    return deployed_resources(sam_translate(template, **parameters), **parameters)


@pytest.fixture(scope="module")
def per_mode(template):
    return {mode: deployed(template, PredictScalingMode=mode) for mode in MODES}


def test_modes_keep_the_parameters_casing(template):
    assert template["Parameters"]["PredictScalingMode"]["AllowedValues"] == MODES


def test_only_autoscaled_has_a_scalable_target_and_a_policy(per_mode):
    for mode, resources in per_mode.items():
        kinds = {r["Type"] for r in resources.values()} & SCALING_TYPES
        assert kinds == (SCALING_TYPES if mode == "Autoscaled" else set()), mode


def test_scalable_target_is_the_live_alias_after_it_exists(per_mode):
    target = per_mode["Autoscaled"]["PredictScalableTarget"]
    props = target["Properties"]
    assert props["ServiceNamespace"] == "lambda"
    assert props["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert props["ResourceId"] == {"Fn::Sub": "function:${PredictFunction}:live"}
    depends = target["DependsOn"] if isinstance(target["DependsOn"], list) else [target["DependsOn"]]
    assert "PredictFunctionAliaslive" in depends and "PredictFunctionAliaslive" in per_mode["Autoscaled"]
    assert per_mode["Autoscaled"]["PredictFunctionAliaslive"]["Properties"]["Name"] == "live"
    assert "RoleARN" not in props  # the service-linked role
    assert props["MinCapacity"] == {"Ref": "PredictInstanceCount"}
    assert props["MaxCapacity"] == {"Ref": "PredictMaxInstances"}
    assert "ScheduledActions" not in props  # no schedule unless one is set


def test_target_tracking_follows_provisioned_concurrency_utilization(per_mode):
    policy = per_mode["Autoscaled"]["PredictUtilizationScalingPolicy"]["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == {"Ref": "PredictScalableTarget"}
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == {"Ref": "PredictTargetUtilization"}
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"
    }


def test_scheduled_actions_only_when_set(template):
    both = deployed(template, PredictScalingMode="Autoscaled", **BUSINESS_HOURS)
    actions = both["PredictScalableTarget"]["Properties"]["ScheduledActions"]
    assert [a["Schedule"] for a in actions] == [{"Ref": "PredictScaleUpSchedule"}, {"Ref": "PredictScaleDownSchedule"}]
    assert all(a["Timezone"] == {"Ref": "PredictScheduleTimezone"} for a in actions)
    assert actions[0]["ScalableTargetAction"] == {
        "MinCapacity": {"Ref": "PredictScaleUpMinInstances"},
        "MaxCapacity": {"Ref": "PredictScaleUpMaxInstances"},
    }
    assert actions[1]["ScalableTargetAction"] == {
        "MinCapacity": {"Ref": "PredictScaleDownMinInstances"},
        "MaxCapacity": {"Ref": "PredictScaleDownMaxInstances"},
    }
    up_only = deployed(template, PredictScalingMode="Autoscaled", PredictScaleUpSchedule="cron(0 8 ? * MON-FRI *)")
    only = up_only["PredictScalableTarget"]["Properties"]["ScheduledActions"]
    assert [a["ScheduledActionName"] for a in only] == [{"Fn::Sub": "${AWS::StackName}-predict-scale-up"}]
    # a schedule set on a stack that is not Autoscaled creates nothing
    provisioned = deployed(template, PredictScalingMode="Provisioned", **BUSINESS_HOURS)
    assert not {r["Type"] for r in provisioned.values()} & SCALING_TYPES


def test_one_provisioned_concurrency_configuration_from_one_parameter(per_mode):
    """Provisioned and Autoscaled both put PredictInstanceCount on the live alias (Autoscaled: its minimum, so the
    utilization metric exists and each new version starts warm); never on the function, never with SnapStart."""
    for mode, resources in per_mode.items():
        alias = resources["PredictFunctionAliaslive"]["Properties"]
        function = resources["PredictFunction"]["Properties"]
        assert "ProvisionedConcurrencyConfig" not in function
        if mode in ("Provisioned", "Autoscaled"):
            assert alias["ProvisionedConcurrencyConfig"] == {
                "ProvisionedConcurrentExecutions": {"Ref": "PredictInstanceCount"}
            }, mode
            assert "SnapStart" not in function
        else:
            assert "ProvisionedConcurrencyConfig" not in alias, mode
        assert ("SnapStart" in function) == (mode == "SnapStart"), mode
    target = per_mode["Autoscaled"]["PredictScalableTarget"]["Properties"]
    alias = per_mode["Autoscaled"]["PredictFunctionAliaslive"]["Properties"]
    assert target["MinCapacity"] == alias["ProvisionedConcurrencyConfig"]["ProvisionedConcurrentExecutions"]


def test_retrain_function_reads_the_scalable_target_only_when_autoscaled(per_mode):
    for mode, resources in per_mode.items():
        env = resources["RetrainFunction"]["Properties"]["Environment"]["Variables"]
        assert env["MODELOPS_PREDICT_SCALING_MODE"] == {"Ref": "PredictScalingMode"}
        assert env["MODELOPS_PREDICT_INSTANCE_COUNT"] == {"Ref": "PredictInstanceCount"}
        statements = policy_statements(resources["RetrainFunctionRole"]["Properties"]["Policies"])
        reads = [s for s in statements if "application-autoscaling:DescribeScalableTargets" in str(s["Action"])]
        assert len(reads) == (1 if mode == "Autoscaled" else 0), mode
        # nothing else of Application Auto Scaling: the function never registers, suspends or deletes scaling
        assert all(
            a == "application-autoscaling:DescribeScalableTargets"
            for s in statements
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            if a.startswith("application-autoscaling:")
        )
        writes = [s for s in statements if "lambda:PutProvisionedConcurrencyConfig" in s["Action"]]
        assert writes and all(
            r in ({"Fn::GetAtt": ["PredictFunction", "Arn"]}, {"Fn::Sub": "${PredictFunction.Arn}:*"})
            or "FeedbackFunction" in json.dumps(r)
            for s in writes
            for r in s["Resource"]
        )


def test_schedule_and_timezone_parameters_refuse_what_application_auto_scaling_would(template):
    import re

    params = template["Parameters"]
    for name in ("PredictScaleUpSchedule", "PredictScaleDownSchedule"):
        pattern = params[name]["AllowedPattern"]
        for ok in ("", "cron(0 8 ? * MON-FRI *)", "rate(1 hour)", "at(2026-12-24T08:00:00)"):
            assert re.fullmatch(pattern, ok), (name, ok)
        for bad in ("0 8 * * *", "cron(0 8 * * *) ; x", "cron()"):
            assert not re.fullmatch(pattern, bad), (name, bad)
    timezone = params["PredictScheduleTimezone"]["AllowedPattern"]
    for ok in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+3"):
        assert re.fullmatch(timezone, ok), ok
    for bad in ("", "Europe/Berlin\n", "../etc", " UTC"):
        assert not re.fullmatch(timezone, bad), bad
