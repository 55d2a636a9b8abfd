"""Batch settings from environment variables, with explicit overrides (CLI flags, event fields)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ModelOpsError
from ..names import check_model_name

DEFAULT_CHUNK_ROWS = 100_000
DEFAULT_MAX_LINE_BYTES = 4 * 1024**2  # a longer input line is rejected as a row, never held in memory


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, value: str | None, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ModelOpsError(f"{name}: expected a whole number, got '{value}'") from None
    if number <= 0:
        raise ModelOpsError(f"{name}: must be positive, got {number}")
    return number


def _count(name: str, value: str | None, default: int) -> int:
    """Like _int, but 0 is allowed."""
    return 0 if value is not None and value.strip() == "0" else _int(name, value, default)


@dataclass(frozen=True)
class BatchConfig:
    bucket: str
    input_prefix: str = "batch/input"
    output_prefix: str = "batch/output"
    upstream_marker: str = "{date}/_SUCCESS"  # relative to input_prefix; empty = no upstream dependency
    require_previous: bool = False
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    id_columns: tuple[str, ...] = ("id",)
    timezone: str = "UTC"
    registry: str | None = None
    model_name: str | None = None
    model_version: str | None = None  # pinned version; otherwise the registry's champion
    inline_max_bytes: int = 1024**3
    part_bytes: int = 256 * 1024**2
    prefetch: int = 1  # chunks parsed ahead in a background thread; 0 = parse and score in turn
    score_workers: int = 0  # threads scoring chunks side by side; 0 = one per available CPU
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    lease_seconds: int = 30 * 60  # a run's hold on its date (batch.lease); longer than Lambda's 15 minutes

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> BatchConfig:
        env = dict(os.environ if env is None else env)
        bucket = env.get("MODELOPS_DATA_BUCKET", "")
        ids = env.get("MODELOPS_BATCH_ID_COLUMNS")
        config = cls(
            bucket=bucket,
            input_prefix=env.get("MODELOPS_BATCH_INPUT_PREFIX", cls.input_prefix).strip("/"),
            output_prefix=env.get("MODELOPS_BATCH_OUTPUT_PREFIX", cls.output_prefix).strip("/"),
            upstream_marker=env.get("MODELOPS_BATCH_UPSTREAM_MARKER", cls.upstream_marker),
            require_previous=_flag(env.get("MODELOPS_BATCH_REQUIRE_PREVIOUS")),
            chunk_rows=_int("MODELOPS_BATCH_CHUNK_ROWS", env.get("MODELOPS_BATCH_CHUNK_ROWS"), DEFAULT_CHUNK_ROWS),
            id_columns=tuple(c.strip() for c in ids.split(",") if c.strip()) if ids is not None else cls.id_columns,
            timezone=env.get("MODELOPS_BATCH_TIMEZONE", cls.timezone) or "UTC",
            registry=env.get("MODELOPS_REGISTRY") or None,
            model_name=env.get("MODELOPS_MODEL_NAME") or None,
            model_version=env.get("MODELOPS_MODEL_VERSION") or None,
            inline_max_bytes=_int(
                "MODELOPS_BATCH_INLINE_MAX_BYTES", env.get("MODELOPS_BATCH_INLINE_MAX_BYTES"), cls.inline_max_bytes
            ),
            part_bytes=_int("MODELOPS_BATCH_PART_BYTES", env.get("MODELOPS_BATCH_PART_BYTES"), cls.part_bytes),
            prefetch=_count("MODELOPS_BATCH_PREFETCH", env.get("MODELOPS_BATCH_PREFETCH"), cls.prefetch),
            score_workers=_count(
                "MODELOPS_BATCH_SCORE_WORKERS", env.get("MODELOPS_BATCH_SCORE_WORKERS"), cls.score_workers
            ),
            max_line_bytes=_int(
                "MODELOPS_BATCH_MAX_LINE_BYTES", env.get("MODELOPS_BATCH_MAX_LINE_BYTES"), cls.max_line_bytes
            ),
            lease_seconds=_int(
                "MODELOPS_BATCH_LEASE_SECONDS", env.get("MODELOPS_BATCH_LEASE_SECONDS"), cls.lease_seconds
            ),
        )
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        config.check()
        return config

    def check(self) -> None:
        if not self.bucket:
            raise ModelOpsError("no data bucket: set MODELOPS_DATA_BUCKET (or pass --bucket)")
        if not self.registry:
            raise ModelOpsError("no model registry: set MODELOPS_REGISTRY (or pass --registry)")
        if not self.model_name:
            raise ModelOpsError("no model: set MODELOPS_MODEL_NAME (or pass --model)")
        check_model_name(self.model_name)
        if self.upstream_marker and "{date}" not in self.upstream_marker:
            raise ModelOpsError(f"MODELOPS_BATCH_UPSTREAM_MARKER '{self.upstream_marker}' must contain {{date}}")

    # ---- keys ---------------------------------------------------------------------------
    def input_folder(self, run_date: str) -> str:
        return f"{self.input_prefix}/{run_date}/".lstrip("/")

    def output_folder(self, run_date: str) -> str:
        return f"{self.output_prefix}/{run_date}/".lstrip("/")

    def manifest_key(self, run_date: str) -> str:
        return self.output_folder(run_date) + "_manifest.json"

    def lease_key(self, run_date: str) -> str:
        return self.output_folder(run_date) + "_lease.json"

    def attempt_folder(self, run_date: str, attempt: str) -> str:
        return self.output_folder(run_date) + f"_attempts/{attempt}/"

    def marker_key(self, run_date: str) -> str | None:
        if not self.upstream_marker:
            return None
        return f"{self.input_prefix}/{self.upstream_marker.format(date=run_date)}".lstrip("/")
