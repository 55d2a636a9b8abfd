"""The events that drive the retrain function: an alarm or a schedule starts a run, the end of a stack
update finalizes a rollout, anything else is ignored with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Stack statuses that end an update: its rollout succeeded, or CloudFormation rolled it back.
SUCCEEDED_STATES = ("UPDATE_COMPLETE",)
FAILED_STATES = ("UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED")


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
