"""The retrain and monitor handlers on real-shaped events, with the registry, captured predictions and
feedback in moto S3 and the predict function's versions in moto Lambda. CloudFormation and CodeDeploy are the
fake in stack_fake.py (moto runs neither a SAM change set nor a deployment; the fake's docstring names the
documented behaviour it follows); alarms are not evaluated by moto, so the alarm event is the file in events/
that `sam local invoke RetrainFunction` uses."""

from __future__ import annotations

import json

import boto3
import pytest
from modelops.registry import CANDIDATE, CHAMPION
from modelops.wiring import retrain as lifecycle
from support.context import LambdaContext
from support.events import load_event
from support.handlers import load_handler
from support.retrain_stack import deployed, stack

__all__ = ["deployed", "stack"]  # the fixtures, used by name
CONTEXT = LambdaContext()


def alarm_event() -> dict:
    return load_event("alarm-state-change")


def test_alarm_event_retrains_and_rolls_out_through_a_stack_update(stack):
    out = load_handler("retrain").lambda_handler(alarm_event(), CONTEXT)
    assert out["outcome"] == "promoted", out
    assert out["deployment_id"] == f"modelops-rollout-{out['candidate']}"
    assert out["data"]["recent_rows"] == 400 and out["data"]["holdout_rows"] == 120
    registry, cloudformation = stack.registry, stack.cloudformation
    assert registry.resolve("breast-cancer", CANDIDATE) == out["candidate"]
    assert registry.resolve("breast-cancer", CHAMPION) == stack.champion.version  # not before the update completes
    decision = [e for e in registry.history("breast-cancer") if e["event"] == "retrain_decision"][-1]
    assert decision["trigger"]["alarm"] == "modelops-breast-cancer-quality"
    assert cloudformation.status == "UPDATE_COMPLETE" and cloudformation.live_model_version() == out["candidate"]

    # the stack update completes: the handler pins what `live` now serves
    done = load_handler("retrain").lambda_handler(cloudformation.events[-1], CONTEXT)
    assert done["outcome"] == "promoted" and done["champion"] == out["candidate"]
    assert registry.resolve("breast-cancer", CHAMPION) == out["candidate"]
    assert registry.resolve("breast-cancer", CANDIDATE) == out["candidate"]  # no other candidate in flight
    assert stack.pins.get() == out["candidate"]


def test_rolled_back_update_keeps_the_champion_and_clears_the_candidate(stack):
    stack.cloudformation.canary = lambda version: "PreTraffic hook: golden predictions differ"
    out = load_handler("retrain").lambda_handler(alarm_event(), CONTEXT)
    assert out["outcome"] == "promoted" and stack.cloudformation.status == "UPDATE_ROLLBACK_COMPLETE"
    done = load_handler("retrain").lambda_handler(stack.cloudformation.events[-1], CONTEXT)
    registry = stack.registry
    assert done["outcome"] == "rolled_back" and done["candidate"] == out["candidate"]
    assert registry.resolve("breast-cancer", CHAMPION) == stack.champion.version
    assert registry.resolve("breast-cancer", CANDIDATE) == stack.champion.version
    assert (
        stack.pins.get() == stack.champion.version
        and stack.cloudformation.live_model_version() == stack.champion.version
    )


def test_end_of_a_rolled_back_update_restores_the_autoscaled_minimum(stack, monkeypatch):
    """Autoscaled stacks: a scheduled minimum raised while the canary weighted the alias is applied at the end of the
    update, whatever its outcome (Application Auto Scaling is moto, Lambda's provisioned concurrency API a Stubber:
    see tests/unit/rollout/test_scaling.py)."""
    from modelops.rollout.scaling import AliasScaling
    from support.scaling import FN as SCALED_FN
    from support.scaling import expect_put, lambda_stub, register

    autoscaling = boto3.client("application-autoscaling", region_name="us-east-1")
    register(autoscaling, 4, 10)
    stub_lam, stub = lambda_stub(requested=1)
    expect_put(stub, 4)
    monkeypatch.setitem(
        lifecycle.dependency_overrides, "scaling", AliasScaling(autoscaling, stub_lam, SCALED_FN, "live")
    )
    stack.cloudformation.canary = lambda version: "PreTraffic hook: golden predictions differ"
    load_handler("retrain").lambda_handler(alarm_event(), CONTEXT)
    with stub:
        done = load_handler("retrain").lambda_handler(stack.cloudformation.events[-1], CONTEXT)
    stub.assert_no_pending_responses()
    assert done["outcome"] == "rolled_back"
    assert done["scaling"]["scaling"] == "restored" and done["scaling"]["set_to"] == 4


