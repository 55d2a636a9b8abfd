"""docs/costs.md: what online predictions cost behind each front door, next to SageMaker, from the predict
function's memory in template.yaml, the measured warm handler times in bench/results/online.json and the
prices in devtools/prices.py.

    python -m devtools.costs      # rewrite docs/costs.md and docs/batch-scale.md
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.diagram import TEMPLATE, _function_kind, load_template
from devtools.prices import rate, sources_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "costs.md"
ONLINE_RESULTS = ROOT / "bench" / "results" / "online.json"
HOURS_PER_MONTH = 730  # 365 * 24 / 12, the month AWS's calculators use
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
CASES = (("lr_pipeline", 1), ("lr_pipeline", 100), ("hgb", 1), ("hgb", 100))
DOORS = ("rest", "http", "url")
DOOR_NAMES = {"rest": "REST API", "http": "HTTP API", "url": "function URL"}
DOOR_PRICES = {"rest": "apigw_rest_request", "http": "apigw_http_request", "url": "function_url_request"}
VOLUMES = (1e6, 10e6, 100e6)
SENSITIVITY_MS = (1, 2, 5, 10, 20, 50, 100)
# SageMaker runtime takes SigV4 only. A REST API can call it directly (AWS integration with an IAM role);
# an HTTP API has no SageMaker integration and a function URL only invokes Lambda, so both need a small
# proxy function that signs the call and waits for the answer.
PROXY_MEMORY_MB = 128
PROXY_OVERHEAD_MS = 10  # assumed, not measured: the proxy's own work plus the SageMaker round trip
LAMBDA_MB_PER_VCPU = 1769  # Lambda: one vCPU at 1,769 MB, in proportion below and above
REQUEST_KB = {1: 1.5, 100: 30.0}  # JSON request + response, for SageMaker's per-GB data charge (estimated)
MARKER = re.compile(r"<!-- inputs: (\{.*?\}) -->")


@dataclass(frozen=True)
class Inputs:
    memory_mb: int
    memory_source: str
    durations_ms: dict[str, float]  # case label -> warm handler median


def case_label(model: str, rows: int) -> str:
    return f"{model} {rows} row" + ("" if rows == 1 else "s")


def predict_memory(template: dict) -> tuple[int, str]:
    """The predict function's memory in MB and where it came from (parameter default, literal, Globals)."""
    resources = template.get("Resources") or {}
    parameters = template.get("Parameters") or {}
    for logical_id, res in resources.items():
        props = res.get("Properties") or {}
        if res.get("Type") != "AWS::Serverless::Function" or _function_kind(logical_id, props) != "predict":
            continue
        memory = props.get("MemorySize", (template.get("Globals") or {}).get("Function", {}).get("MemorySize"))
        if isinstance(memory, dict) and "Ref" in memory:
            name = memory["Ref"]
            return int(parameters[name]["Default"]), f"{logical_id}'s memory: the default of parameter `{name}`"
        if memory is not None:
            return int(memory), f"`MemorySize` of {logical_id}"
        return 128, f"{logical_id} sets no MemorySize: Lambda's default"
    raise LookupError("template.yaml has no predict function (functions/predict/)")


def warm_durations(results: Path = ONLINE_RESULTS) -> dict[str, float]:
    """Median warm handler time in ms of each case the online benchmark recorded (µs in the file)."""
    if not results.exists():
        return {}
    wanted = {case_label(m, r) for m, r in CASES}
    out: dict[str, float] = {}
    for row in json.loads(results.read_text()).get("rows", []):
        case, metric, value = row.get("case"), str(row.get("metric", "")), row.get("value")
        if case in wanted and metric == "handler median us" and isinstance(value, int | float):
            out[case] = value / 1000
    return out


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return max(1, math.ceil(duration_ms))


def lambda_usd(n: float, memory_mb: int, duration_ms: float) -> float:
    """On-demand Lambda (Arm): requests + GB-seconds."""
    gb_s = n * memory_mb / 1024 * billed_ms(duration_ms) / 1000
    return n * rate("lambda_request") + gb_s * rate("lambda_arm_gb_s")


def door_usd(n: float, door: str) -> float:
    return n * rate(DOOR_PRICES[door])


