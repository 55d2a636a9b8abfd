"""docs/batch-scale.md: wall time and cost of scoring a billion rows with the template's batch settings, from
the measured batch throughput (bench/results/batch.json), the model load time (bench/results/online.json),
the Distributed Map in statemachine/batch.asl.json and the prices in devtools/prices.py.

An estimate, not a measurement on AWS: the worker rate is the benchmark's (moto S3 on a 2-core machine)
scaled to the worker's vCPU share. Written by `python -m devtools.costs`.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.batch.config import BatchConfig

from devtools.costs import LAMBDA_MB_PER_VCPU
from devtools.diagram import TEMPLATE, load_template
from devtools.prices import rate, sources_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "batch-scale.md"
BATCH_RESULTS = ROOT / "bench" / "results" / "batch.json"
ONLINE_RESULTS = ROOT / "bench" / "results" / "online.json"
STATE_MACHINE = ROOT / "statemachine" / "batch.asl.json"
MARKER = re.compile(r"<!-- inputs: (\{.*?\}) -->", re.S)

ROWS = 1e9
NIGHT_HOURS = 8
CSV_BYTES_PER_ROW = 1024**3 / 4.5e6  # plan.py: 1 GiB is about 4.5M rows of 30 four-decimal floats + id
PARQUET_BYTES_PER_ROW = 31 * 8  # estimate: 30 float64 + an int64 id; random floats barely compress
OUTPUT_BYTES_PER_ROW = 40  # estimate: id, prediction, two probabilities, model version, empty warnings
CSV_PARSE_CPU_S_PER_M = 1.25  # README: the bulk CSV parser runs about 800k rows/s on one core
PARQUET_DECODE_CPU_S_PER_M = (0.73, 0.95)  # measured decode of 1M rows x 30 floats, not yet in batch.json
BENCH_CORES = 2  # the benchmark machine
ACCOUNT_CONCURRENCY = 1000  # Lambda default per Region; new accounts start lower
DMAP_MAX_CONCURRENCY = 10_000
S3_PUT_PER_PREFIX, S3_GET_PER_PREFIX = 3500, 5500  # per second, per partitioned prefix
GETS_PER_PART = 4  # estimate: lease read, model artifact, input range (one streamed GET), manifest check
PUTS_PER_PART = 4  # estimate: lease renewal, multipart create, stats, rejected rows (+ one per 8 MiB output)
OUTPUT_PART_BYTES = 8 * 1024**2  # batch/writer.py PART_BYTES
TRANSITIONS_PER_CHILD = 2  # assumed: the child's ScorePart task and its end
PARENT_TRANSITIONS = 8  # Prepare, Route, ScoreParts, Commit, Done and their transitions
MODELS = {"lr": "lr_pipeline", "hgb": "hgb"}  # batch.json name -> online.json name


@dataclass(frozen=True)
class ScaleInputs:
    worker_memory_mb: int
    worker_timeout_s: int
    max_concurrency: int
    item_batching: bool
    part_bytes: int
    chunk_rows: int
    csv_rows_per_s: dict[str, float]  # per benchmark run (2 cores), largest size measured
    csv_cpu_s_per_m: dict[str, float]
    parquet_rows_per_s: dict[str, float]  # measured Parquet rows/s if batch.json has them
    startup_s: dict[str, float]  # model load in a new worker


def worker_settings(template: dict) -> tuple[int, int, int]:
    """(memory MB, timeout s, default BatchChunkRows) of the Distributed Map's worker."""
    props = template["Resources"]["BatchWorkerFunction"]["Properties"]
    chunk = template["Parameters"]["BatchChunkRows"]["Default"]
    return int(props["MemorySize"]), int(props["Timeout"]), int(chunk)


def distributed_map(definition: dict, template: dict | None = None) -> tuple[int, bool]:
    """(MaxConcurrency, uses ItemBatcher) of the state machine's Distributed Map; 0 means unbounded. A
    MaxConcurrencyPath is the template's BatchMaxConcurrency, whose default is what deploys."""
    for state in definition.get("States", {}).values():
        mode = ((state.get("ItemProcessor") or {}).get("ProcessorConfig") or {}).get("Mode")
        if state.get("Type") == "Map" and mode == "DISTRIBUTED":
            if "MaxConcurrencyPath" in state:
                if template is None:
                    raise LookupError("the Distributed Map takes its MaxConcurrency from the template")
                return int(template["Parameters"]["BatchMaxConcurrency"]["Default"]), "ItemBatcher" in state
            return int(state.get("MaxConcurrency", 0)), "ItemBatcher" in state
    raise LookupError("statemachine/batch.asl.json has no Distributed Map state")


