"""HTTP errors of the prediction API: one status, a machine-readable code, a message naming the field."""

from __future__ import annotations

from typing import Any

from ..core.errors import InputError

MAX_TEXT = 200  # client-chosen names can be huge; never echo more than this back


class ApiError(Exception):
    """An answer other than 200, rendered as {"error": {"code", "message", "field"}}."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = _clip(message)
        self.field = _clip(field) if field is not None else None
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def from_input_error(exc: InputError) -> ApiError:
    status = 413 if exc.code == "too_many_rows" else 400
    return ApiError(status, exc.code, str(exc), exc.field)


def model_unavailable(retry_after: int) -> ApiError:
    return ApiError(
        503,
        "model_unavailable",
        "the model is not loaded yet or could not be loaded; retry later",
        headers={"Retry-After": str(max(1, retry_after))},
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
