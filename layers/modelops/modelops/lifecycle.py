"""Assembling the retrain loop from environment variables (the retrain function and `modelops retrain`
use the same names), and recognising the events that drive it.

Environment:
    MODELOPS_REGISTRY, MODELOPS_MODEL_NAME         the registry and the model
    MODELOPS_DATA_URI                              s3://bucket/prefix of captured predictions + feedback
    MODELOPS_STACK_NAME                            the stack a rollout updates (modelops.deploy); its pins live
                                                   under /modelops/<stack>/<model>/ in SSM
    MODELOPS_PREDICT_FUNCTION, MODELOPS_PREDICT_ALIAS (default live)
    MODELOPS_PREDICT_SCALING_MODE, MODELOPS_PREDICT_INSTANCE_COUNT   Autoscaled: after each stack update the alias's
                                                   provisioned concurrency is put back inside its scalable target;
                                                   Provisioned: back to the count (modelops.scaling)
    MODELOPS_RETRAIN_TOPIC                         SNS topic ARN for announcements (optional)
    MODELOPS_RETRAIN_RECENT_DAYS, _HOLDOUT_FRACTION, _MIN_ROWS, _MARGIN, _METRIC, _COOLDOWN_HOURS,
    MODELOPS_RETRAIN_MIN_ACCURACY, _MIN_AUC, _MAX_MAE  absolute floors (unset = no floor)
    MODELOPS_RETRAIN_RECENT_TOLERANCE              how much worse than the champion a candidate may be on the
                                                   recent-label holdout (the trusted set decides)
    MODELOPS_RETRAIN_TRUSTED_URI                   curated trusted rows (*.csv), e.g. s3://bucket/training-data/trusted
    MODELOPS_RETRAIN_MAX_WRITER_SHARE, _MAX_DISAGREEMENT_JUMP   label-shift pauses (modelops.labelshift)
    MODELOPS_APPROVAL_MODE                         auto (default) | manual: a winner waits for `models approve`
    MODELOPS_WINDOW_MAX_RECORDS                    newest captured requests / feedback records read per window
    MODELOPS_RETRAIN_SIGNIFICANCE                  classifiers: level of the sign test on the trusted set (1 = off)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .aws import client
from .deploy import LIVE_ALIAS, Deployer, LambdaVersions, PinNames, SsmPins, StackRolloutDeployer
from .errors import ModelOpsError
from .feedback import DEFAULT_MAX_RECORDS
from .objectstore import open_location
from .registry import Registry
from .retrain import FeedbackLabelled, Notifier, NullNotifier, RetrainConfig, Retrainer, SnsNotifier
from .scaling import AliasScaling

# Stack statuses that end an update: its rollout succeeded, or CloudFormation rolled it back.
SUCCEEDED_STATES = ("UPDATE_COMPLETE",)
FAILED_STATES = ("UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED")

FLOOR_VARS = {
    "MODELOPS_RETRAIN_MIN_ACCURACY": "accuracy",
    "MODELOPS_RETRAIN_MIN_AUC": "roc_auc",
    "MODELOPS_RETRAIN_MAX_MAE": "mae",
}


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ModelOpsError(f"{name}={raw!r} is not a number") from None


def config_from_env(env: Mapping[str, str] = os.environ) -> RetrainConfig:
    floors = {metric: _number(env, var, 0.0) for var, metric in FLOOR_VARS.items() if env.get(var, "") != ""}
    return RetrainConfig(
        recent_days=_number(env, "MODELOPS_RETRAIN_RECENT_DAYS", 14),
        holdout_fraction=_number(env, "MODELOPS_RETRAIN_HOLDOUT_FRACTION", 0.3),
        min_recent_rows=int(_number(env, "MODELOPS_RETRAIN_MIN_ROWS", 50)),
        margin=_number(env, "MODELOPS_RETRAIN_MARGIN", 0.01),
        metric=env.get("MODELOPS_RETRAIN_METRIC") or None,
        cooldown_seconds=_number(env, "MODELOPS_RETRAIN_COOLDOWN_HOURS", 24) * 3600,
        floors=floors,
        recent_tolerance=_number(env, "MODELOPS_RETRAIN_RECENT_TOLERANCE", 0.02),
        trusted_uri=env.get("MODELOPS_RETRAIN_TRUSTED_URI") or "",
        max_writer_share=_number(env, "MODELOPS_RETRAIN_MAX_WRITER_SHARE", 0.5),
        max_disagreement_jump=_number(env, "MODELOPS_RETRAIN_MAX_DISAGREEMENT_JUMP", 0.2),
        approval=approval_mode(env),
        max_records=int(_number(env, "MODELOPS_WINDOW_MAX_RECORDS", DEFAULT_MAX_RECORDS)),
        significance=_number(env, "MODELOPS_RETRAIN_SIGNIFICANCE", 0.05),
    )


APPROVAL_MODES = ("auto", "manual")


def approval_mode(env: Mapping[str, str] = os.environ) -> str:
    mode = (env.get("MODELOPS_APPROVAL_MODE") or "auto").strip().lower()
    if mode not in APPROVAL_MODES:
        raise ModelOpsError(f"MODELOPS_APPROVAL_MODE={mode!r} is not one of {', '.join(APPROVAL_MODES)}")
    return mode


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ModelOpsError(f"{name} is not set")
    return value


def pins_from_env(env: Mapping[str, str] = os.environ) -> SsmPins:
    return SsmPins(
        client("ssm"), PinNames(_required(env, "MODELOPS_STACK_NAME"), _required(env, "MODELOPS_MODEL_NAME"))
    )


def deployer_from_env(env: Mapping[str, str] = os.environ) -> StackRolloutDeployer:
    versions = LambdaVersions(
        client("lambda"), _required(env, "MODELOPS_PREDICT_FUNCTION"), env.get("MODELOPS_PREDICT_ALIAS") or LIVE_ALIAS
    )
    return StackRolloutDeployer(
        client("cloudformation"), pins_from_env(env), _required(env, "MODELOPS_STACK_NAME"), versions
    )


def scaling_from_env(env: Mapping[str, str] = os.environ) -> AliasScaling | None:
    mode = env.get("MODELOPS_PREDICT_SCALING_MODE", "")
    if mode not in ("Autoscaled", "Provisioned"):
        return None
    function, alias = _required(env, "MODELOPS_PREDICT_FUNCTION"), env.get("MODELOPS_PREDICT_ALIAS") or LIVE_ALIAS
    if mode == "Autoscaled":
        return AliasScaling(client("application-autoscaling"), client("lambda"), function, alias)
    count = _required(env, "MODELOPS_PREDICT_INSTANCE_COUNT")
    if not count.isdigit():
        raise ModelOpsError(f"MODELOPS_PREDICT_INSTANCE_COUNT={count!r} is not a count")
    return AliasScaling(None, client("lambda"), function, alias, fixed=int(count))


def notifier_from_env(env: Mapping[str, str] = os.environ) -> Notifier:
    topic = env.get("MODELOPS_RETRAIN_TOPIC")
    return SnsNotifier(client("sns"), topic) if topic else NullNotifier()


def registry_from_env(env: Mapping[str, str] = os.environ) -> tuple[Registry, str]:
    return Registry(_required(env, "MODELOPS_REGISTRY")), _required(env, "MODELOPS_MODEL_NAME")


def retrainer_from_env(env: Mapping[str, str] = os.environ, deployer: Deployer | None = None) -> Retrainer:
    registry, name = registry_from_env(env)
    store, prefix = open_location(_required(env, "MODELOPS_DATA_URI"), registry.s3)
    config = config_from_env(env)
    return Retrainer(
        registry,
        name,
        labelled=FeedbackLabelled(store, prefix, config.max_records),
        deployer=deployer or deployer_from_env(env),
        notifier=notifier_from_env(env),
        config=config,
    )


def champion_pin_from_env(env: Mapping[str, str] = os.environ) -> SsmPins:
    return pins_from_env(env)


# ---- events ------------------------------------------------------------------------------------
def classify(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """('retrain', trigger) | ('finalize', stack update) | ('ignore', why) for an incoming event."""
    source, kind = event.get("source"), event.get("detail-type")
    detail = event.get("detail") or {}
    if source == "aws.cloudwatch" and kind == "CloudWatch Alarm State Change":
        state = (detail.get("state") or {}).get("value")
        trigger = {
            "type": "alarm",
            "alarm": detail.get("alarmName"),
            "state": state,
            "reason": (detail.get("state") or {}).get("reason"),
            "time": event.get("time"),
            "previous": (detail.get("previousState") or {}).get("value"),
        }
        if state != "ALARM":
            return "ignore", {**trigger, "why": f"alarm state is {state}, not ALARM"}
        return "retrain", trigger
    if source == "aws.events" and kind == "Scheduled Event":
        return "retrain", {"type": "schedule", "rule": (event.get("resources") or [None])[0], "time": event.get("time")}
    if source == "aws.cloudformation" and kind == "CloudFormation Stack Status Change":
        status = (detail.get("status-details") or {}).get("status")
        info = {
            "type": "cloudformation",
            "stack_id": detail.get("stack-id"),
            "deployment_id": detail.get("client-request-token") or detail.get("stack-id"),
            "state": status,
            "reason": (detail.get("status-details") or {}).get("status-reason"),
            "time": event.get("time"),
        }
        if status in SUCCEEDED_STATES or status in FAILED_STATES:
            return "finalize", {**info, "succeeded": status in SUCCEEDED_STATES}
        return "ignore", {**info, "why": f"stack status {status} is not the end of an update"}
    if event.get("action") == "retrain":
        return "retrain", {"type": "manual", "by": event.get("by", "invoke"), "dry_run": bool(event.get("dry_run"))}
    return "ignore", {"why": f"unrecognised event (source {source!r}, detail-type {kind!r})"}
