"""Cold start on the Lambda layers as built, under python3.12: what pandas costs, and who pays for it.

Fresh processes import functions/predict/app.py with only the function code, the built layers and the
Lambda runtime's own packages on the path (as `make layer-smoke` runs them), until the model is loaded:
  * an array model (the LR pipeline): pandas must stay unimported, so its cold start is what it was;
  * the same model with pandas importable (extracted on the path, as in a virtualenv or a container image):
    scikit-learn imports pandas whenever it can, so the loader hides it while an array model loads
    (modelops.model.frames.pandas_hidden); pandas must stay unimported here too, at the same cold start;
  * a model fitted on a DataFrame (the ColumnTransformer-by-name pipeline of tests/support/user_models.py), first
    with the archive extracted in the process (a cold start), then with the extracted copy already there.
Time is measured inside the process (interpreter start-up excluded), medians of interleaved runs: wall time,
and CPU time, which other load on a shared machine disturbs far less (cold init is CPU-bound).
Needs the layers that `make layer-smoke` builds (.aws-sam/smoke); without them nothing is measured.
Writes bench/results/layers.json (see bench/run_all.py).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SMOKE = ROOT / ".aws-sam" / "smoke"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
RUNS = 7
TARGET_IMPORTABLE = 1.1  # array init with pandas importable ÷ without: hiding pandas keeps it at the same cost

CHILD = """
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
sys.path.insert(0, {code!r})
import app
assert app.gateway.holder.model is not None, app.gateway.holder.error
print(time.perf_counter() - t0, time.process_time() - c0, 'pandas' in sys.modules)
"""


def _python312() -> str:
    from devtools.layer_smoke import find_python312

    return find_python312(None)


def _models(tmp: Path) -> dict[str, Path]:
    from modelops.model.artifact import write_artifact
    from modelops.model.dataset import load_builtin
    from modelops.model.training import train
    from support import user_models
    from support.frame_artifacts import write_frame_artifact

    trained = train(load_builtin("breast_cancer"), "breast-cancer")
    write_artifact(tmp / "lr", trained.estimator, trained.manifest, trained.golden)
    estimator, X, y = user_models.column_transformer_model()
    write_frame_artifact(tmp / "ct", estimator, X, y, "titanic")
    return {"lr": tmp / "lr", "ct": tmp / "ct"}


def measure(python312: str, layers: Path, runtime: Path, models: dict[str, Path], tmp: Path) -> dict[str, list]:
    code = ROOT / "functions" / "predict"
    path = [str(layers / "MLRuntimeLayer" / "python"), str(layers / "ModelOpsLayer" / "python"), str(runtime)]
    archive = layers / "MLRuntimeLayer" / "dataframe" / "pandas.zip"
    extracted = tmp / "pandas-reused"
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "MODELOPS_PANDAS_ARCHIVE": str(archive),
    }

    def run(
        model: str, extra_path: list[str] | None = None, pandas_dir: Path | None = None
    ) -> tuple[float, float, bool]:
        env = {
            **base,
            "MODELOPS_MODEL_DIR": str(models[model]),
            "MODELOPS_PANDAS_DIR": str(pandas_dir or tempfile.mkdtemp(dir=tmp, prefix="pandas-")),
            "PYTHONPATH": os.pathsep.join([str(code), *path, *(extra_path or [])]),
        }
        out = subprocess.run(
            [python312, "-c", CHILD.format(code=str(code))], env=env, cwd=code, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr.strip().splitlines()[-1])
        seconds, cpu, loaded = out.stdout.split()[-3:]
        return float(seconds), float(cpu), loaded == "True"

    run("ct", pandas_dir=extracted)  # extracts the archive once, for the runs that reuse it ...
    site = next(p for p in extracted.iterdir() if not p.name.startswith("."))  # ... and put it on the path
    cases = {
        "array": lambda: run("lr"),
        "array, pandas importable": lambda: run("lr", extra_path=[str(site)]),
        "dataframe, archive extracted": lambda: run("ct"),
        "dataframe, extracted copy reused": lambda: run("ct", pandas_dir=extracted),
    }
    for case in cases.values():  # warm the file cache
        case()
    times: dict[str, list] = {name: [] for name in cases}
    for _ in range(RUNS):  # interleaved, so load changes hit every case alike
        for name, case in cases.items():
            times[name].append(case())
    return times


def main() -> int:
    rows_out = []

    def row(case: str, metric: str, value: float, target: str = "", ok: bool | None = None) -> None:
        rows_out.append({"case": case, "metric": metric, "value": round(value, 4), "target": target, "ok": ok})
        print(f"  {case:<44} {metric:<30} {value:10.4g} {target}", flush=True)

    layers, runtime = SMOKE / "layers", SMOKE / "runtime"
    if not (layers / "MLRuntimeLayer" / "dataframe" / "pandas.zip").is_file():
        print("  no built layers under .aws-sam/smoke: run `make layer-smoke` first; nothing measured")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-layers-"))
    try:
        times = measure(_python312(), layers, runtime, _models(tmp), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = {name: statistics.median(v[0] for v in values) for name, values in times.items()}
    cpu = {name: statistics.median(v[1] for v in values) for name, values in times.items()}
    imported = {name: any(v[2] for v in values) for name, values in times.items()}
    for name in times:
        row(f"cold init, {name}", "init ms (median)", wall[name] * 1000)
        row(f"cold init, {name}", "init CPU ms (median)", cpu[name] * 1000)
    for name in ("array", "array, pandas importable"):
        row(f"cold init, {name}", "pandas imported (1 = yes)", float(imported[name]), "= 0", not imported[name])
    ratio = cpu["array, pandas importable"] / cpu["array"]
    target = TARGET_IMPORTABLE
    row("cold init, array, pandas importable", "CPU ÷ array's", ratio, f"<= {target}", ratio <= target)
    extracted, reused = cpu["dataframe, archive extracted"], cpu["dataframe, extracted copy reused"]
    row("cold init, dataframe", "CPU extracted ÷ copy reused", extracted / reused, "(no target)")
    row("cold init, dataframe", "CPU ÷ array model's", extracted / cpu["array"], "(no target)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "layers.json").write_text(json.dumps({"title": "layers", "rows": rows_out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
