"""Label tokens: the predict answer's proof that a request was served, which POST /feedback requires.

A token is `<payload>.<signature>`, both unpadded base64url. The payload is the compact JSON list
    [1, request_id, entity_id or null, rows, model_version, served_at (epoch seconds, integer)]
and the signature is HMAC-SHA256 of the payload's base64url text under a secret only the predict and
feedback functions can read (modelops.capture.labelsecret). A token therefore binds a label to one served request:
its rows, the entity it was served for (if any), the model version and the time it was served.

    token = issue(secret, request_id=..., entity_id=..., rows=..., model_version=..., served_at=...)
    grant = verify(token, secret, window_seconds=72 * 3600)   # LabelGrant, or InputError (field label_token)

Errors (InputError, field "label_token"): `missing_field` (no token), `malformed_label_token` (not this
format), `invalid_label_token` (signature does not match: forged or altered; status 403), `label_expired`
(older than the window, or issued in the future beyond a small clock skew).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError

FORMAT_VERSION = 1
FIELD = "label_token"
MAX_TOKEN_LENGTH = 2048  # ids are at most 256 characters each; anything longer is not a token
CLOCK_SKEW_SECONDS = 300
INVALID = "invalid_label_token"


@dataclass(frozen=True)
class LabelGrant:
    """What a verified token says was served."""

    request_id: str
    entity_id: str | None
    rows: int
    model_version: str
    served_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def issue(
    secret: bytes,
    *,
    request_id: str,
    entity_id: str | None,
    rows: int,
    model_version: str,
    served_at: float | None = None,
) -> str:
    at = int(time.time() if served_at is None else served_at)
    body = [
        FORMAT_VERSION,
        str(request_id),
        None if entity_id is None else str(entity_id),
        int(rows),
        str(model_version),
        at,
    ]
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
    return f"{payload}.{_sign(secret, payload)}"


def _malformed(why: str) -> InputError:
    return InputError(
        f"'{FIELD}' is malformed: {why}; send the label_token of the predict answer", FIELD, "malformed_label_token"
    )


def verify(token: Any, secret: bytes, *, window_seconds: float, now: float | None = None) -> LabelGrant:
    if token is None:
        raise InputError(
            f"'{FIELD}' is required: send the label_token that POST /predict returned with the prediction",
            FIELD,
            "missing_field",
        )
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii():
        raise _malformed(f"expected a string of at most {MAX_TOKEN_LENGTH} characters")
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or "." in signature:
        raise _malformed("expected <payload>.<signature>")
    if not hmac.compare_digest(_sign(secret, payload).encode(), signature.encode()):
        raise InputError(f"'{FIELD}' was not issued by this API (the signature does not match)", FIELD, INVALID)
    try:  # signed by us, so this only fails for a token of another format version
        body = json.loads(_unb64(payload))
        version, request_id, entity_id, rows, model_version, served_at = body
    except (binascii.Error, ValueError, TypeError):
        raise _malformed("unreadable payload") from None
    if version != FORMAT_VERSION:
        raise _malformed(f"unknown token version {version!r}")
    grant = LabelGrant(
        str(request_id), None if entity_id is None else str(entity_id), int(rows), str(model_version), int(served_at)
    )
    now = time.time() if now is None else now
    if now - grant.served_at > window_seconds:
        hours = window_seconds / 3600
        raise InputError(
            f"'{FIELD}' has expired: labels are accepted for {hours:g} hours after the prediction was served",
            FIELD,
            "label_expired",
        )
    if grant.served_at - now > CLOCK_SKEW_SECONDS:
        raise InputError(f"'{FIELD}' was issued in the future", FIELD, "label_expired")
    return grant
