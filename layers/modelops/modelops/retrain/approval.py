"""Manual approval of a retrain winner (like SageMaker Model Registry's PendingManualApproval): with approval
"manual", or when the champion has no trusted evaluation set, the retrain registers the winner and points the
registry alias `pending` at it instead of rolling it out (modelops.retrain.run). A person then approves it, which starts
the same rollout an automatic decision starts (modelops.retrain.run.start_rollout: candidate alias, stack update), or
rejects it. Both clear `pending` and record who decided in the registry history.

A newer winner replaces an older pending one (its retrain_decision event says which); approving names the version,
so an approval of the replaced one fails instead of rolling out something nobody reviewed.
"""

from __future__ import annotations

import getpass
import logging
from typing import Any

from ..adapters.notify import NullNotifier
from ..core.errors import ConflictError, NotFoundError
from ..ports import Deployer, Notifier
from ..registry import CHAMPION, PENDING, Registry
from .finalize import start_rollout

log = logging.getLogger(__name__)


def caller_identity(sts: Any = None) -> str:
    """Who is approving: the AWS caller's ARN when credentials are available, else the local user name."""
    try:
        if sts is None:
            from ..adapters import aws

            sts = aws.client("sts", timeout=3, max_attempts=1)
        return str(sts.get_caller_identity()["Arn"])
    except Exception:  # no credentials, no network: the local user is still an answer
        try:
            return f"local:{getpass.getuser()}"
        except Exception:
            return "local:unknown"


def check_pending(registry: Registry, name: str, version: str) -> str:
    """The pending version, which must be `version`."""
    pending = registry.get_alias(name, PENDING).version
    if pending is None:
        raise NotFoundError(f"model '{name}' has no candidate waiting for approval")
    if pending != version:
        raise ConflictError(f"{name}/{version} is not the candidate waiting for approval ({pending} is)")
    return pending


def approve(
    registry: Registry,
    name: str,
    version: str,
    deployer: Deployer,
    *,
    approver: str,
    notifier: Notifier | None = None,
) -> dict[str, Any]:
    """Roll the pending candidate out, exactly as an automatic decision would, and record the approval."""
    check_pending(registry, name, version)
    running = deployer.in_flight()
    if running:
        raise ConflictError(f"rollout {running} is still in progress; approve {version} after it ends")
    deployer.check()
    champion = registry.resolve(name, CHAMPION)
    reason = f"approved by {approver}"
    rollout = start_rollout(
        registry,
        name,
        deployer,
        version,
        champion,
        reason=reason,
        trigger="approval",
        description=f"approved: {name} {champion} -> {version}",
    )
    registry.clear_alias(name, PENDING, expected=version, reason=reason, trigger="approval")
    detail = {
        "outcome": "approved",
        "version": version,
        "champion": champion,
        "approved_by": approver,
        "deployment_id": rollout.deployment_id,
        "reason": f"{reason}; {rollout.mechanism} rollout {rollout.deployment_id} started",
    }
    registry.record(name, "approval", detail)
    _announce(notifier, f"modelops: {name} {version} approved, rolling out", detail)
    return detail


def reject(
    registry: Registry,
    name: str,
    version: str,
    *,
    reason: str,
    approver: str,
    notifier: Notifier | None = None,
) -> dict[str, Any]:
    """Clear the pending candidate; it stays registered but is never rolled out by this decision."""
    check_pending(registry, name, version)
    registry.clear_alias(
        name, PENDING, expected=version, reason=f"rejected by {approver}: {reason}", trigger="approval"
    )
    detail = {"outcome": "rejected", "version": version, "rejected_by": approver, "reason": reason}
    registry.record(name, "approval", detail)
    _announce(notifier, f"modelops: {name} {version} rejected", detail)
    return detail


def _announce(notifier: Notifier | None, subject: str, detail: dict[str, Any]) -> None:
    try:
        (notifier or NullNotifier()).publish(subject, detail)
    except Exception:
        log.exception("could not announce the approval decision")
