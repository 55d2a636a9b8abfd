"""Model version ids: unique and sortable as plain strings (UTC time to the millisecond, then a random suffix)."""

import re
import secrets
import threading
from datetime import UTC, datetime, timedelta

VERSION_PATTERN = re.compile(r"^\d{8}T\d{9}Z-[0-9a-f]{6}$")
_last = datetime.min.replace(tzinfo=UTC)
_lock = threading.Lock()


def new_version(now: datetime | None = None) -> str:
    """A new id; ids made in one process are strictly increasing even within one millisecond."""
    global _last
    with _lock:
        now = now or datetime.now(UTC)
        if now <= _last:
            now = _last + timedelta(milliseconds=1)
        _last = now
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + secrets.token_hex(3)


def is_version(text: str) -> bool:
    return bool(VERSION_PATTERN.match(text))


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
