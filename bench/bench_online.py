"""Online prediction benchmark: the predict handler against the bare model, side by side.

Measures, for a StandardScaler+LogisticRegression pipeline and a HistGradientBoosting model (array input),
and for a model fitted on a pandas DataFrame (the ColumnTransformer-by-name pipeline of tests/support/user_models.py,
whose raw predict_proba gets the DataFrame as the user has it, and the handler builds one from the JSON rows):
  * warm latency: median CPU time of lambda_handler on a real-shaped POST /predict proxy event (JSON in,
    JSON out, EMF metrics line written) divided by the median of raw predict_proba on the same rows,
    for 1-row and 100-row requests; both are timed interleaved in one process so machine noise cancels;
  * cold init: a fresh process importing functions/predict/app.py and loading the model from local disk
    (MODELOPS_MODEL_DIR) until it is ready to answer, divided by a fresh process doing a bare
    joblib.load of the same model; for array models also divided by a bare joblib.load with pandas
    unimportable (see cold());
  * the columnar body (columns + data) against the instances body, and capture on against capture off, at
    100 rows, each pair timed alternately in one loop;
  * two handlers written for comparison (LR pipeline): a plain Powertools APIGatewayRestResolver with
    enable_validation=True and a pydantic model of the features that returns probabilities, and a bare json
    handler that returns labels only (json.loads, model.predict, json.dumps), each against raw predict_proba.
Both sides run with OMP_NUM_THREADS=1, as the deployed function does.

The ratios are of CPU time, both sides measured the same way: thread CPU time (time.thread_time_ns) around
each warm call, process CPU time (time.process_time) in each fresh process for cold init. On a shared machine
wall time mostly measures how long a call waited for a core; CPU time is what the call itself costs, which is
what a Lambda's share of a vCPU limits and what its billed duration grows with. Wall-time medians are
reported alongside.
The model fetch from S3 at init (the deployed path) is not part of these figures and is not measured here.
Writes bench/results/online.json (see bench/run_all.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# One OpenMP thread, as the predict function runs (template: OMP_NUM_THREADS=1): on a fraction of a vCPU
# HistGradientBoosting's thread pool only adds contention, and it makes timings erratic on a shared box.
os.environ["OMP_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))

TARGET_1, TARGET_100, TARGET_INIT = 1.3, 2.5, 1.0
TARGET_COLUMNAR, TARGET_CAPTURE = 1.0, 1.05  # columnar / instances body, capture on / off (100 rows)
COMPARED_MODEL = "lr_pipeline"
COMPARISON_BUDGET_S = 8.0
# (1 row, 100 rows) per array model: its call skips scikit-learn's re-validation of schema-checked rows
TARGETS = {"lr_pipeline": (0.7, 1.3), "hgb": (0.9, 1.1)}
WARM_ROUNDS = {1: 3000, 100: 1000}  # at most this many interleaved pairs ...
WARM_BUDGET_S = 20.0  # ... or this long, whichever ends first (HGB is slow on small boxes)
COLD_RUNS = 7
DATAFRAME_MODEL = "ct_dataframe"

# each child prints "<process CPU seconds> <wall seconds>" of its work, interpreter start-up excluded
CHILD_HANDLER = """
import os, sys, time
c0, t0 = time.process_time(), time.perf_counter()
sys.path.insert(0, {code!r})
import app
assert app.gateway.holder.model is not None, app.gateway.holder.error
print(time.process_time() - c0, time.perf_counter() - t0)
"""
CHILD_JOBLIB = """
import sys, time
c0, t0 = time.process_time(), time.perf_counter()
if {without_pandas!r}:
    sys.modules["pandas"] = None  # scikit-learn's own import of pandas fails, as where pandas is not installed
