"""Dependencies of a run: the upstream's completion marker, and optionally the previous day's run."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import BatchConfig
from .dates import previous_day
from .store import ObjectStore


@dataclass
class Readiness:
    ready: bool
    waiting_for: list[str] = field(default_factory=list)

    def message(self) -> str:
        return "ready" if self.ready else "waiting for " + "; ".join(self.waiting_for)


def check(config: BatchConfig, store: ObjectStore, run_date: str) -> Readiness:
    waiting: list[str] = []
    marker = config.marker_key(run_date)
    if marker and not store.exists(marker):
        waiting.append(f"upstream marker {store.uri(marker)}")
    if config.require_previous:
        previous = previous_day(run_date)
        if not store.exists(config.manifest_key(previous)):
            waiting.append(f"previous run {previous} ({store.uri(config.manifest_key(previous))})")
    return Readiness(not waiting, waiting)
