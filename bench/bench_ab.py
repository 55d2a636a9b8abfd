"""A/B overhead on the predict path: the same POST /predict handled with no experiment, and with an
experiment running (challenger pinned, 10 % split in a Powertools feature-flags document read from a
local file store; in AWS the same document comes from AppConfig through Powertools' cache).

Rows: median handler latency (1-row request, LogisticRegression pipeline) without and with the
experiment, their ratio, and the median cost of one sticky assignment (hash + flag evaluation).
Both handlers are timed interleaved in one process so machine noise cancels.
Writes bench/results/ab.json (see bench/run_all.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_RATIO = 1.2
TARGET_ASSIGN_US = 50.0
ROUNDS, BUDGET_S = 3000, 15.0


def main() -> int:
    from modelops.experiments import assignment as experiment
    from modelops.model.artifact import write_artifact
    from modelops.model.dataset import load_builtin
    from modelops.model.training import train
    from modelops.wiring.predict import build as build_gateway

    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    dataset = load_builtin("breast_cancer")
    a = train(dataset, "breast-cancer")
    b = train(dataset, "breast-cancer", seed=7)
    write_artifact(tmp / "a", a.estimator, a.manifest, a.golden)
    write_artifact(tmp / "b", b.estimator, b.manifest, b.golden)
    flags = tmp / "flags.json"
    flags.write_text(json.dumps(experiment.flag_document(10)))
    base = {"MODELOPS_MODEL_DIR": str(tmp / "a"), "MODELOPS_MODEL_VERSION": a.manifest.version}
    off = build_gateway(base)
    on = build_gateway(
        {
            **base,
            "MODELOPS_CHALLENGER_VERSION": b.manifest.version,
            "MODELOPS_CHALLENGER_DIR": str(tmp / "b"),
            "MODELOPS_AB_CONFIG_FILE": str(flags),
        }
    )
    assert off.experiment is None and on.experiment is not None
    row = a.golden["instances"][0]

    def event(i: int) -> dict:
        return {
            "httpMethod": "POST",
            "path": "/predict",
            "headers": {"Content-Type": "application/json", "x-entity-id": f"customer-{i}"},
            "requestContext": {"requestId": f"r{i}"},
            "body": json.dumps({"instances": [row]}),
            "isBase64Encoded": False,
        }

    t_off, t_on, t_assign = [], [], []
    sink = io.StringIO()
    deadline = time.perf_counter() + BUDGET_S
    with contextlib.redirect_stdout(sink):
        for i in range(ROUNDS):
            ev = event(i)
            s = time.perf_counter()
            off.handle(ev)
            t_off.append(time.perf_counter() - s)
            s = time.perf_counter()
            on.handle(ev)
            t_on.append(time.perf_counter() - s)
            s = time.perf_counter()
            on.experiment.assign(ev["headers"], None)
            t_assign.append(time.perf_counter() - s)
            if i % 100 == 0:
                sink.seek(0)
                sink.truncate()
                if time.perf_counter() > deadline:
                    break
    m_off, m_on = statistics.median(t_off) * 1e6, statistics.median(t_on) * 1e6
    assign_us = statistics.median(t_assign) * 1e6
    ratio = m_on / m_off
    rows = [
        {"case": "lr 1 row, no experiment", "metric": "median us", "value": round(m_off, 1), "target": "-", "ok": True},
        {"case": "lr 1 row, A/B 10%", "metric": "median us", "value": round(m_on, 1), "target": "-", "ok": True},
        {
            "case": "A/B on / off",
            "metric": "ratio",
            "value": round(ratio, 3),
            "target": f"<= {TARGET_RATIO}",
            "ok": ratio <= TARGET_RATIO,
        },
        {
            "case": "sticky assignment",
            "metric": "median us",
            "value": round(assign_us, 1),
            "target": f"<= {TARGET_ASSIGN_US:g}",
            "ok": assign_us <= TARGET_ASSIGN_US,
        },
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ab.json").write_text(json.dumps({"title": "ab", "rows": rows}, indent=1) + "\n")
    for r in rows:
        print(f"{r['case']:28s} {r['metric']:10s} {r['value']:>10} {r['target']:>8} {'ok' if r['ok'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "layers" / "modelops"))
    sys.exit(main())
