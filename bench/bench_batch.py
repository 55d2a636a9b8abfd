"""Batch scoring end to end, S3 to S3 through a moto server in its own process.

For 1M and 5M rows x 30 float features (plus an id column), and for a LogisticRegression pipeline and a
HistGradientBoosting model, it runs in a fresh subprocess each:
  modelops  BatchRunner.run: streamed ranged GET, chunked parse + score, multipart upload, commit, manifest
  pandas    the straightforward pipeline: read_csv(S3 body), predict_proba, to_csv, put_object
  raw       predict_proba on an in-memory array of the same rows (no I/O, no parsing)
and reports rows/s, CPU seconds and peak RSS (VmHWM of that subprocess; moto's memory is in the server
process).

Every case runs BENCH_BATCH_ROUNDS times (default 3), the rounds one after the other. A ratio is taken
within each round, between runs a few seconds apart, and the median over the rounds is reported: on a
shared machine the CPU speed drifts by 10-20% over minutes, which single runs would turn into noise in
the ratios. Rows/s and peak RSS are reported as medians over the rounds too.

Targets: modelops >= 4x pandas rows/s (LR); modelops >= 90% of raw HGB predict_proba rows/s; peak RSS at
5M rows <= 1.2x the 1M figure. Inputs are generated once with numpy and cached as bench/results/*.tmp.
BENCH_BATCH_ROWS="100000,500000" runs smaller sizes for a quick look, BENCH_BATCH_ROUNDS=1 a single round.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "layers" / "modelops"))

BUCKET = "bench-batch"
MODELS = {"lr": "bench-lr", "hgb": "bench-hgb"}
DATES = {}  # rows -> run date, one input folder per size


def _date(rows: int) -> str:
    return DATES.setdefault(rows, f"2026-01-{len(DATES) + 1:02d}")


# ---- input generation ------------------------------------------------------------------------------
def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as ASCII digits without leading zeros (0 padding bytes are dropped later)."""
    d = (values[..., None] // (10 ** np.arange(width - 1, -1, -1))) % 10
    keep = np.cumsum(d != 0, axis=-1) > 0
    keep[..., -1] = True
    return np.where(keep, d + 48, 0).astype(np.uint8)


def format_block(ids: np.ndarray, X: np.ndarray) -> bytes:
    """CSV lines 'id,v1,...,v30' with four decimals, built with array operations (fast for 5M rows)."""
    n, k = X.shape
    q = np.rint(X * 1e4).astype(np.int64)
    out = np.zeros((n, k, 12), dtype=np.uint8)
    out[:, :, :6] = _digits(q // 10000, 6)
    out[:, :, 6] = ord(".")
    out[:, :, 7:11] = (q % 10000)[:, :, None] // (10 ** np.arange(3, -1, -1)) % 10 + 48
    out[:, :, 11] = ord(",")
    out[:, -1, 11] = ord("\n")
    idcol = np.zeros((n, 10), dtype=np.uint8)
    idcol[:, :9] = _digits(ids, 9)
    idcol[:, 9] = ord(",")
    flat = np.concatenate([idcol, out.reshape(n, k * 12)], axis=1).ravel()
    return flat[flat != 0].tobytes()


def input_file(rows: int) -> Path:
    path = RESULTS / f"batch-input-{rows}.csv.tmp"
    if path.exists():
        return path
    from modelops.model.dataset import load_builtin

    data = load_builtin("breast_cancer")
    base = np.asarray(data.X, dtype=np.float64)
    rng = np.random.default_rng(rows)
    partial = path.with_suffix(".partial.tmp")
    with open(partial, "wb") as f:
        f.write(("id," + ",".join(data.feature_names) + "\n").encode())
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            X = base[rng.integers(0, len(base), n)] * (1 + 0.02 * rng.standard_normal((n, base.shape[1])))
            f.write(format_block(np.arange(start, start + n), np.abs(X)))
    partial.rename(path)
    return path


# ---- cases (each in a fresh subprocess) ------------------------------------------------------------
def _preload() -> None:
    import sklearn.ensemble  # noqa: F401  both pipelines pay model loading, not the sklearn import
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401


def _timed_batch_run(model: str, rows: int, settings: dict[str, str]) -> dict:
    """One modelops batch run of the model over `rows` rows, the clock started once its S3 client exists (as the
    pandas case's does). MODELOPS_BATCH_* tuning knobs (CHUNK_ROWS, PREFETCH, SCORE_WORKERS) pass through for
    experiments, except the ones `settings` fixes."""
    from modelops.batch.config import BatchConfig
    from modelops.batch.run import BatchRunner

    _preload()
    base = {
        "MODELOPS_DATA_BUCKET": BUCKET,
        "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
        "MODELOPS_MODEL_NAME": MODELS[model],
        "MODELOPS_BATCH_UPSTREAM_MARKER": "",
        **settings,
    }
    knobs = {k: v for k, v in os.environ.items() if k.startswith("MODELOPS_BATCH_") and k not in base}
    runner = BatchRunner(BatchConfig.from_env({**base, **knobs}))
    t0, c0 = time.perf_counter(), time.process_time()
    result = runner.run(_date(rows), force=True)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    scored = result["manifest"]["rows"]["scored"]
    assert scored == rows, f"scored {scored} of {rows}"
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": scored}


def case_modelops(model: str, rows: int) -> dict:
    return _timed_batch_run(model, rows, {"MODELOPS_BATCH_OUTPUT_PREFIX": f"batch/output-{model}"})


def case_pandas(model: str, rows: int) -> dict:
    import pandas as pd
    from modelops.adapters.aws import client
    from modelops.registry import Registry

    _preload()
    s3 = client("s3")
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = Registry(f"s3://{BUCKET}/registry", s3=s3).load(MODELS[model], "champion")
    body = s3.get_object(Bucket=BUCKET, Key=f"batch/input/{_date(rows)}/data.csv")["Body"]
    df = pd.read_csv(body)
    proba = loaded.estimator.predict_proba(df[list(loaded.manifest.schema.names)].to_numpy(dtype=np.float64))
    classes = np.asarray(loaded.manifest.classes)
    out = pd.DataFrame(
        {
            "id": df["id"],
            "prediction": classes[proba.argmax(axis=1)],
            **{f"proba_{c}": proba[:, i] for i, c in enumerate(classes)},
            "model_version": loaded.manifest.version,
        }
    )
    s3.put_object(
        Bucket=BUCKET, Key=f"batch/pandas-{model}/{_date(rows)}/predictions.csv", Body=out.to_csv(index=False).encode()
    )
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "rows": len(out)}


def case_raw(model: str, rows: int) -> dict:
    import pandas as pd
    from modelops.registry import Registry

    loaded = Registry(f"s3://{BUCKET}/registry").load(MODELS[model], "champion")
    X = pd.read_csv(input_file(rows))[list(loaded.manifest.schema.names)].to_numpy(dtype=np.float64)
    loaded.estimator.predict_proba(X[:10_000])  # warm up (thread pools, first-call allocations)
    t0, c0 = time.perf_counter(), time.process_time()
    loaded.estimator.predict_proba(X)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "rows": len(X)}


