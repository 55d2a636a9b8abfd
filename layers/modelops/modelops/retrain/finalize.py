"""A winner going live and the end of its rollout: the candidate alias, the stack update, and on success the
SSM pin and the champion alias."""

from __future__ import annotations

import logging
from typing import Any

from ..adapters.notify import NullNotifier
from ..core.errors import ConflictError, ModelOpsError
from ..ports import ChampionPin, Deployer, Notifier
from ..registry import CANDIDATE, CHAMPION, Registry
from ..rollout.deploy import MODEL_VERSION_VAR, reset_candidate

log = logging.getLogger(__name__)


def start_rollout(
    registry: Registry,
    name: str,
    deployer: Deployer,
    candidate: str,
    champion: str,
    *,
    reason: str,
    trigger: str,
    description: str,
) -> Any:
    """The one way a candidate goes live, for an automatic decision and an approval alike: the candidate alias names
    it (the PreTraffic hook lets a deployment serve only the champion or this candidate), then the stack update
    starts. If it cannot start, the candidate alias names the champion again."""
    registry.set_alias(name, CANDIDATE, candidate, reason=reason[:200], trigger=trigger)
    try:
        return deployer.start(candidate, description)
    except Exception:
        reset_candidate(registry, name, champion, "the rollout could not start")
        raise


def finalize(
    registry: Registry,
    name: str,
    deployer: Deployer,
    pin: ChampionPin,
    notifier: Notifier | None,
    deployment_id: str,
    succeeded: bool,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Called when a stack update of the predict function ends. On success the model the `live` alias now serves
    becomes the champion: first the SSM pin (what a later `sam deploy` resolves), then the registry alias. On failure
    CloudFormation and CodeDeploy have already rolled the stack and the traffic back; nothing moves."""
    notifier = notifier or NullNotifier()
    champion = registry.get_alias(name, CHAMPION).version
    candidate = registry.get_alias(name, CANDIDATE).version
    detail: dict[str, Any] = {"deployment_id": deployment_id, "trigger": trigger or {}, "champion_before": champion}
    if candidate and candidate != champion:
        detail["candidate"] = candidate
    if not succeeded:
        detail.update(outcome="rolled_back", reason="the rollout did not succeed; the champion keeps serving")
        reset_candidate(registry, name, champion, f"rollout {deployment_id} rolled back")
        registry.record(name, "rollout_finished", detail)
        notifier.publish(f"modelops: {name} rollout {deployment_id} rolled back", detail)
        return detail
    live = deployer.live_model_version()
    if not live:
        raise ModelOpsError(f"the live alias of {name}'s predict function has no {MODEL_VERSION_VAR} set")
    pin.put(live)
    if live != champion:
        try:
            registry.set_alias(
                name,
                CHAMPION,
                live,
                expected=champion,
                reason=f"rollout {deployment_id} succeeded",
                trigger=f"rollout:{deployment_id}",
            )
        except ConflictError:
            detail["warning"] = "the champion alias changed during the rollout; the SSM pin follows what is live"
    reset_candidate(registry, name, live, f"rollout {deployment_id} finished")
    detail.update(outcome="promoted" if live != champion else "unchanged", champion=live)
    registry.record(name, "rollout_finished", detail)
    notifier.publish(
        f"modelops: {name} {live} is the champion"
        if live != champion
        else f"modelops: {name} rollout {deployment_id} finished",
        detail,
    )
    return detail
