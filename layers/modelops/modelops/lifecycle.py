"""Assembling the retrain loop from environment variables (the retrain function and `modelops retrain`
use the same names), and recognising the events that drive it.

Environment:
    MODELOPS_REGISTRY, MODELOPS_MODEL_NAME         the registry and the model
    MODELOPS_DATA_URI                              s3://bucket/prefix of captured predictions + feedback
    MODELOPS_PREDICT_FUNCTION, MODELOPS_PREDICT_ALIAS (default live)
    MODELOPS_CODEDEPLOY_APPLICATION, MODELOPS_CODEDEPLOY_GROUP, MODELOPS_PRETRAFFIC_HOOK
    MODELOPS_RETRAIN_TOPIC                         SNS topic ARN for announcements (optional)
    MODELOPS_RETRAIN_RECENT_DAYS, _HOLDOUT_FRACTION, _MIN_ROWS, _MARGIN, _METRIC, _COOLDOWN_HOURS,
    MODELOPS_RETRAIN_MIN_ACCURACY, _MIN_AUC, _MAX_MAE  absolute floors (unset = no floor)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .aws import client, parse_s3_uri
from .deploy import LIVE_ALIAS, CodeDeployDeployer, Deployer, LambdaVersions, SsmChampionPin
from .errors import ModelOpsError
from .registry import Registry
from .retrain import FeedbackLabelled, Notifier, NullNotifier, RetrainConfig, Retrainer, SnsNotifier

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
    )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ModelOpsError(f"{name} is not set")
    return value


def deployer_from_env(env: Mapping[str, str] = os.environ) -> CodeDeployDeployer:
    versions = LambdaVersions(
        client("lambda"), _required(env, "MODELOPS_PREDICT_FUNCTION"), env.get("MODELOPS_PREDICT_ALIAS") or LIVE_ALIAS
    )
    return CodeDeployDeployer(
        versions,
        client("codedeploy"),
        _required(env, "MODELOPS_CODEDEPLOY_APPLICATION"),
        _required(env, "MODELOPS_CODEDEPLOY_GROUP"),
        pre_traffic_hook=env.get("MODELOPS_PRETRAFFIC_HOOK") or None,
    )


def notifier_from_env(env: Mapping[str, str] = os.environ) -> Notifier:
    topic = env.get("MODELOPS_RETRAIN_TOPIC")
    return SnsNotifier(client("sns"), topic) if topic else NullNotifier()


def registry_from_env(env: Mapping[str, str] = os.environ) -> tuple[Registry, str]:
    return Registry(_required(env, "MODELOPS_REGISTRY")), _required(env, "MODELOPS_MODEL_NAME")


def retrainer_from_env(env: Mapping[str, str] = os.environ, deployer: Deployer | None = None) -> Retrainer:
    registry, name = registry_from_env(env)
    bucket, prefix = parse_s3_uri(_required(env, "MODELOPS_DATA_URI"))
    return Retrainer(
        registry,
        name,
        labelled=FeedbackLabelled(bucket, prefix, registry.s3),
        deployer=deployer or deployer_from_env(env),
        notifier=notifier_from_env(env),
        config=config_from_env(env),
    )


def champion_pin_from_env(env: Mapping[str, str] = os.environ) -> SsmChampionPin:
    return SsmChampionPin(client("ssm"), _required(env, "MODELOPS_MODEL_NAME"))


# ---- events ------------------------------------------------------------------------------------
def classify(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """('retrain', trigger) | ('finalize', deployment) | ('ignore', why) for an incoming event."""
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
    if source == "aws.codedeploy":
        state = detail.get("state")
        info = {
            "type": "codedeploy",
            "deployment_id": detail.get("deploymentId"),
            "state": state,
            "application": detail.get("application"),
            "group": detail.get("deploymentGroup"),
            "time": event.get("time"),
        }
        if state in ("SUCCESS", "FAILURE", "STOP"):
            return "finalize", info
        return "ignore", {**info, "why": f"deployment state {state} is not final"}
    if event.get("action") == "retrain":
        return "retrain", {"type": "manual", "by": event.get("by", "invoke"), "dry_run": bool(event.get("dry_run"))}
    return "ignore", {"why": f"unrecognised event (source {source!r}, detail-type {kind!r})"}