CASES = {"modelops": case_modelops, "pandas": case_pandas, "raw": case_raw}


# ---- Parquet input (kept apart from the CSV cases above) -------------------------------------------
# The same rows as the CSV input, written by fastparquet with snappy in row groups of PARQUET_GROUP_ROWS, and
# scored by BatchRunner from their own input prefix. Target: Parquet rows/s >= 1.5x CSV rows/s (LR, the
# modelops case above, same round); peak RSS at 5M rows <= 1.2x the 1M figure, as for CSV.
PARQUET_GROUP_ROWS = 250_000
PARQUET_PREFIX = "batch/input-parquet"


def parquet_input_file(rows: int) -> Path:
    path = RESULTS / f"batch-input-{rows}.parquet.tmp"
    if path.exists():
        return path
    import fastparquet
    import pandas as pd

    partial = path.with_suffix(".partial.tmp")
    frame = pd.read_csv(input_file(rows))
    fastparquet.write(
        str(partial), frame, compression="SNAPPY", row_group_offsets=PARQUET_GROUP_ROWS, write_index=False
    )
    partial.rename(path)
    return path


def case_modelops_parquet(model: str, rows: int) -> dict:
    return _timed_batch_run(
        model,
        rows,
        {
            "MODELOPS_BATCH_INPUT_PREFIX": PARQUET_PREFIX,
            "MODELOPS_BATCH_OUTPUT_PREFIX": f"batch/output-{model}-parquet",
        },
    )