def proxy_usd(n: float, door: str, duration_ms: float) -> float:
    """The signing proxy function in front of SageMaker (none behind a REST API's AWS integration)."""
    return 0.0 if door == "rest" else lambda_usd(n, PROXY_MEMORY_MB, duration_ms + PROXY_OVERHEAD_MS)


def modelops_usd(n: float, door: str, memory_mb: int, duration_ms: float) -> float:
    return door_usd(n, door) + lambda_usd(n, memory_mb, duration_ms)


def sm_serverless_usd(n: float, door: str | None, memory_mb: int, duration_ms: float, rows: int) -> float:
    """SageMaker Serverless Inference given the same compute time; door None: a SigV4 caller inside AWS."""
    gb = min(max(math.ceil(memory_mb / 1024), 1), 6)  # 1-6 GB in 1 GB steps
    compute = n * gb * billed_ms(duration_ms) / 1000 * rate("sm_serverless_gb_s")
    data = n * REQUEST_KB[rows] / 1024**2 * rate("sm_serverless_data_gb")
    if door is None:
        return compute + data
    return compute + data + door_usd(n, door) + proxy_usd(n, door, duration_ms)


def sm_realtime_usd(n: float, door: str, duration_ms: float) -> float:
    """One ml.t3.medium real-time endpoint all month, plus what it takes to reach it publicly."""
    return rate("sm_ml_t3_medium_hour") * HOURS_PER_MONTH + door_usd(n, door) + proxy_usd(n, door, duration_ms)


def provisioned_usd(n: float, instances: float, memory_mb: int, duration_ms: float) -> float:
    """Provisioned concurrency kept all month (`instances` on average, for autoscaling), every request served by
    it (no front door)."""
    gb = memory_mb / 1024
    kept = instances * gb * SECONDS_PER_MONTH * rate("lambda_arm_pc_gb_s")
    used = n * gb * billed_ms(duration_ms) / 1000 * rate("lambda_arm_pc_duration_gb_s")
    return kept + used + n * rate("lambda_request")


BUSINESS_HOURS = 10  # a scheduled scale-up of the Autoscaled example: weekdays 08:00-18:00


def autoscaled_average(night: int, day: int, day_hours: int) -> float:
    """Average provisioned instances of a schedule holding `day` for `day_hours` each weekday, `night` otherwise."""
    day_share = 5 * day_hours / (7 * 24)
    return night + (day - night) * day_share


def snapstart_usd(n: float, memory_mb: int, duration_ms: float, restores: int, versions: int = 1) -> float:
    """On-demand + the snapshot cache of each published version kept + the restores (no front door)."""
    gb = memory_mb / 1024
    cache = versions * gb * SECONDS_PER_MONTH * rate("snapstart_cache_gb_s")
    return lambda_usd(n, memory_mb, duration_ms) + cache + restores * gb * rate("snapstart_restore_gb")


def provisioned_break_even() -> float:
    """Share of the provisioned time that must be busy for it to cost less than on-demand duration."""
    return rate("lambda_arm_pc_gb_s") / (rate("lambda_arm_gb_s") - rate("lambda_arm_pc_duration_gb_s"))


def usd(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.3f}"


