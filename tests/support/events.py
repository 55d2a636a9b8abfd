"""Events shaped as AWS sends them: the files in events/ (the ones `sam local invoke` uses), read fresh each time."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    """events/<name>.json, a new copy a test may change."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def feedback_event_with_body(body: bytes) -> dict[str, Any]:
    """events/feedback.json (a REST API proxy event for POST /feedback) carrying `body`, base64-encoded."""
    event = load_event("feedback")
    event["body"] = base64.b64encode(body).decode()
    return event
