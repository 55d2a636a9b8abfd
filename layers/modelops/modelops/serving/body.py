"""Bounded JSON request bodies: the size limits and the parser shared by POST /predict and POST /feedback.

Imports nothing beyond orjson (and modelops.core.env, standard library only): the feedback function runs without the ML runtime layer (no numpy).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..core import env as settings
from .errors import ApiError

DEFAULT_MAX_ROWS = 1000
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        return cls(
            max_rows=settings.integer("MODELOPS_MAX_ROWS", DEFAULT_MAX_ROWS, minimum=1, env=env),
            max_body_bytes=settings.integer("MODELOPS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1, env=env),
        )


def read_json(body: str | bytes | None, is_base64: bool, max_bytes: int) -> Any:
    """Parse a bounded JSON body. Size is checked before anything else touches it; orjson
    refuses nesting deeper than 1024 levels, so a hostile body fails fast."""
    if body is None or body == "" or body == b"":
        raise ApiError(400, "malformed_json", "request body is empty: expected a JSON object", field="body")
    if is_base64:
        if len(body) > (max_bytes * 4) // 3 + 4:
            raise _too_large(max_bytes)
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "malformed_body", "request body is not valid base64", field="body") from None
    size = len(body)
    # surrogatepass: a str body may hold a lone surrogate (a JSON event's "\ud800"); orjson refuses it below
    if size > max_bytes or (
        isinstance(body, str) and not body.isascii() and len(body.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise _too_large(max_bytes)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "depth limit" in text:
            raise ApiError(400, "too_deep", "request body is nested too deeply", field="body") from None
        if "infinity" in text:
            raise ApiError(
                400, "not_finite", f"request body has a number too large to represent: {text}", field="body"
            ) from None
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {text}", field="body") from None


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body exceeds {max_bytes} bytes", field="body")
