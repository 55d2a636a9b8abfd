"""Times: epoch seconds as UTC datetimes and ISO text, and the times users type (ISO, epoch, or an age like 24h)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .errors import InputError


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def iso(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any, field_name: str = "since") -> float:
    """Epoch seconds from epoch seconds/milliseconds, an ISO date or time, or a relative '24h' / '7d' / '30m'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value).strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(text) > 1 and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"'{text}' is not a time: use ISO (2026-01-31 or 2026-01-31T12:00:00Z) or a relative "
            "age like 30m, 24h or 7d",
            field=field_name,
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def iso_seconds(ts: float) -> str:
    """ISO text to the second, as leases, locks and history events show a time."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
