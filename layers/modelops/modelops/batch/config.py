"""Batch settings from environment variables, with explicit overrides (CLI flags, event fields)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core import env as settings
from ..core.errors import ModelOpsError
from ..core.names import check_model_name

DEFAULT_CHUNK_ROWS = 100_000
DEFAULT_MAX_LINE_BYTES = 4 * 1024**2  # a longer input line is rejected as a row, never held in memory


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
    max_concurrency: int = 16  # parts of a fan-out scored side by side (the Distributed Map's MaxConcurrencyPath)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> BatchConfig:
        env = dict(settings.mapping(env))
        ids = settings.raw("MODELOPS_BATCH_ID_COLUMNS", env)
        config = cls(
            bucket=settings.text("MODELOPS_DATA_BUCKET", env=env),
            input_prefix=settings.text("MODELOPS_BATCH_INPUT_PREFIX", cls.input_prefix, env).strip("/"),
            output_prefix=settings.text("MODELOPS_BATCH_OUTPUT_PREFIX", cls.output_prefix, env).strip("/"),
            upstream_marker=settings.text("MODELOPS_BATCH_UPSTREAM_MARKER", cls.upstream_marker, env),
            require_previous=settings.flag("MODELOPS_BATCH_REQUIRE_PREVIOUS", False, env),
            chunk_rows=settings.integer("MODELOPS_BATCH_CHUNK_ROWS", DEFAULT_CHUNK_ROWS, minimum=1, env=env),
            max_concurrency=settings.integer(
                "MODELOPS_BATCH_MAX_CONCURRENCY", cls.max_concurrency, minimum=1, maximum=10000, env=env
            ),
            id_columns=tuple(c.strip() for c in ids.split(",") if c.strip()) if ids is not None else cls.id_columns,
            timezone=settings.text("MODELOPS_BATCH_TIMEZONE", cls.timezone, env) or "UTC",
            registry=settings.text("MODELOPS_REGISTRY", env=env) or None,
            model_name=settings.text("MODELOPS_MODEL_NAME", env=env) or None,
            model_version=settings.text("MODELOPS_MODEL_VERSION", env=env) or None,
            inline_max_bytes=settings.integer(
                "MODELOPS_BATCH_INLINE_MAX_BYTES", cls.inline_max_bytes, minimum=1, env=env
            ),
            part_bytes=settings.integer("MODELOPS_BATCH_PART_BYTES", cls.part_bytes, minimum=1, env=env),
            prefetch=settings.integer("MODELOPS_BATCH_PREFETCH", cls.prefetch, minimum=0, env=env),
            score_workers=settings.integer("MODELOPS_BATCH_SCORE_WORKERS", cls.score_workers, minimum=0, env=env),
            max_line_bytes=settings.integer("MODELOPS_BATCH_MAX_LINE_BYTES", cls.max_line_bytes, minimum=1, env=env),
            lease_seconds=settings.integer("MODELOPS_BATCH_LEASE_SECONDS", cls.lease_seconds, minimum=1, env=env),
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