CASES["modelops_parquet"] = case_modelops_parquet
PARQUET_PIPELINES = ("modelops_parquet",)


def setup_parquet(s3, sizes: list[int]) -> None:
    for rows in sizes:
        path = parquet_input_file(rows)
        print(f"  parquet input {rows:,} rows: {path.stat().st_size / 1e6:.0f} MB (snappy)", flush=True)
        s3.upload_file(str(path), BUCKET, f"{PARQUET_PREFIX}/{_date(rows)}/data.parquet")


def parquet_rows(sizes: list[int], label: dict, median, ratio, row) -> None:
    for rows in sizes:
        for model in ("lr", "hgb"):
            ours, csv_case = ("modelops_parquet", model, rows), ("modelops", model, rows)
            row(f"{model} {label[rows]} modelops parquet", "rows/s", median(ours, "rows_per_s"))
            speedup = ratio(ours, csv_case, "rows_per_s")
            if model == "lr":
                row(f"lr {label[rows]}", "parquet / csv rows/s", speedup, ">= 1.5", speedup >= 1.5)
            else:
                row(f"hgb {label[rows]}", "parquet / csv rows/s", speedup)
            row(f"{model} {label[rows]} modelops parquet", "peak RSS MB", median(ours, "peak_rss_mb"))
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for model in ("lr", "hgb"):
            growth = ratio(("modelops_parquet", model, large), ("modelops_parquet", model, small), "peak_rss_mb")
            row(
                f"{model} modelops parquet",
                f"peak RSS {label[large]} / {label[small]}",
                growth,
                "<= 1.2",
                growth <= 1.2,
            )


# ---- end of the Parquet section ---------------------------------------------------------------------


