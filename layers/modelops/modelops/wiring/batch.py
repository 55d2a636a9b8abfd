"""The batch functions' runner from their environment: the settings (modelops.batch.config.BatchConfig, whose
docstring lists the variables), and the data store and registry they name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..batch.config import BatchConfig
from ..batch.run import BatchRunner
from ..ports import ObjectStore
from ..registry import Registry


def build(
    env: Mapping[str, str] | None = None,
    *,
    store: ObjectStore | None = None,
    registry: Registry | None = None,
    **settings: Any,
) -> BatchRunner:
    """`store=` and `registry=` replace what the settings name; any other keyword replaces one setting."""
    return BatchRunner(BatchConfig.from_env(dict(env) if env is not None else None, **settings), store, registry)
