"""The retrain and monitor handlers on real-shaped events, with the registry, captured predictions and
feedback in moto S3 and the predict function's versions in moto Lambda. CloudFormation and CodeDeploy are the
fake in stack_fake.py (moto runs neither a SAM change set nor a deployment; the fake's docstring names the
documented behaviour it follows); alarms are not evaluated by moto, so the alarm event is the file in events/
that `sam local invoke RetrainFunction` uses."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from lifecycle_fakes import TRUSTED_URI, put_trusted_rows
from modelops import feedback, lifecycle
from modelops.artifact import load_from_dir
from modelops.dataset import load_builtin
from modelops.deploy import LambdaVersions, PinNames, SsmPins, StackRolloutDeployer
from modelops.registry import CANDIDATE, CHAMPION
from stack_fake import FakeStack, ReadOnlyLambda
from test_lifecycle_deploy import FN, lam  # noqa: F401  (moto Lambda fixture)

from devtools.lifecycle_sim import drifted_rows

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = SimpleNamespace(
    function_name="f",
    memory_limit_in_mb=512,
    aws_request_id="req-1",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
)


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"lifecycle_{name}_app", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alarm_event() -> dict:
    return json.loads((ROOT / "events" / "alarm-state-change.json").read_text())


STACK = "modelops-dev"


@pytest.fixture
def deployed(registry, classifier_dir, lam, monkeypatch):  # noqa: F811
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
    log = feedback.PredictionLog("modelops-test", "data", registry.s3)
    store = feedback.FeedbackStore("modelops-test", "data", registry.s3)
    records = []
    for r in range(40):
        rows = slice(r * 10, r * 10 + 10)
        at = now - 3600 * 6 + r * 300
        records.append(
            feedback.prediction_record(
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


def test_alarm_event_retrains_and_rolls_out_through_a_stack_update(stack):
    out = load("retrain").lambda_handler(alarm_event(), CONTEXT)
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
    done = load("retrain").lambda_handler(cloudformation.events[-1], CONTEXT)
    assert done["outcome"] == "promoted" and done["champion"] == out["candidate"]
    assert registry.resolve("breast-cancer", CHAMPION) == out["candidate"]
    assert registry.resolve("breast-cancer", CANDIDATE) == out["candidate"]  # no other candidate in flight
    assert stack.pins.get() == out["candidate"]


def test_rolled_back_update_keeps_the_champion_and_clears_the_candidate(stack):
    stack.cloudformation.canary = lambda version: "PreTraffic hook: golden predictions differ"
    out = load("retrain").lambda_handler(alarm_event(), CONTEXT)
    assert out["outcome"] == "promoted" and stack.cloudformation.status == "UPDATE_ROLLBACK_COMPLETE"
    done = load("retrain").lambda_handler(stack.cloudformation.events[-1], CONTEXT)
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
    see tests/test_scaling.py)."""
    from modelops.scaling import AliasScaling
    from test_scaling import FN as SCALED_FN
    from test_scaling import expect_put, lambda_stub, register

    autoscaling = boto3.client("application-autoscaling", region_name="us-east-1")
    register(autoscaling, 4, 10)
    stub_lam, stub = lambda_stub(requested=1)
    expect_put(stub, 4)
    monkeypatch.setattr(
        lifecycle, "scaling_from_env", lambda env=None: AliasScaling(autoscaling, stub_lam, SCALED_FN, "live")
    )
    stack.cloudformation.canary = lambda version: "PreTraffic hook: golden predictions differ"
    load("retrain").lambda_handler(alarm_event(), CONTEXT)
    with stub:
        done = load("retrain").lambda_handler(stack.cloudformation.events[-1], CONTEXT)
    stub.assert_no_pending_responses()
    assert done["outcome"] == "rolled_back"
    assert done["scaling"]["scaling"] == "restored" and done["scaling"]["set_to"] == 4


def test_a_scaling_misconfiguration_never_stops_the_finalize_step(stack, monkeypatch):
    monkeypatch.setenv("MODELOPS_PREDICT_SCALING_MODE", "Provisioned")
    monkeypatch.setenv("MODELOPS_PREDICT_INSTANCE_COUNT", "two")
    out = load("retrain").lambda_handler(alarm_event(), CONTEXT)
    done = load("retrain").lambda_handler(stack.cloudformation.events[-1], CONTEXT)
    assert done["outcome"] == "promoted" and done["champion"] == out["candidate"]
    assert done["scaling"]["scaling"] == "failed" and "MODELOPS_PREDICT_INSTANCE_COUNT" in done["scaling"]["error"]
    assert stack.pins.get() == out["candidate"]


def test_ok_state_and_other_stacks_are_ignored(deployed):
    event = alarm_event()
    event["detail"]["state"]["value"] = "OK"
    assert load("retrain").lambda_handler(event, CONTEXT)["action"] == "ignored"
    other = {
        "source": "aws.cloudformation",
        "detail-type": "CloudFormation Stack Status Change",
        "detail": {
            "stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/modelops-prod/0000",
            "status-details": {"status": "UPDATE_COMPLETE"},
        },
    }
    assert load("retrain").lambda_handler(other, CONTEXT)["action"] == "ignored"
    in_progress = {
        **other,
        "detail": {
            **other["detail"],
            "stack-id": deployed.cloudformation.id,
            "status-details": {"status": "UPDATE_IN_PROGRESS"},
        },
    }
    assert load("retrain").lambda_handler(in_progress, CONTEXT)["action"] == "ignored"
    assert deployed.registry.resolve("breast-cancer", CHAMPION) == deployed.champion.version


def test_misconfigured_function_reports_instead_of_crashing(deployed, monkeypatch):
    monkeypatch.delenv("MODELOPS_DATA_URI")
    out = load("retrain").lambda_handler(alarm_event(), CONTEXT)
    assert out["outcome"] == "failed" and "MODELOPS_DATA_URI" in out["reason"]


def test_monitor_publishes_drift_and_quality_per_version(stack, capsys):
    summary = load("monitor").lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, CONTEXT)
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
