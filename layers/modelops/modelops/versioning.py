"""Model version ids: unique and sortable as plain strings (UTC timestamp, then random suffix)."""

import re
import secrets
from datetime import UTC, datetime

VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_version(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def is_version(text: str) -> bool:
    return bool(VERSION_PATTERN.match(text))


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
