"""The logical run date: the day whose data a run scores (yesterday, as in daily ETL)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.errors import InputError


def parse_run_date(text: str, field: str = "run_date") -> str:
    try:
        return dt.date.fromisoformat(str(text)).isoformat() if len(str(text)) == 10 else _bad(text, field)
    except ValueError:
        return _bad(text, field)


def _bad(text: object, field: str) -> str:
    raise InputError(f"{field}: '{text}' is not a date in YYYY-MM-DD form", field=field)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"time zone '{name}' is unknown (use an IANA name such as Asia/Shanghai)", field="timezone"
        ) from None


def logical_run_date(now: dt.datetime, timezone: str) -> str:
    """The calendar day before `now` as seen in `timezone` (02:00 Asia/Shanghai on the 2nd -> the 1st)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return (now.astimezone(zone(timezone)).date() - dt.timedelta(days=1)).isoformat()


def parse_event_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InputError(f"time: '{text}' is not an ISO-8601 timestamp", field="time") from None


def previous_day(run_date: str) -> str:
    return (dt.date.fromisoformat(run_date) - dt.timedelta(days=1)).isoformat()