import joblib
joblib.load({path!r})
print(time.process_time() - c0, time.perf_counter() - t0)
"""


def train_models(tmp: Path) -> dict[str, Path]:
    from modelops.model.artifact import write_artifact
    from modelops.model.dataset import load_builtin
    from modelops.model.training import train
    from support import user_models
    from support.frame_artifacts import write_frame_artifact

    dataset = load_builtin("breast_cancer")
    out = {}
    for label, kind in (("lr_pipeline", "logistic"), ("hgb", "hgb")):
        trained = train(dataset, "breast-cancer", estimator_kind=kind)
        out[label] = write_artifact(tmp / label, trained.estimator, trained.manifest, trained.golden) and tmp / label
    estimator, X, y = user_models.column_transformer_model()
    write_frame_artifact(tmp / DATAFRAME_MODEL, estimator, X, y, "titanic", golden_rows=20)
    out[DATAFRAME_MODEL] = tmp / DATAFRAME_MODEL
    return out


def _dataframe(rows: list[dict], estimator) -> object:
    """The rows as the user has them: a DataFrame with the fitted dtypes (NaN for missing)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(estimator.feature_names_in_))
    return frame.astype({"sex": pd.CategoricalDtype(["female", "male"]), "embarked": "str", "pclass": "int64"})


def powertools_handler(estimator, names: tuple[str, ...]):
    """A straightforward Powertools handler: pydantic validation of every feature, probabilities out."""
    import numpy as np
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from pydantic import BaseModel, create_model

    row_model = create_model("Row", **{name: (float, ...) for name in names})
    body_model = create_model("PredictBody", instances=(list[row_model], ...), __base__=BaseModel)
    app = APIGatewayRestResolver(enable_validation=True)

    def predict(body):
        matrix = np.array([[getattr(row, name) for name in names] for row in body.instances], dtype=np.float64)
        return {"probabilities": estimator.predict_proba(matrix).tolist()}

    predict.__annotations__ = {"body": body_model, "return": dict}  # this module postpones annotations
    app.post("/predict")(predict)
    return app.resolve


def bare_json_handler(estimator, names: tuple[str, ...]):
    """The least a handler can do: parse, predict labels, serialise; no checks, no probabilities."""
    import numpy as np

    def handler(event, context):
        rows = json.loads(event["body"])["instances"]
        labels = estimator.predict(np.array([[row[name] for name in names] for row in rows], dtype=np.float64))
        return {"statusCode": 200, "body": json.dumps({"predictions": labels.tolist()})}

    return handler


@dataclass(frozen=True)
class Timing:
    """Medians of one side-by-side run, in seconds: CPU time (the ratio) and wall time (alongside)."""

    handler_cpu: float
    raw_cpu: float
    handler_wall: float
    raw_wall: float

    @property
    def ratio(self) -> float:
        return self.handler_cpu / self.raw_cpu

    @property
    def wall_ratio(self) -> float:
        return self.handler_wall / self.raw_wall


def warm(
    model_dir: Path, rows: int, capture: bool = False, columnar: bool = False, comparison: str | None = None
) -> Timing:
    """Handler and raw predict_proba medians for one request size, with the rows sent as `instances` (or as
    `columns` + `data`); `comparison` names a handler of this module to time instead of the predict function."""
    import numpy as np
    from support.api import predict_app, proxy_event

    os.environ["MODELOPS_MODEL_DIR"] = str(model_dir)
    os.environ["MODELOPS_CAPTURE"] = "on" if capture else "off"
    app = predict_app()
    app.reset()
    golden = json.loads((model_dir / "golden.json").read_text())["instances"]
    instances = [golden[i % len(golden)] for i in range(rows)]
    body: dict = {"instances": instances}
    if columnar:
        columns = list(instances[0])
        body = {"columns": columns, "data": [[row[c] for c in columns] for row in instances]}
    event = proxy_event("POST", "/predict", body, request_id="bench")
    estimator = app.gateway.holder.model.estimator
    names = app.gateway.holder.model.schema.names
    if app.gateway.holder.model.runner.takes_dataframe:
        matrix = _dataframe(instances, estimator)
    else:
        matrix = np.array([[row[n] for n in names] for row in instances], dtype=np.float64)
    handler, proba = app.lambda_handler, estimator.predict_proba
    if comparison is not None:
        handler = {"powertools": powertools_handler, "bare": bare_json_handler}[comparison](estimator, names)
    budget = WARM_BUDGET_S if comparison is None else COMPARISON_BUDGET_S
    handler_cpu, raw_cpu, handler_wall, raw_wall = [], [], [], []
    cpu, wall = time.thread_time_ns, time.perf_counter_ns
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # metrics lines are written, to /dev/null
        assert handler(event, None)["statusCode"] == 200
        for _ in range(100):  # warm up both paths
            handler(event, None)
            proba(matrix)
        deadline = time.perf_counter() + budget
        for _ in range(WARM_ROUNDS[rows]):
            if time.perf_counter() > deadline:
                break
            w0, c0 = wall(), cpu()
            proba(matrix)
            c1, w1 = cpu(), wall()
            handler(event, None)
            c2, w2 = cpu(), wall()
            raw_cpu.append(c1 - c0)
            handler_cpu.append(c2 - c1)
            raw_wall.append(w1 - w0)
            handler_wall.append(w2 - w1)
    median = statistics.median
    return Timing(*(median(times) / 1e9 for times in (handler_cpu, raw_cpu, handler_wall, raw_wall)))


