"""Tables and JSON for CLI output."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    if title:
        print(title)
    if not rows:
        print("  (none)")
        return
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def key_values(pairs: dict[str, Any]) -> None:
    width = max(len(k) for k in pairs) if pairs else 0
    for k, v in pairs.items():
        print(f"{k.ljust(width)}  {_fmt(v)}")


def registered(result: dict[str, Any], metrics: dict[str, Any], as_json: bool) -> int:
    """What `train` and `models import` print for the version they registered: JSON, or its fields then
    one line per metric."""
    if as_json:
        emit_json(result)
    else:
        key_values({k: v for k, v in result.items() if k != "metrics"})
        key_values({f"metric.{k}": v for k, v in metrics.items()})
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def progress(label: str, total_steps: int):
    """A minimal step progress line on stderr: [2/4] evaluate."""
    state = {"n": 0}

    def step(name: str) -> None:
        state["n"] += 1
        if sys.stderr.isatty():
            print(f"\r[{state['n']}/{total_steps}] {label}: {name}   ", end="", file=sys.stderr, flush=True)
            if state["n"] >= total_steps:
                print(file=sys.stderr)
        else:
            print(f"[{state['n']}/{total_steps}] {label}: {name}", file=sys.stderr)

    return step


class RowProgress:
    """Live rows-scored counter on stderr for a terminal (one line, rewritten in place); silent otherwise."""

    def __init__(self, label: str):
        import time

        self.label = label
        self.rows = self.rejected = self.chunks = 0
        self._clock = time.monotonic
        self._started = self._clock()
        self.live = sys.stderr.isatty()

    def update(self, chunk: Any) -> None:
        self.rows += len(chunk.matrix)
        self.rejected += len(chunk.rejected)
        self.chunks += 1
        if self.live:
            print(f"\r{self.line()}   ", end="", file=sys.stderr, flush=True)

    def line(self) -> str:
        seconds = max(self._clock() - self._started, 1e-9)
        return (
            f"{self.label}: {self.rows:,} rows scored, {self.rejected:,} rejected, {self.chunks} chunks, "
            f"{self.rows / seconds:,.0f} rows/s"
        )

    def done(self) -> None:
        if self.live and self.chunks:
            print(file=sys.stderr)
