"""The AWS prices docs/costs.md and docs/batch-scale.md are computed from, each with where it was read.

Every figure names its source and what the source says, so a reader can check it. `stated` is the date the
source itself gives (None: it states none). `kind` says how far to trust it:

- "aws": read on an AWS page or AWS sample code;
- "third-party": read on a third-party page quoting AWS's rate;
- "unverified": no stored page with the figure was found; the commonly published figure, to be checked.

The official rate tables (aws.amazon.com/lambda/pricing, /s3/pricing) fill their numbers in client-side,
so their stored text has no figures; rates are taken from the pages that quote them. US East (N. Virginia)
on-demand rates, without free tiers, unless a row says otherwise. Prices read 2026-12-01.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_ON = "2026-12-01"


@dataclass(frozen=True)
class Price:
    value: float
    unit: str
    source: str
    quote: str
    stated: str | None = None
    kind: str = "aws"  # aws | third-party | unverified


SM_SAMPLES = (
    "https://github.com/aws-samples/sagemaker-serverless-inference-benchmarking/blob/"
    "fb31311c144976e5baf3c60b08df9553e7f07708/sm_serverless_benchmarking/cost_constants.py"
)
APIGW_WHITEPAPER = (
    "https://docs.aws.amazon.com/pt_br/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
    "cost-optimization.html"
)
SNAPSTART_BLOG = "https://awsnegotiations.com/blog/lambda-snapstart-cost-impact/"

PRICES: dict[str, Price] = {
    "lambda_request": Price(
        0.20 / 1e6,
        "Lambda, per request ($0.20 per 1M, x86 and Arm)",
        "https://git.mcrn.ar/mariano/lambda_local_runner/src/branch/main/docs/lambdas-md/lambda-13-cost.md?display=source",
        "Requests: $0.20 / 1M (x86_64 and arm64)",
        kind="third-party",
    ),
    "lambda_arm_gb_s": Price(
        0.0000133334,
        "Lambda Arm duration, per GB-second (first 7.5 billion GB-s a month)",
        "https://cloudchipr.com/blog/aws-lambda-pricing",
        "ARM Pricing - First 7.5 Billion GB-seconds per month: $0.0000133334 per GB-second",
        stated="2024 (title: Ultimate Guide 2024)",
        kind="third-party",
    ),
    "lambda_arm_pc_gb_s": Price(
        0.0000033334,
        "Lambda Arm provisioned concurrency, per GB-second configured",
        "https://awsnegotiations.com/lambda-provisioned-concurrency-cost.html",
        "(arm64 PC: ~$0.0000033334 per GB-second.)",
        kind="third-party",
    ),
    "lambda_arm_pc_duration_gb_s": Price(
        0.0000077778,
        "Lambda Arm duration on provisioned concurrency, per GB-second",
        "https://awsnegotiations.com/lambda-provisioned-concurrency-cost.html",
        "only the x86 rate is stated (~$0.0000097222); the Arm figure is the commonly published one",
        kind="unverified",
    ),
    "snapstart_cache_gb_s": Price(
        0.0000015046,
        "Lambda SnapStart cache, per GB-second for each published version with a snapshot",
        SNAPSTART_BLOG,
        "cache: $0.0000015046 per GB-second (approximate, no region)",
        stated="May 2026",
        kind="third-party",
    ),
    "snapstart_restore_gb": Price(
        0.0001397998,
        "Lambda SnapStart restore, per GB restored",
        SNAPSTART_BLOG,
        "restore: $0.0001397998 per GB (approximate, no region)",
        stated="May 2026",
        kind="third-party",
    ),
    "apigw_rest_request": Price(
        3.50 / 1e6,
        "API Gateway REST API, per request ($3.50 per 1M, first 333M a month)",
        APIGW_WHITEPAPER,
        "REST ... First 333 million requests (per month): $3.50 (per million)",
    ),
    "apigw_http_request": Price(
        1.00 / 1e6,
        "API Gateway HTTP API, per request ($1.00 per 1M, first 300M a month; metered in 512 KB steps)",
        APIGW_WHITEPAPER,
        "HTTP ... API calls (us-east-1); First 300 million requests (per month): $1.00 (per million)",
    ),
    "function_url_request": Price(
        0.0,
        "Lambda function URL, per request (only the function's own requests and duration are billed)",
        "https://iamanuragh.in/blog/2026-03-17-lambda-function-urls-stop-paying-for-api-gateway",
        "Lambda Function URL: $0.00 per million requests (Lambda cost only!)",
        stated="2026-03-17",
        kind="third-party",
    ),
    "sm_serverless_gb_s": Price(
        0.0000200,
        "SageMaker Serverless Inference, per second of inference per GB of memory",
        SM_SAMPLES,
        "INFERENCE_COST = {1024: 0.0000200 / 1000, 2048: 0.0000400 / 1000, ... 6144: 0.0001200 / 1000} (per ms)",
    ),
    "sm_serverless_data_gb": Price(
        0.016,
        "SageMaker Serverless Inference, per GB processed (in + out)",
        SM_SAMPLES,
        "PROCESSING_COST = 0.016 / (1024**3)",
    ),
    "sm_ml_t3_medium_hour": Price(
        0.05,
        "SageMaker real-time endpoint, ml.t3.medium instance-hour (the smallest CPU instance listed)",
        "https://www.wring.co/blog/aws-sagemaker-inference-guide",
        "Real-Time Endpoints start at $0.05/hr (ml.t3.medium) but run 24/7",
        stated="2026-03-15",
        kind="third-party",
    ),
    "sfn_transition": Price(
        0.025 / 1000,
        "Step Functions Standard, per state transition ($0.025 per 1,000)",
        "https://aws.amazon.com/step-functions/pricing/",
        "Price per 1,000 state transitions: US East (N. Virginia) $0.0250",
    ),
    "s3_get": Price(
        0.0004 / 1000,
        "S3 Standard GET, per request ($0.0004 per 1,000)",
        "https://aws.amazon.com/s3/pricing/",
        "request prices are unrendered template tokens in the stored page; commonly published figure",
        kind="unverified",
    ),
    "s3_put": Price(
        0.005 / 1000,
        "S3 Standard PUT/COPY/POST/LIST, per request ($0.005 per 1,000)",
        "https://aws.amazon.com/s3/pricing/",
        "request prices are unrendered template tokens in the stored page; commonly published figure",
        kind="unverified",
    ),
    "logs_ingest_gb": Price(
        0.50,
        "CloudWatch Logs ingestion, Standard log class, per GB",
        "https://c3x.dev/blog/cloudwatch-logs-cost-optimization",
        "us-east-1, June 2026: Standard log class - Ingestion: $0.50 per GB",
        stated="June 2026",
        kind="third-party",
    ),
}


def rate(name: str) -> float:
    return PRICES[name].value


def _value(price: Price) -> str:
    if "per request" in price.unit and 0 < price.value < 1e-3:
        return f"${price.value * 1e6:g} per 1M"
    return "$" + f"{price.value:.10f}".rstrip("0").rstrip(".")


def sources_table(names: list[str]) -> list[str]:
    """Markdown rows: each price, its value, where it was read, what that page says, the date it states."""
    lines = [
        f"Read {READ_ON}. *unverified*: no stored page with the figure was found; the commonly published figure.",
        "",
        "| price | value | source | the source says | date stated |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        p = PRICES[name]
        value = _value(p) + (" *unverified*" if p.kind == "unverified" else "")
        lines.append(f"| {p.unit} | {value} | <{p.source}> | {p.quote} | {p.stated or 'none'} |")
    return lines
