"""The monitor function's objects from its environment: the registry, the data store its window is read from,
the window's length and its bound, and the shadow candidate.

Environment:
    MODELOPS_REGISTRY, MODELOPS_MODEL_NAME   the registry and the model
    MODELOPS_DATA_URI                        s3://bucket/prefix (or a local directory) of captures and feedback
    MODELOPS_MONITOR_WINDOW_HOURS            the sliding window (default 24)
    MODELOPS_WINDOW_MAX_RECORDS              newest captured requests / feedback records read per window
    MODELOPS_SHADOW_VERSION                  the candidate a scheduled shadow test scores
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.objectstore import open_location
from ..capture.partitions import DEFAULT_MAX_RECORDS
from ..core import env as settings
from ..ports import ObjectStore
from ..registry import Registry


@dataclass
class MonitorWiring:
    registry: Registry
    name: str
    store: ObjectStore
    prefix: str
    window_seconds: float
    max_records: int
    shadow_version: str


def build(env: Mapping[str, str] | None = None, **overrides: Any) -> MonitorWiring:
    """Read on every invocation (the function is scheduled; settings are cheap). `registry=` or `store=` (with
    `prefix=`) replace what the environment would give."""
    registry = overrides.pop("registry", None) or Registry(settings.required("MODELOPS_REGISTRY", env=env))
    name = settings.required("MODELOPS_MODEL_NAME", env=env)
    window_seconds = settings.number("MODELOPS_MONITOR_WINDOW_HOURS", 24.0, env=env) * 3600
    if "store" in overrides:
        store, prefix = overrides.pop("store"), overrides.pop("prefix", "")
    else:
        store, prefix = open_location(settings.required("MODELOPS_DATA_URI", env=env), registry.s3)
    values: dict[str, Any] = dict(
        registry=registry,
        name=name,
        store=store,
        prefix=prefix,
        window_seconds=window_seconds,
        max_records=settings.integer("MODELOPS_WINDOW_MAX_RECORDS", DEFAULT_MAX_RECORDS, minimum=1, env=env),
        shadow_version=settings.text("MODELOPS_SHADOW_VERSION", env=env),
    )
    return MonitorWiring(**{**values, **overrides})
