"""Run every bench/bench_*.py in turn (each in its own process) and print one summary table.

Each benchmark writes bench/results/<name>.json shaped as
  {"title": str, "rows": [{"case": str, "metric": str, "value": float, "target": str, "ok": bool}, ...]}
Ratios are measured side by side in the same run, so machine noise cancels out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main(argv: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    only = set(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not only or p.stem.removeprefix("bench_") in only)
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"   ({time.perf_counter() - t0:.0f} s, exit {rc})", flush=True)
        if rc != 0:
            failed.append(script.stem)
    rows = []
    for script in scripts:
        result = RESULTS / f"{script.stem.removeprefix('bench_')}.json"
        if result.exists():
            data = json.loads(result.read_text())
            rows += [{"bench": data.get("title", script.stem), **r} for r in data["rows"]]
    if rows:
        print()
        widths = {
            k: max(len(k), *(len(_fmt(r.get(k))) for r in rows))
            for k in ("bench", "case", "metric", "value", "target", "ok")
        }
        print("  ".join(k.upper().ljust(w) for k, w in widths.items()))
        for r in rows:
            print("  ".join(_fmt(r.get(k)).ljust(w) for k, w in widths.items()))
        _draw_chart()
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _draw_chart() -> None:
    """docs/bench.png from every result so far; skipped when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    sys.path.insert(0, str(HERE.parent))
    from devtools.bench_chart import draw

    chart = draw(RESULTS, HERE.parent / "docs" / "bench.png")
    if chart:
        print(f"chart: {chart.relative_to(HERE.parent)}")


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.3g}"
    return "" if v is None else str(v)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