def paired(model_dir: Path, which: str) -> Timing:
    """One 100-row request two ways, timed alternately in one loop: capture on against off (`which` =
    "capture") or the columnar body against the instances body ("columnar"). Timing's handler side is the
    first of each pair, its raw side the second, so its ratio is on/off or columnar/instances."""
    from support.api import predict_app, proxy_event

    os.environ["MODELOPS_MODEL_DIR"] = str(model_dir)
    os.environ["MODELOPS_CAPTURE"] = "off"
    app = predict_app()
    app.reset()
    gateway = app.gateway
    golden = json.loads((model_dir / "golden.json").read_text())["instances"]
    instances = [golden[i % len(golden)] for i in range(100)]
    columns = list(instances[0])
    plain = proxy_event("POST", "/predict", {"instances": instances}, request_id="bench")
    columnar = proxy_event(
        "POST",
        "/predict",
        {"columns": columns, "data": [[r[c] for c in columns] for r in instances]},
        request_id="bench",
    )

    def first() -> None:
        if which == "capture":
            gateway.capture = True  # read per request, as modelops.wiring.predict.build sets it from MODELOPS_CAPTURE
            app.lambda_handler(plain, None)
            gateway.capture = False
        else:
            app.lambda_handler(columnar, None)

    def second() -> None:
        app.lambda_handler(plain, None)

    times: tuple[list[int], ...] = ([], [], [], [])
    cpu, wall = time.thread_time_ns, time.perf_counter_ns
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(100):
            first()
            second()
        deadline = time.perf_counter() + WARM_BUDGET_S
        for _ in range(WARM_ROUNDS[100]):
            if time.perf_counter() > deadline:
                break
            w0, c0 = wall(), cpu()
            second()
            c1, w1 = cpu(), wall()
            first()
            c2, w2 = cpu(), wall()
            for out, value in zip(times, (c2 - c1, c1 - c0, w2 - w1, w1 - w0), strict=True):
                out.append(value)
    return Timing(*(statistics.median(t) / 1e9 for t in times))