def render(inputs: Inputs) -> str:
    mem = inputs.memory_mb
    cases = [(m, r, case_label(m, r)) for m, r in CASES if case_label(m, r) in inputs.durations_ms]
    dur = inputs.durations_ms
    marker = json.dumps(
        {"memory_mb": mem, "memory_source": inputs.memory_source, "durations_ms": dur}, ensure_ascii=False
    )
    lines = [
        "# Costs",
        "",
        "<!-- generated by `python -m devtools.costs` from template.yaml, bench/results and devtools/prices.py -->",
        f"<!-- inputs: {marker} -->",
        "",
        f"The predict function has **{mem} MB** ({inputs.memory_source}) on arm64. Each figure assumes the warm "
        "handler time the online benchmark measured (bench/results/online.json, median, in-process on the "
        "development machine), billed rounded up to the next millisecond:",
        "",
        "| case | measured | billed |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {dur[label]:.3f} ms | {billed_ms(dur[label])} ms |" for _, _, label in cases]
    lines += [
        "",
        f"On Lambda at {mem} MB a function has about {mem / LAMBDA_MB_PER_VCPU:.2f} of a vCPU, so the handler can "
        "run longer than measured here; [the duration table](#if-the-handler-runs-longer) shows what that costs. Prices: US East "
        "on-demand, without free tiers, from the [sources](#sources) below (read 2026-12-01).",
        "",
        "## Like with like: a public HTTPS endpoint",
        "",
        "SageMaker runtime (InvokeEndpoint) takes only SigV4-signed calls: SageMaker endpoints are not public. "
        "A public API in front of SageMaker Serverless needs a front door too: a REST API can call SageMaker "
        "directly (an AWS integration with an IAM role); an HTTP API has no SageMaker integration and a function "
        f"URL invokes only Lambda, so both need a proxy function ({PROXY_MEMORY_MB} MB, running the inference "
        f"time + {PROXY_OVERHEAD_MS} ms, assumed). modelops' `ApiType` picks the front door: `rest` (API keys "
        "and usage plans), `http`, `url` (no per-request charge).",
        "",
        "### Per 1M requests",
        "",
        "| case (billed) | option | REST API | HTTP API | function URL |",
        "|---|---|---:|---:|---:|",
    ]
    for _, rows, label in cases:
        d = dur[label]
        ours = " | ".join(usd(modelops_usd(1e6, door, mem, d)) for door in DOORS)
        theirs = " | ".join(usd(sm_serverless_usd(1e6, door, mem, d, rows)) for door in DOORS)
        lines.append(f"| {label} ({billed_ms(d)} ms) | **modelops: Lambda** | {ours} |")
        lines.append(f"| | SageMaker Serverless (1 GB) | {theirs} |")
    lines += [
        "",
        f"A SageMaker real-time endpoint on one ml.t3.medium costs {usd(rate('sm_ml_t3_medium_hour') * HOURS_PER_MONTH)} "
        "a month before its front door, whatever the traffic.",
    ]
    shown = [c for c in cases if c[2] in ("lr_pipeline 1 row", "hgb 100 rows")] or cases[:1]
    lines += [
        "",
        "### Per month, by traffic",
        "",
        "| case | requests per month | modelops REST | modelops HTTP | modelops URL | SageMaker Serverless "
        "+ REST | SageMaker Serverless + URL | SageMaker real-time ml.t3.medium 24x7 + REST |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, rows, label in shown:
        d = dur[label]
        for n in VOLUMES:
            cells = [usd(modelops_usd(n, door, mem, d)) for door in DOORS]
            cells += [usd(sm_serverless_usd(n, door, mem, d, rows)) for door in ("rest", "url")]
            cells.append(usd(sm_realtime_usd(n, "rest", d)))
            lines.append(f"| {label} | {n / 1e6:,.0f}M | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The front door is most of the serverless bill at these durations: $3.50 per million on a REST API, "
        "$1.00 on an HTTP API, nothing on a function URL. A real-time endpoint costs the same at 1M as at 100M "
        "requests while one instance keeps up, and has no second instance for availability in these figures.",
        "",
        "### If the handler runs longer",
        "",
        "Per 1M one-row requests, by billed duration (SageMaker given the same compute time):",
        "",
        "| billed | modelops URL | SageMaker Serverless + URL proxy | modelops REST | SageMaker Serverless + REST "
        "| SageMaker Serverless, SigV4 caller (no front door) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for ms in SENSITIVITY_MS:
        cells = [
            modelops_usd(1e6, "url", mem, ms),
            sm_serverless_usd(1e6, "url", mem, ms, 1),
            modelops_usd(1e6, "rest", mem, ms),
            sm_serverless_usd(1e6, "rest", mem, ms, 1),
            sm_serverless_usd(1e6, None, mem, ms, 1),
        ]
        lines.append(f"| {ms} ms | " + " | ".join(usd(c) for c in cells) + " |")
    lines += ["", crossover_sentence(mem), ""]
    lines += _cold_start_section(mem, dur.get("lr_pipeline 1 row", 1.0))
    lines += [
        "## Formulas",
        "",
        "```",
        "lambda        = N × request + N × (memory_MB / 1024) × (billed_ms / 1000) × arm_GB_s",
        "front door    = N × door_request            (REST $3.50/M, HTTP $1.00/M, function URL $0)",
        "sm_serverless = N × memory_GB × billed_ms / 1000 × sm_GB_s + N × KB / 1024² × data_GB + front door",
        f"              + proxy lambda (HTTP API, function URL: {PROXY_MEMORY_MB} MB × (billed_ms + {PROXY_OVERHEAD_MS} ms))",
        "real-time     = hourly × 730 h + front door (+ proxy)",
        "provisioned   = instances × memory_GB × 730 h × 3600 × pc_GB_s + N × request + N × GB-s × pc_duration",
        "snapstart     = lambda + versions × memory_GB × 730 h × 3600 × cache_GB_s + restores × memory_GB × restore",
        "```",
        "",
        f"Worked case (tests/project/test_costs.py checks it): 1M requests, {mem} MB, billed 1 ms, function URL: "
        f"1e6 × $0.0000002 + 1e6 × {mem / 1024:g} × 0.001 × $0.0000133334 = "
        f"{usd(modelops_usd(1e6, 'url', mem, 1))}.",
        "",
        "## Assumptions",
        "",
        "- Warm invocations. A new execution environment adds its init time once (see the cold-start modes).",
        "- The durations are in-process medians on a 2-core development machine, not Lambda measurements.",
        f"- SageMaker data processed: {REQUEST_KB[1]} KB per 1-row and {REQUEST_KB[100]:g} KB per 100-row request "
        "(in + out), estimated. Its model server adds its own overhead, so its figures are lower bounds.",
        "- Not included: data transfer out, CloudWatch Logs (about $0.50 per GB ingested: the predict function "
        "writes one metrics line per request, and online capture goes to Firehose), WAF, custom domains, the "
        "free tiers (Lambda: 1M requests and 400,000 GB-s a month; API Gateway: 1M calls a month for 12 months).",
        "- REST API pricing falls to $2.80 per million above 333M requests a month, HTTP API to $0.90 above 300M.",
        "",
        "## Sources",
        "",
    ]
    lines += sources_table(
        [
            "lambda_request",
            "lambda_arm_gb_s",
            "lambda_arm_pc_gb_s",
            "lambda_arm_pc_duration_gb_s",
            "snapstart_cache_gb_s",
            "snapstart_restore_gb",
            "apigw_rest_request",
            "apigw_http_request",
            "function_url_request",
            "sm_serverless_gb_s",
            "sm_serverless_data_gb",
            "sm_ml_t3_medium_hour",
            "logs_ingest_gb",
        ]
    )
    lines += [
        "",
        'SageMaker takes SigV4 only: the InvokeEndpoint reference ("Calls to InvokeEndpoint are authenticated by '
        'using AWS Signature Version 4 ... Endpoints are scoped to an individual account, and are not public", '
        "quoted at <https://docs.rs/rusoto_sagemaker_runtime/0.40.0/rusoto_sagemaker_runtime/trait.SageMakerRuntime.html>). "
        "A REST API calling a SageMaker endpoint through an AWS integration: "
        "<https://pypi.org/project/aws-solutions-constructs.aws-apigateway-sagemakerendpoint> (AWS Solutions "
        "Constructs). HTTP API integrations: EventBridge, SQS, AppConfig, Kinesis and Step Functions only "
        "(<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-aws-services-reference.html>).",
        "",
        "Batch scoring at scale (a billion rows in one night): [batch-scale.md](batch-scale.md).",
        "",
    ]
    return "\n".join(lines)


def rest_crossover_ms(mem: int, rows: int = 1) -> float | None:
    """Duration at which SageMaker Serverless behind a REST API costs the same as the Lambda behind one.

    Both pay the REST request; the Lambda adds its request charge, SageMaker its data charge, and each a
    per-second rate (SageMaker's per GB is higher), so they cross once. None if SageMaker is never dearer.
    """
    sm_gb = min(max(math.ceil(mem / 1024), 1), 6)
    per_second = sm_gb * rate("sm_serverless_gb_s") - mem / 1024 * rate("lambda_arm_gb_s")
    fixed = rate("lambda_request") - REQUEST_KB[rows] / 1024**2 * rate("sm_serverless_data_gb")
    return fixed / per_second * 1000 if per_second > 0 and fixed > 0 else None


def crossover_sentence(mem: int) -> str:
    url_dearer = all(
        sm_serverless_usd(1e6, "url", mem, ms, 1) > modelops_usd(1e6, "url", mem, ms) for ms in SENSITIVITY_MS
    )
    text = (
        "Behind a function URL, SageMaker Serverless costs more than the Lambda at every duration here: its proxy "
        "alone pays Lambda's request charge, then waits out the inference."
        if url_dearer
        else "Behind a function URL, SageMaker Serverless costs less than the Lambda at some durations here."
    )
    cross = rest_crossover_ms(mem)
    text += (
        f" Behind a REST API, which calls SageMaker without a proxy, SageMaker costs less below about {cross:.0f} ms "
        "(billed) and more above."
        if cross
        else " Behind a REST API, which calls SageMaker without a proxy, SageMaker costs less at any duration."
    )
    return text + " Only a caller that signs its own SigV4 requests inside AWS reaches SageMaker without a front door."


def _cold_start_section(mem: int, duration_ms: float) -> list[str]:
    n = 10e6
    rows = [
        ("OnDemand", lambda_usd(n, mem, duration_ms), "requests + duration"),
        (
            "SnapStart, 1 version, 1,000 restores",
            snapstart_usd(n, mem, duration_ms, restores=1000),
            "OnDemand + snapshot cache 730 h + restores",
        ),
        (
            "Provisioned, 1 instance",
            provisioned_usd(n, 1, mem, duration_ms),
            "kept 730 h + requests + duration at the PC rate",
        ),
        ("Provisioned, 2 instances", provisioned_usd(n, 2, mem, duration_ms), "as above, twice the kept capacity"),
        (
            f"Autoscaled, 1 instance, 2 for {BUSINESS_HOURS} h on weekdays",
            provisioned_usd(n, autoscaled_average(1, 2, BUSINESS_HOURS), mem, duration_ms),
            f"the instance-hours held (on average {autoscaled_average(1, 2, BUSINESS_HOURS):.2f} instances)",
        ),
    ]
    lines = [
        "## Cold-start modes",
        "",
        f"`PredictScalingMode` at 10M requests a month of lr_pipeline 1 row ({billed_ms(duration_ms)} ms billed), "
        f"{mem} MB, without the front door (the same for all modes):",
        "",
        "| mode | per month | what you pay for |",
        "|---|---:|---|",
    ]
    lines += [f"| {name} | {usd(cost)} | {what} |" for name, cost, what in rows]
    lines += [
        "",
        "A SnapStart snapshot is cached for every published version that keeps one, so old versions left "
        "published add to it. Provisioned concurrency costs less than on-demand duration only while its "
        f"instances are busy more than {provisioned_break_even():.0%} of the time; at millisecond handlers one "
        "instance serves far more than this traffic, so here it buys latency, not savings.",
        "",
    ]
    return lines


def current_inputs() -> Inputs:
    memory, memory_source = predict_memory(load_template(TEMPLATE))
    durations = warm_durations()
    if not durations:
        raise LookupError("bench/results/online.json has no 'handler median us' rows: run `make bench` first")
    return Inputs(memory, memory_source, durations)


def stated_inputs(page: str) -> Inputs | None:
    """The inputs a generated page was rendered from (its inputs comment)."""
    found = MARKER.search(page)
    if not found:
        return None
    data = json.loads(found.group(1))
    return Inputs(int(data["memory_mb"]), data["memory_source"], {k: float(v) for k, v in data["durations_ms"].items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.costs", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    from devtools import batch_scale

    try:
        inputs = current_inputs()
        scale = batch_scale.current_inputs()
    except LookupError as exc:
        print(f"costs: {exc}", file=sys.stderr)
        return 2
    OUT.write_text(render(inputs))
    batch_scale.OUT.write_text(batch_scale.render(scale))
    print(f"wrote {OUT.relative_to(ROOT)} and {batch_scale.OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
