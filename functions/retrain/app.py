"""Retrain function: an alarm (or the weekly schedule) retrains and gates a candidate and updates the stack to roll
it out; when an update of this stack ends, the model the predict function's `live` alias serves is pinned as the
champion."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from modelops.core import env as settings
from modelops.core.errors import ModelOpsError
from modelops.retrain.events import classify
from modelops.retrain.finalize import finalize
from modelops.rollout.scaling import reconcile_quietly
from modelops.wiring import retrain as lifecycle

logger = Logger()


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    action, info = classify(event)
    if action == "ignore":
        logger.info("event ignored", extra=info)
        return {"action": "ignored", **info}
    if action == "finalize":
        stack_name = settings.text("MODELOPS_STACK_NAME")
        if f":stack/{stack_name}/" not in str(info.get("stack_id") or ""):
            logger.info("status change of another stack", extra=info)
            return {"action": "ignored", "why": "another stack", **info}
        # First, and never raising: a finalize that fails must not also leave the alias outside its scaling range.
        try:
            scaling = reconcile_quietly(lifecycle.scaling_from_env())
        except ModelOpsError as exc:
            scaling = {"scaling": "failed", "error": str(exc)}
        registry, name = lifecycle.registry_from_env()
        detail = finalize(
            registry,
            name,
            lifecycle.deployer_from_env(),
            lifecycle.champion_pin_from_env(),
            lifecycle.notifier_from_env(),
            info["deployment_id"],
            succeeded=info["succeeded"],
            trigger=info,
        )
        logger.info("rollout finished", extra={**detail, "scaling": scaling})
        return {"action": "finalized", **detail, "scaling": scaling}
    try:
        retrainer = lifecycle.retrainer_from_env()
    except ModelOpsError as exc:
        logger.error("retrain function is misconfigured: %s", exc)
        return {"action": "retrain", "outcome": "failed", "reason": str(exc), "stage": "configuration"}
    result = retrainer.run(info, dry_run=bool(info.get("dry_run")))
    logger.info("retrain %s", result.outcome, extra=result.to_dict())
    return {"action": "retrain", **result.to_dict()}