def test_a_scaling_misconfiguration_never_stops_the_finalize_step(stack, monkeypatch):
    monkeypatch.setenv("MODELOPS_PREDICT_SCALING_MODE", "Provisioned")
    monkeypatch.setenv("MODELOPS_PREDICT_INSTANCE_COUNT", "two")
    out = load_handler("retrain").lambda_handler(alarm_event(), CONTEXT)
    done = load_handler("retrain").lambda_handler(stack.cloudformation.events[-1], CONTEXT)
    assert done["outcome"] == "promoted" and done["champion"] == out["candidate"]
    assert done["scaling"]["scaling"] == "failed" and "MODELOPS_PREDICT_INSTANCE_COUNT" in done["scaling"]["error"]
    assert stack.pins.get() == out["candidate"]


def test_ok_state_and_other_stacks_are_ignored(deployed):
    event = alarm_event()
    event["detail"]["state"]["value"] = "OK"
    assert load_handler("retrain").lambda_handler(event, CONTEXT)["action"] == "ignored"
    other = {
        "source": "aws.cloudformation",
        "detail-type": "CloudFormation Stack Status Change",
        "detail": {
            "stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/modelops-prod/0000",
            "status-details": {"status": "UPDATE_COMPLETE"},
        },
    }
    assert load_handler("retrain").lambda_handler(other, CONTEXT)["action"] == "ignored"
    in_progress = {
        **other,
        "detail": {
            **other["detail"],
            "stack-id": deployed.cloudformation.id,
            "status-details": {"status": "UPDATE_IN_PROGRESS"},
        },
    }
    assert load_handler("retrain").lambda_handler(in_progress, CONTEXT)["action"] == "ignored"
    assert deployed.registry.resolve("breast-cancer", CHAMPION) == deployed.champion.version


def test_misconfigured_function_reports_instead_of_crashing(deployed, monkeypatch):
    monkeypatch.delenv("MODELOPS_DATA_URI")
    out = load_handler("retrain").lambda_handler(alarm_event(), CONTEXT)
    assert out["outcome"] == "failed" and "MODELOPS_DATA_URI" in out["reason"]


def test_monitor_publishes_drift_and_quality_per_version(stack, capsys):
    summary = load_handler("monitor").lambda_handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"}, CONTEXT
    )
    version = stack.champion.version
    assert summary["captured_requests"] == 40 and summary["labelled_rows"] == 400
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    by_name: dict = {}
    for line in lines:
        for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            by_name.setdefault(metric["Name"], []).append(line)
    assert {"FeaturePSI", "DriftPSIMax", "PredictionPSI", "QualityAccuracy", "QualityAUC", "LabelledRows"} <= set(
        by_name
    )
    psi_max = by_name["DriftPSIMax"][0]
    assert psi_max["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ModelName", "ModelVersion"], ["ModelName"]]
    assert psi_max["ModelVersion"] == version and psi_max["DriftPSIMax"] > 0.25  # sizes scaled by 1.3
    per_feature = {line["Feature"]: line["FeaturePSI"] for line in by_name["FeaturePSI"]}
    # same metric name and ModelName+Feature dimensions as batch runs, plus the per-version set
    assert by_name["FeaturePSI"][0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Feature", "ModelName", "ModelVersion"],
        ["Feature", "ModelName"],
    ]
    assert len(per_feature) == 30 and max(per_feature, key=per_feature.get) in {
        "mean_area",
        "worst_area",
        "area_error",
        "mean_radius",
        "worst_radius",
        "mean_perimeter",
        "worst_perimeter",
    }
    accuracy = by_name["QualityAccuracy"][0]["QualityAccuracy"]
    assert accuracy == pytest.approx(summary["versions"][version]["quality"]["accuracy"])
    assert 0.5 < accuracy < 0.95  # the drift hurts the champion