def bench_rates(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per model: CSV rows/s and CPU-s per 1M rows at the largest measured size; Parquet rows/s if measured."""
    csv_rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    parquet: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for key, runs in (results.get("details") or {}).items():
        parts = key.split()
        if len(parts) != 3 or parts[0] != "modelops" or parts[1] not in MODELS or not runs:
            continue
        model, rows = parts[1], int(parts[2])
        if rows > sizes.get(model, 0):
            sizes[model] = rows
            csv_rate[model] = statistics.median(r["rows_per_s"] for r in runs)
            cpu[model] = statistics.median(r["cpu_seconds"] for r in runs) / rows * 1e6
    for row in results.get("rows", []):
        case = str(row.get("case", "")).lower()
        model = case.split()[0] if case else ""
        measured = row.get("metric") == "rows/s" and not any(other in case for other in ("pandas", "raw"))
        if "parquet" in case and model in MODELS and measured:
            parquet[model] = max(parquet.get(model, 0.0), float(row["value"]))
    return csv_rate, cpu, parquet


STARTUP_METRICS = ("handler init wall ms (median)", "handler init ms (median)")  # the newer name first


def startup_seconds(results: dict[str, Any]) -> dict[str, float]:
    """Per model: the online benchmark's cold init (wall time: a part waits for it), in seconds."""
    out: dict[str, float] = {}
    for model, online in MODELS.items():
        for metric in STARTUP_METRICS:
            found = [
                float(row["value"]) / 1000
                for row in results.get("rows", [])
                if row.get("case") == f"{online} cold init" and row.get("metric") == metric
            ]
            if found:
                out[model] = found[0]
                break
        else:
            raise LookupError(f"bench/results/online.json has no cold init of {online}: run `make bench`")
    return out


def vcpus(memory_mb: int) -> float:
    return memory_mb / LAMBDA_MB_PER_VCPU


def worker_rows_per_s(bench_rows_per_s: float, memory_mb: int) -> float:
    """The benchmark's rate scaled down to the worker's vCPU share (never up: the bench was not CPU-bound)."""
    return bench_rows_per_s * min(1.0, vcpus(memory_mb) / BENCH_CORES)


def parquet_rows_per_s(csv_rows_per_s: float, csv_cpu_s_per_m: float, decode_cpu_s_per_m: float) -> float:
    """CSV rate with the CSV parse's CPU replaced by Parquet decode's."""
    return csv_rows_per_s * csv_cpu_s_per_m / (csv_cpu_s_per_m - CSV_PARSE_CPU_S_PER_M + decode_cpu_s_per_m)


@dataclass(frozen=True)
class Plan:
    parts: int
    rows_per_part: float
    part_s: float
    concurrency: int
    wall_s: float
    lambda_usd: float
    sfn_usd: float
    s3_usd: float
    put_rate: float  # S3 PUT-class requests per second at this concurrency

    @property
    def total_usd(self) -> float:
        return self.lambda_usd + self.sfn_usd + self.s3_usd


def plan(
    rows: float,
    bytes_per_row: float,
    rows_per_s: float,
    startup_s: float,
    inputs: ScaleInputs,
    max_concurrency: int | None = None,
) -> Plan:
    """One run: parts of part_bytes, each a worker that loads the model then scores its rows."""
    parts = math.ceil(rows * bytes_per_row / inputs.part_bytes)
    rows_per_part = rows / parts
    part_s = startup_s + rows_per_part / rows_per_s
    limit = max_concurrency if max_concurrency is not None else inputs.max_concurrency
    concurrency = min(limit or DMAP_MAX_CONCURRENCY, ACCOUNT_CONCURRENCY, DMAP_MAX_CONCURRENCY, parts)
    wall_s = math.ceil(parts / concurrency) * part_s
    gb_s = parts * part_s * inputs.worker_memory_mb / 1024
    lambda_usd = gb_s * rate("lambda_arm_gb_s") + parts * rate("lambda_request")
    sfn_usd = (parts * TRANSITIONS_PER_CHILD + PARENT_TRANSITIONS) * rate("sfn_transition")
    puts = PUTS_PER_PART + math.ceil(rows_per_part * OUTPUT_BYTES_PER_ROW / OUTPUT_PART_BYTES)
    s3_usd = parts * (GETS_PER_PART * rate("s3_get") + puts * rate("s3_put"))
    return Plan(
        parts, rows_per_part, part_s, concurrency, wall_s, lambda_usd, sfn_usd, s3_usd, concurrency * puts / part_s
    )


def _duration(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def render(inputs: ScaleInputs) -> str:
    marker = json.dumps(inputs.__dict__, sort_keys=True)
    mem, cpus = inputs.worker_memory_mb, vcpus(inputs.worker_memory_mb)
    cases: list[tuple[str, str, float, float, str]] = []  # model, format, bytes/row, rows/s, how
    for model in sorted(inputs.csv_rows_per_s):
        csv = worker_rows_per_s(inputs.csv_rows_per_s[model], mem)
        cases.append((model, "CSV", CSV_BYTES_PER_ROW, csv, "measured, scaled"))
        if model in inputs.parquet_rows_per_s:
            pq = worker_rows_per_s(inputs.parquet_rows_per_s[model], mem)
            cases.append((model, "Parquet", PARQUET_BYTES_PER_ROW, pq, "measured, scaled"))
        else:
            slow = parquet_rows_per_s(csv, inputs.csv_cpu_s_per_m[model], PARQUET_DECODE_CPU_S_PER_M[1])
            cases.append((model, "Parquet", PARQUET_BYTES_PER_ROW, slow, "**estimate**"))
    lines = [
        "# A billion rows in one night",
        "",
        "<!-- generated by `python -m devtools.costs` from template.yaml, statemachine/batch.asl.json, "
        "bench/results and devtools/prices.py -->",
        f"<!-- inputs: {marker} -->",
        "",
        "What scoring 1,000,000,000 rows of 30 float features costs with the template's batch settings, and "
        "which limit stops it first. An estimate from the benchmark, not a run on AWS.",
        "",
        "## The settings",
        "",
        f"- **One Distributed Map item = one part**: an object, or a byte range of at most "
        f"{inputs.part_bytes // 1024**2} MiB of a larger plain object (`MODELOPS_BATCH_PART_BYTES`); a gzip "
        "object is always one part. Items are read from the run's `parts.json` with an S3 `ItemReader`; "
        + ("items are batched." if inputs.item_batching else "no `ItemBatcher`: one child execution per part.")
        + " Inputs up to 1 GiB are scored inline, without the map.",
        f"- **MaxConcurrency {inputs.max_concurrency}**: the default of the template's `BatchMaxConcurrency`.",
        f"- **Worker**: BatchWorkerFunction, {mem} MB arm64 (about {cpus:.2f} vCPU), timeout {inputs.worker_timeout_s} s; "
        f"chunks of {inputs.chunk_rows:,} rows (`BatchChunkRows`).",
        "",
        "## Worker throughput",
        "",
        "| model | format | benchmark rows/s (2 cores) | worker rows/s | bytes per row | model load |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model, fmt, bpr, rps, how in cases:
        bench = inputs.csv_rows_per_s[model] if fmt == "CSV" else inputs.parquet_rows_per_s.get(model)
        bench_cell = f"{bench:,.0f}" if bench else "not measured"
        lines.append(
            f"| {model} | {fmt} | {bench_cell} | {rps:,.0f} ({how}) | {bpr:.0f} | {inputs.startup_s.get(model, 0):.1f} s |"
        )
    lo, hi = PARQUET_DECODE_CPU_S_PER_M
    lines += [
        "",
        f"Worker rows/s = benchmark rows/s × min(1, {cpus:.2f} vCPU / {BENCH_CORES} cores): the benchmark "
        "(S3 → S3 against a local moto server, bench/results/batch.json, largest size) ran on 2 cores, the "
        f"worker has {cpus:.2f}. "
        + (
            "Parquet is measured in bench/results/batch.json."
            if inputs.parquet_rows_per_s
            else f"**Parquet is an estimate** until bench/results/batch.json has Parquet rows: the CSV rate with "
            f"the CSV parse ({CSV_PARSE_CPU_S_PER_M} CPU-s per 1M rows) replaced by Parquet decode "
            f"({lo}–{hi} CPU-s per 1M rows × 30 floats; the table takes {hi}): "
            "`rows/s × cpu / (cpu − csv_parse + parquet_decode)`, cpu being the CSV run's CPU-s per 1M rows."
        ),
        "",
        "## One billion rows",
        "",
        "| model | format | parts | rows per part | seconds per part | wall, as deployed | wall, MaxConcurrency "
        "1000 | cost | Lambda | Step Functions | S3 requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    plans = []
    for model, fmt, bpr, rps, _ in cases:
        p = plan(ROWS, bpr, rps, inputs.startup_s.get(model, 0.0), inputs)
        wide = plan(ROWS, bpr, rps, inputs.startup_s.get(model, 0.0), inputs, max_concurrency=ACCOUNT_CONCURRENCY)
        plans.append((model, fmt, p, wide, rps))
        lines.append(
            f"| {model} | {fmt} | {p.parts:,} | {p.rows_per_part:,.0f} | {p.part_s:.1f} | {_duration(p.wall_s)} | "
            f"{_duration(wide.wall_s)} | {_usd(p.total_usd)} | {_usd(p.lambda_usd)} | {_usd(p.sfn_usd)} | "
            f"{_usd(p.s3_usd)} |"
        )
    slowest = max(plans, key=lambda x: x[2].wall_s)
    model, fmt, p, wide, rps = slowest
    night_rows = p.concurrency * p.rows_per_part / p.part_s * NIGHT_HOURS * 3600
    headroom = inputs.worker_timeout_s / p.part_s
    put_bound = S3_PUT_PER_PREFIX * wide.concurrency / wide.put_rate  # parallel parts at the PUT limit
    lines += [
        "",
        f"As deployed, a billion rows take {_duration(p.wall_s)} at the slowest ({model}, {fmt}), well inside "
        f"a night (at MaxConcurrency 1,000 the figure ignores the ramp-up: Lambda adds at most 1,000 "
        "environments per function every 10 seconds, and Step Functions throttles state transitions); "
        f"{NIGHT_HOURS} hours at MaxConcurrency {inputs.max_concurrency} score about "
        f"{night_rows / 1e9:,.0f} billion {model} {fmt} rows. The cost is the same at any concurrency: it is "
        "worker-seconds, not wall time. Not counted: the planning and commit steps (each one invocation), "
        "storage, CloudWatch Logs, and retries.",
        "",
        "## Which limit comes first",
        "",
        "| limit | value | where it bites at a billion rows | what raises it |",
        "|---|---|---|---|",
        f"| Distributed Map `MaxConcurrency` (`BatchMaxConcurrency`) | {inputs.max_concurrency} | **first**: "
        f"{p.parts:,} parts run {inputs.max_concurrency} at a time | a larger `BatchMaxConcurrency`; the "
        "predict API shares the account's Lambda concurrency (reserve some for it) |",
        f"| Lambda concurrent executions, per account and Region | {ACCOUNT_CONCURRENCY:,} (new accounts start "
        "lower) | next, above 1,000 parallel parts; in a new account possibly before 16 | a Service Quotas "
        "increase (up to tens of thousands) |",
        f"| parts per run | {p.parts:,} at {inputs.part_bytes // 1024**2} MiB | concurrency above the part count "
        "buys nothing | a smaller `MODELOPS_BATCH_PART_BYTES` (more, shorter parts) |",
        "| the run's lease (`_lease.json`) | one object, compare-and-swap | every part checks it when it "
        "starts; only a lease with under 90% of its time left is written (batch/lease.py `FRESH_SHARE`), so "
        "parts starting together make one write and the rest only read it (tested with 200 parts) | not a "
        "limit at these counts |",
        f"| S3 requests per partitioned prefix | {S3_PUT_PER_PREFIX:,} PUT / {S3_GET_PER_PREFIX:,} GET per second "
        f"| at {wide.concurrency:,} parallel parts about {wide.put_rate:,.0f} PUT/s into the output prefix; the PUT limit is "
        f"reached near {put_bound:,.0f} parallel parts | S3 scales a prefix up after sustained load (503 "
        "SlowDown meanwhile); more prefixes |",
        f"| Distributed Map child executions in parallel | {DMAP_MAX_CONCURRENCY:,} | not reached | none: the "
        "most one Map Run runs side by side |",
        f"| Lambda timeout | {inputs.worker_timeout_s} s | a part takes {p.part_s:.0f} s: a part "
        f"{headroom:,.0f}× slower would still fit | smaller parts |",
        "| state input/output | 256 KiB | an item is one part's key and byte range (~200 bytes); the parts "
        "list is read from S3 by the ItemReader, not passed as state | `ItemBatcher` (`MaxItemsPerBatch`, "
        "`MaxInputBytesPerBatch`) only if items grow |",
        "",
        "## Assumptions",
        "",
        f"- Input: plain CSV (or Parquet) objects of at least {inputs.part_bytes // 1024**2} MiB with an id "
        f"column, so each splits into byte ranges. CSV at {CSV_BYTES_PER_ROW:.0f} bytes per row (plan.py: 1 GiB "
        f"is about 4.5M rows), Parquet at {PARQUET_BYTES_PER_ROW} bytes per row (estimate). Gzip objects are one "
        "part each however large: 1B rows in a few gzip files would run a few workers for hours.",
        f"- Each part pays a model load ({', '.join(f'{m} {s:.1f} s' for m, s in sorted(inputs.startup_s.items()))}: "
        "the online benchmark's cold init, bench/results/online.json); warm workers that reuse a loaded model "
        "are faster.",
        f"- S3 requests per part: {GETS_PER_PART} GET, {PUTS_PER_PART} PUT + one per 8 MiB of predictions "
        f"(~{OUTPUT_BYTES_PER_ROW} bytes per row); Step Functions: {TRANSITIONS_PER_CHILD} transitions per child "
        f"+ {PARENT_TRANSITIONS} for the run (estimates).",
        "",
        "## Sources",
        "",
        "Limits (read 2026-12-01):",
        "",
        "- Distributed Map runs up to 10,000 child executions in parallel when MaxConcurrency is not set: "
        "<https://docs.aws.amazon.com/ja_jp/step-functions/latest/dg/concepts-asl-use-map-state-distributed.html> "
        "(also <https://docs.amazonaws.cn/step-functions/latest/dg/state-map-distributed.md>).",
        "- ItemReader reads a JSON or CSV file, an S3 object list (ListObjectsV2) or an S3 inventory manifest: "
        "<https://docs.amazonaws.cn/en_us/step-functions/latest/dg/input-output-itemreader.md>, "
        "<https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions.S3ObjectsItemReader.html>.",
        "- ItemBatcher `MaxItemsPerBatch` / `MaxInputBytesPerBatch`, batches under the 256 KB limit: "
        "<https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions.ItemBatcherProps.html>.",
        "- State input and output at most 262,144 bytes (256 KiB): "
        "<https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateEnteredEventDetails.html>.",
        '- Lambda: 1,000 concurrent executions by default, "New AWS accounts have reduced concurrency and memory '
        'quotas", up to 15 minutes per invocation, "For each function, 1,000 execution environments every 10 seconds": '
        "<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.md>.",
        "- Step Functions quotas, with a section on state-transition throttling (its rates are not used here): "
        "<https://docs.aws.amazon.com/ja_jp/step-functions/latest/dg/service-quotas.md>.",
        "- One vCPU at 1,769 MB: <https://git.mcrn.ar/mariano/lambda_local_runner/src/branch/main/docs/lambdas-md/"
        "lambda-13-cost.md?display=source> (third-party).",
        "- S3: 3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD requests per second per partitioned prefix: "
        "<https://docs.aws.amazon.com/athena/latest/ug/performance-tuning-s3-throttling-reduce-throttling-at-the-service-level.html>, "
        "<https://repost.aws/es/knowledge-center/http-5xx-errors-s3>.",
        "",
        "Prices:",
        "",
    ]
    lines += sources_table(["lambda_request", "lambda_arm_gb_s", "sfn_transition", "s3_get", "s3_put"])
    lines.append("")
    return "\n".join(lines)


def current_inputs() -> ScaleInputs:
    template = load_template(TEMPLATE)
    memory, timeout, chunk = worker_settings(template)
    max_concurrency, batching = distributed_map(json.loads(STATE_MACHINE.read_text()), template)
    csv_rate, cpu, parquet = bench_rates(json.loads(BATCH_RESULTS.read_text()))
    if not csv_rate:
        raise LookupError("bench/results/batch.json has no modelops runs: run `make bench` first")
    startup = startup_seconds(json.loads(ONLINE_RESULTS.read_text())) if ONLINE_RESULTS.exists() else {}
    return ScaleInputs(
        memory, timeout, max_concurrency, batching, BatchConfig.part_bytes, chunk, csv_rate, cpu, parquet, startup
    )


def stated_inputs(page: str) -> ScaleInputs | None:
    found = MARKER.search(page)
    return ScaleInputs(**json.loads(found.group(1))) if found else None
