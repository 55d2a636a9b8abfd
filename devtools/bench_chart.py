"""Benchmark summary chart: every bench/results/*.json row as its measured value divided by its target.

A bar ending left of 1.0 meets a "<=" target, right of 1.0 meets a ">=" target; the colour is the row's own
`ok`, so the chart never disagrees with the table that `make bench` prints.

    python -m devtools.bench_chart [--results bench/results] [--out docs/bench.png]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "bench.png"
TARGET = re.compile(r"(<=|≤|<|>=|≥|>|==|=)?\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*(%|x|×)?", re.I)
CLIP = 3.0  # bars longer than this many targets are cut, with the real ratio written next to them


@dataclass
class Row:
    bench: str
    case: str
    metric: str
    value: float
    target: str
    ok: bool | None  # None: informational row
    ratio: float | None  # value / target number, None when the target has no number
    at_most: bool | None  # True for "<=" targets (smaller is better), False for ">=", None for "= n"


def parse_target(target: object, value: float) -> tuple[float, bool | None] | None:
    """(target number, True for an upper bound, False for a lower bound, None for an exact value) or None.

    "75%" is read as 0.75 when the value is a fraction."""
    match = TARGET.search(str(target or ""))
    if not match:
        return None
    op, number, unit = match.groups()
    bound = float(number)
    if unit == "%" and abs(value) <= 1.5 < bound:
        bound /= 100
    if not bound:
        return None
    return bound, (None if op in ("=", "==") else op in ("<=", "≤", "<"))


def load_rows(results: Path = RESULTS) -> list[Row]:
    rows = []
    for path in sorted(results.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a benchmark that crashed mid-write is reported by run_all, not here
        for raw in data.get("rows", []):
            if not isinstance(raw.get("value"), int | float) or isinstance(raw.get("value"), bool):
                continue
            value = float(raw["value"])
            parsed = parse_target(raw.get("target"), value)
            rows.append(
                Row(
                    bench=str(data.get("title", path.stem)),
                    case=str(raw.get("case", "")),
                    metric=str(raw.get("metric", "")),
                    value=value,
                    target=str(raw.get("target", "")),
                    ok=None if raw.get("ok") is None else bool(raw["ok"]),
                    ratio=value / parsed[0] if parsed else None,
                    at_most=parsed[1] if parsed else None,
                )
            )
    return rows


def draw(results: Path = RESULTS, out: Path = OUT) -> Path | None:
    """Write the chart; None when there are no results to draw."""
    rows = [r for r in load_rows(results) if r.ratio is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    benches = list(dict.fromkeys(r.bench for r in rows))
    heights = [sum(r.bench == b for r in rows) for b in benches]
    fig, axes = plt.subplots(
        len(benches),
        1,
        figsize=(11, 1.2 + 0.42 * len(rows) + 0.75 * len(benches)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    fig.suptitle("Benchmarks: measured value ÷ target", fontsize=14, fontweight="bold", x=0.02, ha="left")
    fig.text(
        0.02,
        0.985 - 0.35 / fig.get_figheight(),
        "green meets its target, red misses it; shaded side of 1.0 is the good side",
        fontsize=9,
        color="#545B64",
        va="top",
    )
    xmax = min(max(max(r.ratio for r in rows) * 1.15, 1.6), CLIP * 1.1)
    for ax, bench in zip(axes[:, 0], benches, strict=True):
        mine = [r for r in rows if r.bench == bench]
        ys = list(range(len(mine)))[::-1]
        for y, row in zip(ys, mine, strict=True):
            if row.at_most is not None:
                good = (0.0, 1.0) if row.at_most else (1.0, xmax * 1.45)
                ax.add_patch(Rectangle((good[0], y - 0.42), good[1] - good[0], 0.84, color="#E3F1DF", zorder=0))
            shown = min(row.ratio, CLIP)
            colour = "#8D99A6" if row.ok is None else ("#3A8F3A" if row.ok else "#C8372D")
            ax.barh(y, shown, height=0.55, color=colour, zorder=2)
            value = f"{row.value:,.0f}" if abs(row.value) >= 1000 else f"{row.value:.3g}"
            note = f"{value} {row.metric}  (target {row.target})"
            if row.ratio > CLIP:
                note = f"{row.ratio:.1f}× target — " + note
            ax.text(
                shown + xmax * 0.015,
                y,
                note,
                va="center",
                fontsize=8.2,
                color="#232F3E",
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            )
        ax.axvline(1.0, color="#232F3E", linewidth=1.1, linestyle="--", zorder=3)
        ax.set_yticks(ys, [r.case for r in mine], fontsize=8.8)
        ax.set_xlim(0, xmax * 1.45)  # room for the notes right of the bars
        ax.set_ylim(-0.6, len(mine) - 0.4)
        ax.set_title(bench, fontsize=10.5, loc="left", fontweight="bold", color="#232F3E")
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="x", labelsize=8)
    axes[-1, 0].set_xlabel("value ÷ target  (1.0 = exactly on target)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985 - 0.55 / fig.get_figheight()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, facecolor="white", metadata={"Software": None})
    plt.close(fig)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench_chart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of <bench>.json files")
    parser.add_argument("--out", type=Path, default=OUT, help="PNG to write")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"no results folder {args.results}: run `make bench` first", file=sys.stderr)
        return 2
    written = draw(args.results, args.out)
    if written is None:
        print(f"no benchmark rows with a numeric target in {args.results}: run `make bench` first", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
