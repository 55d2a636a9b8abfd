"""docs/costs.md: what 1M online predictions cost on Lambda + API Gateway, next to SageMaker Serverless Inference
and a SageMaker real-time endpoint, from the predict function's memory in template.yaml and the measured warm
duration in bench/results/online.json.

Prices are the ones the cited pages state (US East, on-demand, without free tiers); edit PRICES when they change.

    python -m devtools.costs [--duration-ms MS]   # rewrite docs/costs.md
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

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "costs.md"
ONLINE_RESULTS = ROOT / "bench" / "results" / "online.json"
HOURS_PER_MONTH = 730  # 365 * 24 / 12, the month AWS's calculators use
REQUEST_KB = 1.5  # one-row JSON request plus response, for SageMaker's per-GB data charge


@dataclass(frozen=True)
class Price:
    value: float
    unit: str
    source: str
    quote: str  # what the source says, so a reader can check it


SM_SAMPLES = (
    "https://github.com/aws-samples/sagemaker-serverless-inference-benchmarking/blob/"
    "fb31311c144976e5baf3c60b08df9553e7f07708/sm_serverless_benchmarking/cost_constants.py"
)
PRICES = {
    "lambda_arm_gb_s": Price(
        0.0000133334,
        "USD per GB-second (Arm, first 7.5 billion GB-s per month)",
        "https://cloudchipr.com/blog/aws-lambda-pricing",
        "ARM Pricing - First 7.5 Billion GB-seconds per month: $0.0000133334 per GB-second (US East, N. Virginia)",
    ),
    "lambda_request": Price(
        0.20 / 1e6,
        "USD per request ($0.20 per 1M, x86 and Arm)",
        "https://git.mcrn.ar/mariano/lambda_local_runner/src/branch/main/docs/lambdas-md/lambda-13-cost.md?display=source",
        "Requests: $0.20 / 1M (x86_64 and arm64); Duration arm64: $0.0000133334 / GB-s",
    ),
    "apigw_rest_request": Price(
        3.50 / 1e6,
        "USD per request ($3.50 per 1M, first 333M per month)",
        "https://docs.aws.amazon.com/pt_br/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
        "cost-optimization.html",
        "REST API calls: First 333 million requests (per month): $3.50 (per million)",
    ),
    "sm_serverless_gb_s": Price(
        0.0000200,
        "USD per second of inference per GB of memory (1024 MB: $0.0000200/s ... 6144 MB: $0.0001200/s)",
        SM_SAMPLES,
        "INFERENCE_COST = {1024: 0.0000200 / 1000, 2048: 0.0000400 / 1000, ... 6144: 0.0001200 / 1000} (per ms)",
    ),
    "sm_serverless_data_gb": Price(
        0.016,
        "USD per GB processed (in + out)",
        SM_SAMPLES,
        "PROCESSING_COST = 0.016 / (1024**3)",
    ),
    "sm_ml_t2_medium_hour": Price(
        0.056,
        "USD per instance-hour, ml.t2.medium real-time endpoint",
        SM_SAMPLES,
        'MONTHLY_INSTANCE_COST = {"ml.t2.medium": 0.056*24*30, ...}',
    ),
    "sm_ml_m5_large_hour": Price(
        0.115,
        "USD per instance-hour, ml.m5.large real-time endpoint",
        "https://randeepbhatia.com/courses/aws-serverless-ml/sagemaker-serverless",
        "Hourly instance pricing: $0.115/hour for ml.m5.large and up",
    ),
}


@dataclass(frozen=True)
class Inputs:
    memory_mb: int
    memory_source: str
    duration_ms: float
    duration_source: str


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


def warm_duration_ms(results: Path = ONLINE_RESULTS) -> tuple[float, str] | None:
    """Median warm handler time for a one-row request, in ms, if the online benchmark recorded one."""
    if not results.exists():
        return None
    data = json.loads(results.read_text())
    for row in data.get("rows", []):
        case, metric = str(row.get("case", "")).lower(), str(row.get("metric", "")).lower()
        if not re.search(r"\b1[ -]row", case) or "handler" not in f"{case} {metric}":
            continue
        value = row.get("value")
        if not isinstance(value, int | float):
            continue
        if re.search(r"\b(µs|us)\b", metric):
            return value / 1000, f"bench/results/online.json, {row['case']}: {value:g} µs"
        if re.search(r"\bms\b", metric):
            return float(value), f"bench/results/online.json, {row['case']}: {value:g} ms"
    return None


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return max(1, math.ceil(duration_ms))


def per_million(inputs: Inputs) -> dict[str, float]:
    """USD for 1M one-row predictions (free tiers left out)."""
    gb = inputs.memory_mb / 1024
    seconds = billed_ms(inputs.duration_ms) / 1000
    sm_gb = min(max(math.ceil(gb), 1), 6)  # Serverless Inference memory: 1-6 GB in 1 GB steps
    return {
        "lambda_requests": 1e6 * PRICES["lambda_request"].value,
        "lambda_duration": 1e6 * gb * seconds * PRICES["lambda_arm_gb_s"].value,
        "api_gateway": 1e6 * PRICES["apigw_rest_request"].value,
        "sm_serverless_compute": 1e6 * sm_gb * seconds * PRICES["sm_serverless_gb_s"].value,
        "sm_serverless_data": 1e6 * REQUEST_KB / 1024**2 * PRICES["sm_serverless_data_gb"].value,
        "sm_serverless_memory_gb": sm_gb,
    }


def monthly(inputs: Inputs, predictions_per_month: float) -> dict[str, float]:
    unit = per_million(inputs)
    lam = unit["lambda_requests"] + unit["lambda_duration"] + unit["api_gateway"]
    sm = unit["sm_serverless_compute"] + unit["sm_serverless_data"]
    millions = predictions_per_month / 1e6
    return {
        "lambda_api": lam * millions,
        "sm_serverless": sm * millions,
        "ml.t2.medium": PRICES["sm_ml_t2_medium_hour"].value * HOURS_PER_MONTH,
        "ml.m5.large": PRICES["sm_ml_m5_large_hour"].value * HOURS_PER_MONTH,
    }


def _usd(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.3f}"


def render(inputs: Inputs) -> str:
    unit = per_million(inputs)
    lam = unit["lambda_requests"] + unit["lambda_duration"]
    sm = unit["sm_serverless_compute"] + unit["sm_serverless_data"]
    gb = inputs.memory_mb / 1024
    ms = billed_ms(inputs.duration_ms)
    t2 = PRICES["sm_ml_t2_medium_hour"].value * HOURS_PER_MONTH
    m5 = PRICES["sm_ml_m5_large_hour"].value * HOURS_PER_MONTH
    volumes = [1e6, 10e6, 100e6]
    rows = [monthly(inputs, v) for v in volumes]
    sens = [(d, per_million(Inputs(inputs.memory_mb, "", d, ""))) for d in (10, 100)]
    lines = [
        "# Costs: 1M online predictions",
        "",
        "<!-- generated by `python -m devtools.costs` from template.yaml and bench/results; edit devtools/costs.py -->",
        "",
        f"Inputs: the predict function has **{inputs.memory_mb} MB** ({inputs.memory_source}) on arm64, and a "
        f"one-row request runs for **{inputs.duration_ms:.3g} ms** warm ({inputs.duration_source}), billed as "
        f"**{ms} ms** because Lambda rounds duration up to the next millisecond. Prices are on-demand rates as "
        "quoted by the sources below (the Lambda source states US East, N. Virginia; the others state no region), "
        "without free tiers.",
        "",
        "## Per 1M predictions",
        "",
        "| option | cost per 1M predictions | what you pay for |",
        "|---|---:|---|",
        f"| Lambda (arm64, {inputs.memory_mb} MB) | {_usd(lam)} | {_usd(unit['lambda_requests'])} requests + "
        f"{_usd(unit['lambda_duration'])} duration |",
        f"| API Gateway REST API | {_usd(unit['api_gateway'])} | requests |",
        f"| **modelops: Lambda + API Gateway** | **{_usd(lam + unit['api_gateway'])}** | nothing when idle |",
        f"| SageMaker Serverless Inference ({unit['sm_serverless_memory_gb']} GB) | {_usd(sm)} | "
        f"{_usd(unit['sm_serverless_compute'])} compute + {_usd(unit['sm_serverless_data'])} data; nothing when idle |",
        f"| SageMaker real-time, 1 × ml.t2.medium, 24x7 | {_usd(t2)} per month | the instance, however few requests |",
        f"| SageMaker real-time, 1 × ml.m5.large, 24x7 | {_usd(m5)} per month | the instance, however few requests |",
        "",
        "## Per month, by traffic",
        "",
        "| predictions per month | Lambda + API Gateway | SageMaker Serverless | ml.t2.medium 24x7 | ml.m5.large 24x7 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for volume, row in zip(volumes, rows, strict=True):
        lines.append(
            f"| {volume / 1e6:,.0f}M | {_usd(row['lambda_api'])} | {_usd(row['sm_serverless'])} | "
            f"{_usd(row['ml.t2.medium'])} | {_usd(row['ml.m5.large'])} |"
        )
    lines += [
        "",
        "API Gateway's $3.50 per million requests is most of the serverless bill at this duration. A single "
        "always-on instance costs the same whether it serves 1M or 100M predictions, as long as one instance "
        "keeps up; it is the cheapest option only at sustained high volume, and it has no second instance for "
        "availability in these figures.",
        "",
        "## Formulas",
        "",
        "```",
        "lambda      = N × request_price + N × (memory_MB / 1024) × (billed_ms / 1000) × arm_GB_second_price",
        "api_gateway = N × rest_request_price",
        "sm_serverless = N × memory_GB × (billed_ms / 1000) × per_GB_second_price + N × request_KB / 1024² × data_price",
        "endpoint    = hourly_price × 730 hours per month × instances",
        "```",
        "",
        f"With N = 1,000,000, memory = {inputs.memory_mb} MB ({gb:g} GB), billed = {ms} ms:",
        f"Lambda duration = 1e6 × {gb:g} × {ms / 1000:g} × {PRICES['lambda_arm_gb_s'].value} = "
        f"{_usd(unit['lambda_duration'])}.",
        "",
        "If the handler ran longer, only the duration terms grow:",
        "",
        "| billed duration | Lambda + API Gateway per 1M | SageMaker Serverless per 1M |",
        "|---:|---:|---:|",
        f"| {ms} ms | {_usd(lam + unit['api_gateway'])} | {_usd(sm)} |",
    ]
    for d, u in sens:
        total = u["lambda_requests"] + u["lambda_duration"] + u["api_gateway"]
        lines.append(f"| {d} ms | {_usd(total)} | {_usd(u['sm_serverless_compute'] + u['sm_serverless_data'])} |")
    lines += [
        "",
        "## Assumptions",
        "",
        "- One row per request; a request with 100 rows costs the same requests and a little more duration.",
        "- The warm duration is the benchmark's in-process median on the development machine, not a Lambda "
        "measurement. CPU share grows with memory on Lambda, so at this memory the handler can run several times "
        "longer; the table above shows what 10 ms and 100 ms would cost.",
        "- Warm invocations only. A cold start adds its init time for each new execution environment; with steady "
        "traffic environments are reused, so this is a small share. Provisioned concurrency, if enabled, is billed "
        "separately and is not included.",
        f"- SageMaker Serverless is given the same compute time as the Lambda handler and the smallest memory size "
        f"that is at least the function's ({unit['sm_serverless_memory_gb']} GB); its model server adds its own "
        f"overhead, so its figure is a lower bound. Data processed is {REQUEST_KB} KB per request (in + out). It "
        "is called with SigV4 (IAM) through the SageMaker runtime, so no API Gateway is counted for it.",
        "- Real-time endpoints: one instance, on-demand, 730 hours a month; storage, data transfer and a second "
        "instance for availability are not included.",
        "- Lambda's free tier (1M requests and 400,000 GB-seconds a month) and API Gateway's 12-month free tier "
        "(1M REST calls a month) would make the first million nearly free; they are left out to compare rates.",
        "- Prices change and differ by region: check the AWS pricing pages for Lambda, API Gateway and SageMaker "
        "before relying on these figures.",
        "",
        "## Sources",
        "",
        "| price | value | source | the source says |",
        "|---|---|---|---|",
    ]
    for price in PRICES.values():
        value = (
            f"{price.value * 1e6:g} per 1M" if price.value < 1e-5 and "request" in price.unit else f"{price.value:g}"
        )
        lines.append(f"| {price.unit} | {value} | <{price.source}> | {price.quote} |")
    lines += [
        "",
        "Free tiers: <https://notes.kodekloud.com/docs/AWS-Lambda/Understanding-Lambda/Pricing> (Lambda: 1 million "
        "requests and 400,000 GB-seconds a month) and <https://aws.amazon.com/api-gateway/pricing/> (one million "
        "REST API calls a month for up to 12 months, new customers).",
        "",
        "The official rate tables (<https://aws.amazon.com/lambda/pricing/>, <https://aws.amazon.com/sagemaker/pricing/>) "
        "did not come with their figures in the text found for them (the Lambda page fills its tables in client-side), "
        "so the rates above are taken from the pages that quote them; the SageMaker figures come from an AWS sample "
        "repository and a course page and carry no region or date, so treat them as indicative.",
        "",
    ]
    return "\n".join(lines)


def current_inputs(duration_ms: float | None = None) -> Inputs:
    memory, memory_source = predict_memory(load_template(TEMPLATE))
    if duration_ms is not None:
        return Inputs(memory, memory_source, duration_ms, "given with --duration-ms")
    measured = warm_duration_ms()
    if measured:
        return Inputs(memory, memory_source, measured[0], measured[1])
    return Inputs(memory, memory_source, 1.0, "assumed: no one-row handler time in bench/results/online.json yet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.costs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-ms", type=float, help="warm handler duration to assume instead of the benchmark")
    args = parser.parse_args(argv)
    try:
        inputs = current_inputs(args.duration_ms)
    except LookupError as exc:
        print(f"costs: {exc}", file=sys.stderr)
        return 2
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(inputs))
    print(f"wrote {OUT.relative_to(ROOT)} ({inputs.memory_mb} MB, {inputs.duration_ms:.3g} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
