"""Assembling the retrain loop from environment variables (the retrain function and `modelops retrain`
use the same names); the events that drive it are read by modelops.retrain.events.

Environment:
    MODELOPS_REGISTRY, MODELOPS_MODEL_NAME         the registry and the model
    MODELOPS_DATA_URI                              s3://bucket/prefix of captured predictions + feedback
    MODELOPS_STACK_NAME                            the stack a rollout updates (modelops.rollout.deploy); its pins live
                                                   under /modelops/<stack>/<model>/ in SSM
    MODELOPS_PREDICT_FUNCTION, MODELOPS_PREDICT_ALIAS (default live)
    MODELOPS_PREDICT_SCALING_MODE, MODELOPS_PREDICT_INSTANCE_COUNT   Autoscaled: after each stack update the alias's
                                                   provisioned concurrency is put back inside its scalable target;
                                                   Provisioned: back to the count (modelops.rollout.scaling)
    MODELOPS_RETRAIN_TOPIC                         SNS topic ARN for announcements (optional)
    MODELOPS_RETRAIN_RECENT_DAYS, _HOLDOUT_FRACTION, _MIN_ROWS, _MARGIN, _METRIC, _COOLDOWN_HOURS,
    MODELOPS_RETRAIN_MIN_ACCURACY, _MIN_AUC, _MAX_MAE  absolute floors (unset = no floor)
    MODELOPS_RETRAIN_RECENT_TOLERANCE              how much worse than the champion a candidate may be on the
                                                   recent-label holdout (the trusted set decides)
    MODELOPS_RETRAIN_TRUSTED_URI                   curated trusted rows (*.csv), e.g. s3://bucket/training-data/trusted
    MODELOPS_RETRAIN_MAX_WRITER_SHARE, _MAX_DISAGREEMENT_JUMP   label-shift pauses (modelops.retrain.labelshift)
    MODELOPS_APPROVAL_MODE                         auto (default) | manual: a winner waits for `models approve`
    MODELOPS_WINDOW_MAX_RECORDS                    newest captured requests / feedback records read per window
    MODELOPS_RETRAIN_SIGNIFICANCE                  classifiers: level of the sign test on the trusted set (1 = off)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..adapters.aws import client
from ..adapters.notify import NullNotifier, SnsNotifier
from ..adapters.objectstore import open_location
from ..capture.partitions import DEFAULT_MAX_RECORDS
from ..core import env as settings
from ..ports import Deployer, Notifier
from ..registry import Registry
from ..retrain.data import FeedbackLabelled
from ..retrain.run import RetrainConfig, Retrainer
from ..rollout.deploy import LIVE_ALIAS, LambdaVersions, PinNames, SsmPins, StackRolloutDeployer
from ..rollout.scaling import AliasScaling

# Objects that replace what the environment would build, by name ("deployer", "notifier", "pins", "scaling"),
# as Powertools' dependency_overrides: tests and local tools set them instead of patching these functions.
dependency_overrides: dict[str, Any] = {}

FLOOR_VARS = {
    "MODELOPS_RETRAIN_MIN_ACCURACY": "accuracy",
    "MODELOPS_RETRAIN_MIN_AUC": "roc_auc",
    "MODELOPS_RETRAIN_MAX_MAE": "mae",
}


def _number(env: Mapping[str, str] | None, name: str, default: float) -> float:
    return settings.number(name, default, env=env)


def config_from_env(env: Mapping[str, str] | None = None) -> RetrainConfig:
    floors = {metric: _number(env, var, 0.0) for var, metric in FLOOR_VARS.items() if settings.text(var, env=env)}
    return RetrainConfig(
        recent_days=_number(env, "MODELOPS_RETRAIN_RECENT_DAYS", 14),
        holdout_fraction=_number(env, "MODELOPS_RETRAIN_HOLDOUT_FRACTION", 0.3),
        min_recent_rows=settings.integer("MODELOPS_RETRAIN_MIN_ROWS", 50, env=env),
        margin=_number(env, "MODELOPS_RETRAIN_MARGIN", 0.01),
        metric=settings.text("MODELOPS_RETRAIN_METRIC", env=env) or None,
        cooldown_seconds=_number(env, "MODELOPS_RETRAIN_COOLDOWN_HOURS", 24) * 3600,
        floors=floors,
        recent_tolerance=_number(env, "MODELOPS_RETRAIN_RECENT_TOLERANCE", 0.02),
        trusted_uri=settings.text("MODELOPS_RETRAIN_TRUSTED_URI", env=env),
        max_writer_share=_number(env, "MODELOPS_RETRAIN_MAX_WRITER_SHARE", 0.5),
        max_disagreement_jump=_number(env, "MODELOPS_RETRAIN_MAX_DISAGREEMENT_JUMP", 0.2),
        approval=approval_mode(env),
        max_records=settings.integer("MODELOPS_WINDOW_MAX_RECORDS", DEFAULT_MAX_RECORDS, minimum=1, env=env),
        significance=_number(env, "MODELOPS_RETRAIN_SIGNIFICANCE", 0.05),
    )


APPROVAL_MODES = ("auto", "manual")


def approval_mode(env: Mapping[str, str] | None = None) -> str:
    return settings.choice("MODELOPS_APPROVAL_MODE", APPROVAL_MODES, "auto", env=env)


def _required(env: Mapping[str, str] | None, name: str) -> str:
    return settings.required(name, env=env)


def pins_from_env(env: Mapping[str, str] | None = None) -> SsmPins:
    if "pins" in dependency_overrides:
        return dependency_overrides["pins"]
    return SsmPins(
        client("ssm"), PinNames(_required(env, "MODELOPS_STACK_NAME"), _required(env, "MODELOPS_MODEL_NAME"))
    )


def deployer_from_env(env: Mapping[str, str] | None = None) -> Deployer:
    if "deployer" in dependency_overrides:
        return dependency_overrides["deployer"]
    versions = LambdaVersions(
        client("lambda"),
        _required(env, "MODELOPS_PREDICT_FUNCTION"),
        settings.text("MODELOPS_PREDICT_ALIAS", env=env) or LIVE_ALIAS,
    )
    return StackRolloutDeployer(
        client("cloudformation"), pins_from_env(env), _required(env, "MODELOPS_STACK_NAME"), versions
    )


def scaling_from_env(env: Mapping[str, str] | None = None) -> AliasScaling | None:
    if "scaling" in dependency_overrides:
        return dependency_overrides["scaling"]
    mode = settings.text("MODELOPS_PREDICT_SCALING_MODE", env=env)
    if mode not in ("Autoscaled", "Provisioned"):
        return None
    function = _required(env, "MODELOPS_PREDICT_FUNCTION")
    alias = settings.text("MODELOPS_PREDICT_ALIAS", env=env) or LIVE_ALIAS
    if mode == "Autoscaled":
        return AliasScaling(client("application-autoscaling"), client("lambda"), function, alias)
    _required(env, "MODELOPS_PREDICT_INSTANCE_COUNT")
    count = settings.integer("MODELOPS_PREDICT_INSTANCE_COUNT", 0, minimum=0, env=env)
    return AliasScaling(None, client("lambda"), function, alias, fixed=count)


def notifier_from_env(env: Mapping[str, str] | None = None) -> Notifier:
    if "notifier" in dependency_overrides:
        return dependency_overrides["notifier"]
    topic = settings.text("MODELOPS_RETRAIN_TOPIC", env=env)
    return SnsNotifier(client("sns"), topic) if topic else NullNotifier()


def registry_from_env(env: Mapping[str, str] | None = None) -> tuple[Registry, str]:
    return Registry(_required(env, "MODELOPS_REGISTRY")), _required(env, "MODELOPS_MODEL_NAME")


def retrainer_from_env(env: Mapping[str, str] | None = None, deployer: Deployer | None = None) -> Retrainer:
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


def champion_pin_from_env(env: Mapping[str, str] | None = None) -> SsmPins:
    return pins_from_env(env)
