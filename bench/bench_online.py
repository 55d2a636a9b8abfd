"""Online prediction benchmark: the predict handler against the bare model, side by side.

Measures, for a StandardScaler+LogisticRegression pipeline and a HistGradientBoosting model (array input),
and for a model fitted on a pandas DataFrame (the ColumnTransformer-by-name pipeline of tests/user_models.py,
whose raw predict_proba gets the DataFrame as the user has it, and the handler builds one from the JSON rows):
  * warm latency: median time of lambda_handler on a real-shaped POST /predict proxy event (JSON in,
    JSON out, EMF metrics line written) divided by the median raw predict_proba on the same rows,
    for 1-row and 100-row requests; both are timed interleaved in one process so machine noise cancels;
  * cold init: a fresh process importing functions/predict/app.py and loading the model from local disk
    (MODELOPS_MODEL_DIR) until it is ready to answer, divided by a fresh process doing a bare
    joblib.load of the same model;
  * the columnar body (columns + data) against the instances body, and capture on against capture off, each
    as the ratio of their handler/raw ratios at 100 rows;
  * two handlers written for comparison (LR pipeline): a plain Powertools APIGatewayRestResolver with
    enable_validation=True and a pydantic model of the features that returns probabilities, and a bare json
    handler that returns labels only (json.loads, model.predict, json.dumps), each against raw predict_proba.
Both sides run with OMP_NUM_THREADS=1, as the deployed function does.
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

CHILD_HANDLER = """
import os, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {code!r})
import app
assert app.gateway.holder.model is not None, app.gateway.holder.error
print(time.perf_counter() - t0)
"""
CHILD_JOBLIB = """
import time
t0 = time.perf_counter()
import joblib
joblib.load({path!r})
print(time.perf_counter() - t0)
"""


def train_models(tmp: Path) -> dict[str, Path]:
    import user_models
    from frame_artifacts import write_frame_artifact
    from modelops.artifact import write_artifact
    from modelops.dataset import load_builtin
    from modelops.training import train

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


def warm(
    model_dir: Path, rows: int, capture: bool = False, columnar: bool = False, comparison: str | None = None
) -> tuple[float, float]:
    """(median handler seconds, median raw predict_proba seconds) for one request size, with the rows
    sent as `instances` (or as `columns` + `data`); `comparison` names a handler of this module to time
    instead of the predict function."""
    import numpy as np
    from api_support import predict_app, proxy_event

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
    handler_times, raw_times = [], []
    clock = time.perf_counter
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # metrics lines are written, to /dev/null
        assert handler(event, None)["statusCode"] == 200
        for _ in range(100):  # warm up both paths
            handler(event, None)
            proba(matrix)
        deadline = clock() + budget
        for _ in range(WARM_ROUNDS[rows]):
            if clock() > deadline:
                break
            t0 = clock()
            proba(matrix)
            t1 = clock()
            handler(event, None)
            t2 = clock()
            raw_times.append(t1 - t0)
            handler_times.append(t2 - t1)
    return statistics.median(handler_times), statistics.median(raw_times)


def cold(model_dir: Path) -> tuple[float, float]:
    """(median fresh-process handler init seconds, median fresh-process joblib.load seconds)."""
    env = {**os.environ, "MODELOPS_MODEL_DIR": str(model_dir), "PYTHONPATH": str(ROOT / "layers" / "modelops")}
    env.pop("MODELOPS_CAPTURE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Lambda layers ship bytecode; let the warm-up run write it here too
    handler_code = CHILD_HANDLER.format(code=str(ROOT / "functions" / "predict"))
    joblib_code = CHILD_JOBLIB.format(path=str(model_dir / "model.joblib"))

    def run(code: str) -> float:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    run(handler_code), run(joblib_code)  # warm the file cache for both
    handler_times, joblib_times = [], []
    for _ in range(COLD_RUNS):  # interleaved, so load changes hit both alike
        joblib_times.append(run(joblib_code))
        handler_times.append(run(handler_code))
    return statistics.median(handler_times), statistics.median(joblib_times)


def main() -> int:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "modelops-bench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    rows_out = []

    def row(case: str, metric: str, value: float, target: str = "", ok: bool | None = None) -> None:
        rows_out.append({"case": case, "metric": metric, "value": round(value, 4), "target": target, "ok": ok})
        print(f"  {case:<28} {metric:<34} {value:10.4g} {target}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        models = train_models(Path(tmp))
        for label, model_dir in models.items():
            for rows, target in zip((1, 100), TARGETS.get(label, (TARGET_1, TARGET_100)), strict=True):
                handler_s, raw_s = warm(model_dir, rows)
                ratio = handler_s / raw_s
                row(
                    f"{label} {rows} row{'s' if rows > 1 else ''}",
                    "handler/raw predict_proba (median)",
                    ratio,
                    f"<= {target}",
                    ratio <= target,
                )
                row(f"{label} {rows} row{'s' if rows > 1 else ''}", "handler median us", handler_s * 1e6)
                row(f"{label} {rows} row{'s' if rows > 1 else ''}", "raw predict_proba median us", raw_s * 1e6)
                if rows == 100:
                    instances_ratio = ratio
            handler_s, raw_s = warm(model_dir, 100, columnar=True)
            ratio = handler_s / raw_s / instances_ratio
            row(
                f"{label} 100 rows, columnar",
                "columnar/instances body",
                ratio,
                f"<= {TARGET_COLUMNAR}",
                ratio <= TARGET_COLUMNAR,
            )
            handler_s, raw_s = warm(model_dir, 100, capture=True)
            ratio = handler_s / raw_s / instances_ratio
            row(
                f"{label} 100 rows, capture on",
                "capture on/off",
                ratio,
                f"<= {TARGET_CAPTURE}",
                ratio <= TARGET_CAPTURE,
            )
            if label == COMPARED_MODEL:
                for name, what in (("powertools", "Powertools+pydantic"), ("bare", "bare json labels")):
                    for rows in (1, 100):
                        handler_s, raw_s = warm(model_dir, rows, comparison=name)
                        case = f"{label} {rows} row{'s' if rows > 1 else ''}, {what}"
                        row(case, "handler/raw predict_proba (median)", handler_s / raw_s, "(comparison)")
            init_s, load_s = cold(model_dir)
            ratio = init_s / load_s
            row(f"{label} cold init", "handler init/bare joblib.load", ratio, f"<= {TARGET_INIT}", ratio <= TARGET_INIT)
            row(f"{label} cold init", "handler init ms (median)", init_s * 1000)
            row(f"{label} cold init", "bare joblib.load ms (median)", load_s * 1000)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "online.json").write_text(json.dumps({"title": "online", "rows": rows_out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
