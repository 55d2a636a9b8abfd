"""Turn scheduler / Step Functions / manual events into a run request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..core import env as settings
from ..core.errors import InputError
from .dates import logical_run_date, parse_event_time, parse_run_date

DEFAULT_WAIT_ATTEMPTS = 12
DEFAULT_WAIT_SECONDS = 900


@dataclass(frozen=True)
class RunRequest:
    run_date: str
    force: bool
    attempt: int
    max_attempts: int
    wait_seconds: int


def _positive(event: dict[str, Any], name: str, default: int) -> int:
    value = event.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name}: expected a positive whole number, got {value!r}", field=name)
    return value


def run_request(event: dict[str, Any], timezone: str, now: dt.datetime | None = None) -> RunRequest:
    """run_date (YYYY-MM-DD) overrides; otherwise the day before the scheduled time in `timezone`.

    The scheduled time comes from "scheduled_time" (EventBridge Scheduler's <aws.scheduler.scheduled-time>)
    or "time" (an EventBridge scheduled event); without either, the current time.
    """
    if not isinstance(event, dict):
        raise InputError("event: expected a JSON object", field="event")
    if event.get("run_date"):
        run_date = parse_run_date(event["run_date"])
    else:
        stamp = event.get("scheduled_time") or event.get("time")
        when = parse_event_time(stamp) if stamp else (now or dt.datetime.now(dt.UTC))
        run_date = logical_run_date(when, timezone)
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InputError(f"force: expected true or false, got {force!r}", field="force")
    return RunRequest(
        run_date=run_date,
        force=force,
        attempt=_positive(event, "attempt", 1),
        max_attempts=_positive(
            event, "max_attempts", settings.integer("MODELOPS_BATCH_WAIT_ATTEMPTS", DEFAULT_WAIT_ATTEMPTS, minimum=1)
        ),
        wait_seconds=_positive(
            event, "wait_seconds", settings.integer("MODELOPS_BATCH_WAIT_SECONDS", DEFAULT_WAIT_SECONDS, minimum=1)
        ),
    )