def cold(model_dir: Path, array_model: bool) -> tuple[Timing, Timing | None]:
    """Medians of fresh-process handler init against fresh-process joblib.load (process CPU and wall time); for
    an array model also against joblib.load with pandas unimportable. Where pandas is installed, scikit-learn
    imports it at its first import, and the handler hides it while an array model loads
    (modelops.model.frames.pandas_hidden): the second pair compares the two loads without pandas, as on the
    Lambda layers, where pandas is not on the path for array models."""
    env = {**os.environ, "MODELOPS_MODEL_DIR": str(model_dir), "PYTHONPATH": str(ROOT / "layers" / "modelops")}
    env.pop("MODELOPS_CAPTURE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Lambda layers ship bytecode; let the warm-up run write it here too
    handler_code = CHILD_HANDLER.format(code=str(ROOT / "functions" / "predict"))
    joblib_codes = {False: CHILD_JOBLIB.format(path=str(model_dir / "model.joblib"), without_pandas=False)}
    if array_model:
        joblib_codes[True] = CHILD_JOBLIB.format(path=str(model_dir / "model.joblib"), without_pandas=True)

    def run(code: str) -> tuple[float, float]:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        cpu_s, wall_s = out.stdout.strip().splitlines()[-1].split()
        return float(cpu_s), float(wall_s)

    run(handler_code), [run(code) for code in joblib_codes.values()]  # warm the file cache for all
    handler_runs: list[tuple[float, float]] = []
    joblib_runs: dict[bool, list[tuple[float, float]]] = {k: [] for k in joblib_codes}
    for _ in range(COLD_RUNS):  # interleaved, so load changes hit all alike
        for without_pandas, code in joblib_codes.items():
            joblib_runs[without_pandas].append(run(code))
        handler_runs.append(run(handler_code))
    median = statistics.median

    def against(runs: list[tuple[float, float]]) -> Timing:
        return Timing(
            median(c for c, _ in handler_runs),
            median(c for c, _ in runs),
            median(w for _, w in handler_runs),
            median(w for _, w in runs),
        )

    return against(joblib_runs[False]), against(joblib_runs[True]) if array_model else None


def main() -> int:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "modelops-bench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    rows_out = []

    def row(case: str, metric: str, value: float, target: str = "", ok: bool | None = None) -> None:
        rows_out.append({"case": case, "metric": metric, "value": round(value, 4), "target": target, "ok": ok})
        print(f"  {case:<28} {metric:<34} {value:10.4g} {target}", flush=True)

    def timed(case: str, timing: Timing, target: float | None = None, what: str = "handler") -> None:
        label = f"{what}/raw predict_proba (median CPU)" if what == "handler" else f"{what} (median CPU)"
        if target is None:
            row(case, label, timing.ratio, "(comparison)")
        else:
            row(case, label, timing.ratio, f"<= {target}", timing.ratio <= target)
        row(case, "the same, wall time", timing.wall_ratio)

    with tempfile.TemporaryDirectory() as tmp:
        models = train_models(Path(tmp))
        for label, model_dir in models.items():
            for rows, target in zip((1, 100), TARGETS.get(label, (TARGET_1, TARGET_100)), strict=True):
                timing = warm(model_dir, rows)
                case = f"{label} {rows} row{'s' if rows > 1 else ''}"
                timed(case, timing, target)
                row(case, "handler median us", timing.handler_cpu * 1e6)
                row(case, "raw predict_proba median us", timing.raw_cpu * 1e6)
                row(case, "handler median wall us", timing.handler_wall * 1e6)
                row(case, "raw predict_proba median wall us", timing.raw_wall * 1e6)
            for case, which, target, what in (
                (f"{label} 100 rows, columnar", "columnar", TARGET_COLUMNAR, "columnar/instances body"),
                (f"{label} 100 rows, capture on", "capture", TARGET_CAPTURE, "capture on/off"),
            ):
                timed(case, paired(model_dir, which), target, what)
            if label == COMPARED_MODEL:
                for name, what in (("powertools", "Powertools+pydantic"), ("bare", "bare json labels")):
                    for rows in (1, 100):
                        case = f"{label} {rows} row{'s' if rows > 1 else ''}, {what}"
                        timed(case, warm(model_dir, rows, comparison=name))
            timing, without_pandas = cold(model_dir, label != DATAFRAME_MODEL)
            timed(f"{label} cold init", timing, TARGET_INIT, "handler init/bare joblib.load")
            row(f"{label} cold init", "handler init CPU ms (median)", timing.handler_cpu * 1000)
            row(f"{label} cold init", "bare joblib.load CPU ms (median)", timing.raw_cpu * 1000)
            row(f"{label} cold init", "handler init wall ms (median)", timing.handler_wall * 1000)
            row(f"{label} cold init", "bare joblib.load wall ms (median)", timing.raw_wall * 1000)
            if without_pandas is not None:
                case = f"{label} cold init, both without pandas"
                timed(case, without_pandas, None, "handler init/bare joblib.load")
                row(case, "bare joblib.load CPU ms (median)", without_pandas.raw_cpu * 1000)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "online.json").write_text(json.dumps({"title": "online", "rows": rows_out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