def peak_rss_mb() -> float:
    """VmHWM of this process. (ru_maxrss would do, but Linux carries it across exec from the parent.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(pipeline: str, model: str, rows: int, dates: str) -> None:
    DATES.update({int(k): v for k, v in json.loads(dates).items()})
    out = CASES[pipeline](model, rows)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


# ---- orchestration ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(env: dict) -> subprocess.Popen:
    port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(env["AWS_ENDPOINT_URL"] + "/moto-api/", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("moto server did not start")


def _setup(sizes: list[int]) -> None:
    from boto3.s3.transfer import TransferConfig
    from modelops.adapters.aws import client
    from modelops.model.artifact import write_artifact
    from modelops.model.dataset import load_builtin
    from modelops.model.training import train
    from modelops.registry import Registry

    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    registry = Registry(f"s3://{BUCKET}/registry", s3=s3)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, name in MODELS.items():
            trained = train(load_builtin("breast_cancer"), name, estimator_kind=None if kind == "lr" else kind)
            write_artifact(Path(tmp) / name, trained.estimator, trained.manifest, trained.golden)
            m = registry.register(Path(tmp) / name)
            registry.set_alias(name, "champion", m.version)
    for rows in sizes:
        path = input_file(rows)
        s3.upload_file(
            str(path),
            BUCKET,
            f"batch/input/{_date(rows)}/data.csv",
            Config=TransferConfig(multipart_chunksize=64 * 1024**2, max_concurrency=4),
        )
    setup_parquet(s3, sizes)


def run_case(pipeline: str, model: str, rows: int, env: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--case", pipeline, model, str(rows), json.dumps(DATES)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"case {pipeline} {model} {rows} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(line[len("RESULT ") :])
    out["rows_per_s"] = out["rows"] / out["seconds"]
    print(
        f"  {pipeline:<9} {model:<4} {rows:>9,} rows  {out['seconds']:7.2f} s (CPU {out['cpu_seconds']:6.2f} s)  "
        f"{out['rows_per_s']:>10,.0f} rows/s  peak RSS {out['peak_rss_mb']:7.0f} MB",
        flush=True,
    )
    return out


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    sizes = [int(x) for x in os.environ.get("BENCH_BATCH_ROWS", "1000000,5000000").split(",")]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
        "PYTHONPATH": str(ROOT / "layers" / "modelops"),
    }
    env.pop("AWS_PROFILE", None)
    os.environ.update(
        {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    )
    for rows in sizes:
        print(f"  input {rows:,} rows: {input_file(rows).stat().st_size / 1e6:.0f} MB", flush=True)
    rounds = max(1, int(os.environ.get("BENCH_BATCH_ROUNDS", "3")))
    server = _start_moto(env)
    try:
        _setup(sizes)
        runs: dict[tuple[str, str, int], list[dict]] = {}
        for number in range(rounds):
            print(f"  round {number + 1} of {rounds}", flush=True)
            for rows in sizes:
                for model in ("lr", "hgb"):
                    for pipeline in ("modelops", "pandas", "raw", *PARQUET_PIPELINES):
                        runs.setdefault((pipeline, model, rows), []).append(run_case(pipeline, model, rows, env))
    finally:
        server.terminate()
        server.wait()

    def median(case: tuple[str, str, int], field: str) -> float:
        return statistics.median(r[field] for r in runs[case])

    def ratio(a: tuple[str, str, int], b: tuple[str, str, int], field: str) -> float:
        """Median over the rounds of a's value / b's value in the same round."""
        return statistics.median(x[field] / y[field] for x, y in zip(runs[a], runs[b], strict=True))

    out = []

    def row(case: str, metric: str, value: float, target: str = "", ok: bool | None = None) -> None:
        out.append({"case": case, "metric": metric, "value": round(value, 4), "target": target, "ok": ok})

    label = {n: f"{n / 1e6:g}M" for n in sizes}
    for rows in sizes:
        for model in ("lr", "hgb"):
            ours, pandas, raw = (("modelops", model, rows), ("pandas", model, rows), ("raw", model, rows))
            row(f"{model} {label[rows]} modelops", "rows/s", median(ours, "rows_per_s"))
            row(f"{model} {label[rows]} pandas", "rows/s", median(pandas, "rows_per_s"))
            row(f"{model} {label[rows]} raw predict_proba", "rows/s", median(raw, "rows_per_s"))
            speedup = ratio(ours, pandas, "rows_per_s")
            if model == "lr":
                row(f"lr {label[rows]}", "modelops / pandas rows/s", speedup, ">= 4", speedup >= 4)
            else:
                row(f"hgb {label[rows]}", "modelops / pandas rows/s", speedup)
                share = ratio(ours, raw, "rows_per_s")
                row(f"hgb {label[rows]}", "modelops / raw predict_proba rows/s", share, ">= 0.9", share >= 0.9)
            row(f"{model} {label[rows]} modelops", "peak RSS MB", median(ours, "peak_rss_mb"))
            row(f"{model} {label[rows]} pandas", "peak RSS MB", median(pandas, "peak_rss_mb"))
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for model in ("lr", "hgb"):
            growth = ratio(("modelops", model, large), ("modelops", model, small), "peak_rss_mb")
            row(f"{model} modelops", f"peak RSS {label[large]} / {label[small]}", growth, "<= 1.2", growth <= 1.2)
    parquet_rows(sizes, label, median, ratio, row)
    (RESULTS / "batch.json").write_text(
        json.dumps(
            {
                "title": "Batch scoring S3 -> S3 (moto server), modelops vs pandas",
                "rounds": rounds,
                "rows": out,
                "details": {f"{p} {m} {n}": r for (p, m, n), r in runs.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(main())
