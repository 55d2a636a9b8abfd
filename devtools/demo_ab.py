"""A/B test, end to end over the local API: train model B, split traffic between the champion (A) and B
with sticky per-customer assignment, send the true labels to POST /feedback, and print the report.

What is emulated, and how: the split document lives in a local file instead of AppConfig (the predict
function reads it through the same Powertools feature-flags code); the predict function runs with the
challenger pinned, as `sam deploy --parameter-overrides ChallengerVersion=<B>` would publish it; the
capture lines it prints are written to S3 the way the subscription filter and Firehose deliver them.
The feedback is the breast-cancer dataset's true labels.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
from dataclasses import replace
from typing import Any

from modelops.capture import feedback
from modelops.capture.labelled import join
from modelops.capture.records import PredictionLog, parse_records
from modelops.experiments import control as abcontrol
from modelops.experiments import report as abreport
from modelops.model.artifact import write_artifact
from modelops.model.dataset import load_builtin
from modelops.model.training import train
from modelops.registry import Registry

from modelops_cli.ab import print_report

from .demo import Demo
from .emulator import EmulatorPool
from .gateway import Gateway

SPLIT_PERCENT = 50.0
CUSTOMERS = 120
REQUESTS = 360


def _post(gateway: Gateway, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    try:
        conn.request(
            "POST",
            gateway.base_path + path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def run(demo: Demo) -> None:
    stack = demo.stack
    assert stack.gateway is not None
    s3 = stack.aws.client("s3")
    registry = Registry(stack.registry_uri(), s3=s3)
    model = stack._template().parameters().get("ModelName", "breast-cancer")
    champion = stack.champion or registry.resolve(model, "champion")
    work = stack.work_dir / "ab"
    work.mkdir(parents=True, exist_ok=True)

    demo.section("A/B test: champion (A) vs a HistGradientBoosting challenger (B)")
    dataset = load_builtin("breast_cancer")
    trained = train(dataset, model, estimator_kind="hgb")
    write_artifact(work / "model-b", trained.estimator, trained.manifest, trained.golden)
    challenger = registry.register(work / "model-b").version
    demo.out(
        f"trained and registered B = {model} {challenger} (held-out accuracy "
        f"{trained.manifest.metrics['accuracy']:.4f}); A = {champion}"
    )

    flags = work / "flags.json"
    started = abcontrol.start(registry, abcontrol.FilePublisher(flags), model, challenger, SPLIT_PERCENT)
    demo.out(f"$ modelops ab start {challenger} --split {SPLIT_PERCENT:g} --local {flags.name}")
    demo.out(f"  split document: {json.dumps(json.loads(flags.read_text()))}")

    spec = stack.function("PredictFunction")
    spec_b = replace(
        spec,
        environment={
            **spec.environment,
            "MODELOPS_CHALLENGER_VERSION": challenger,
            "MODELOPS_AB_CONFIG_FILE": str(flags),
            "MODELOPS_CAPTURE": "on",
        },
    )
    log_dir = work / "logs"
    log_dir.mkdir(exist_ok=True)
    demo.out("starting the predict function with the challenger pinned (ChallengerVersion parameter)")
    pool = EmulatorPool(spec_b, stack.aws.env(), size=2, log_dir=log_dir).start()
    original = stack.pools["PredictFunction"]
    stack.pools["PredictFunction"] = pool  # the local API now routes /predict to the A/B function
    try:
        _traffic(demo, stack.gateway, dataset, champion, challenger)
    finally:
        stack.pools["PredictFunction"] = original
        pool.stop()

    data_uri = stack.function("FeedbackFunction").environment["MODELOPS_DATA_URI"]
    bucket, prefix = data_uri[5:].split("/", 1)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    delivered = 0
    for log in sorted(log_dir.glob("*.log")):  # what the subscription filter + Firehose deliver
        body = log.read_bytes()
        delivered += sum(1 for _ in parse_records(body))
        s3.put_object(Bucket=bucket, Key=f"{prefix}/captures/date={day}/demo-{log.stem}.log", Body=body)
    demo.out(f"delivered {delivered} capture lines to {data_uri}/captures/")

    predictions = PredictionLog(bucket, prefix, s3).read()
    labelled = join(predictions, feedback.FeedbackStore(bucket, prefix, s3).read())
    manifest = registry.manifest(model, champion)
    report = abreport.build_report(abreport.ReportInput(manifest.task, predictions, labelled, manifest.classes[-1]))
    out_dir = work / "report"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "ab-report.json").write_text(json.dumps(report, indent=2, default=str))
    abreport.write_chart(report, out_dir / "ab-report.png")
    demo.out(f"\n$ modelops ab report --data {data_uri}")
    print_report(report, None)
    problems = []
    if report["variants"]["A"]["labelled"] + report["variants"]["B"]["labelled"] != REQUESTS:
        problems.append(
            f"expected {REQUESTS} labelled predictions, report has "
            f"{report['variants']['A']['labelled']} + {report['variants']['B']['labelled']}"
        )
    share = report["variants"]["B"]["share"]
    if not 0.3 < share < 0.7:
        problems.append(f"B got {share:.0%} of traffic with a {SPLIT_PERCENT:g}% split")
    if report["verdict"] not in (abreport.B_BETTER, abreport.B_WORSE, abreport.NOT_ENOUGH):
        problems.append(f"unknown verdict {report['verdict']!r}")
    abcontrol.stop(registry, abcontrol.FilePublisher(flags), model, reason="demo finished")
    demo.out(f"$ modelops ab stop   (split back to 0%; experiment of {started['challenger']} recorded in the registry)")
    for p in problems:
        demo.failures.append(f"A/B demo: {p}")
        demo.out(f"  !! {p}")


def _traffic(demo: Demo, gateway: Gateway, dataset: Any, champion: str, challenger: str) -> None:
    names = dataset.feature_names
    rows = dataset.X.tolist()
    demo.out(
        f"\nsending {REQUESTS} predictions for {CUSTOMERS} customers (header x-entity-id), "
        "then POST /feedback with each true label and the answer's label_token"
    )
    assigned: dict[str, str] = {}
    counts = {"A": 0, "B": 0}
    for i in range(REQUESTS):
        customer = f"customer-{i % CUSTOMERS:04d}"
        row = i % len(rows)
        status, answer = _post(
            gateway, "/predict", {"instances": [dict(zip(names, rows[row], strict=True))]}, {"x-entity-id": customer}
        )
        if status != 200:
            demo.failures.append(f"POST /predict for {customer}: HTTP {status} {answer}")
            continue
        variant, version = answer.get("variant"), answer.get("model", {}).get("version")
        if version != {"A": champion, "B": challenger}.get(variant):
            demo.failures.append(f"variant {variant} was served by model {version}")
        if assigned.setdefault(customer, variant) != variant:
            demo.failures.append(f"{customer} moved from {assigned[customer]} to {variant}: assignment is not sticky")
        counts[variant] = counts.get(variant, 0) + 1
        if i < 3:
            demo.out(f"  {customer}: variant {variant}, model {version}, prediction {answer['predictions'][0]}")
        fb_status, fb_answer = _post(
            gateway,
            "/feedback",
            {"entity_id": customer, "actual": str(dataset.y[row]), "label_token": answer.get("label_token")},
        )
        if fb_status != 202:
            demo.failures.append(f"POST /feedback: HTTP {fb_status} {fb_answer}")
    if assigned:  # a label for another customer's prediction is refused: the token is bound to its entity
        status, refused = _post(
            gateway, "/feedback", {"entity_id": "customer-x", "actual": "0", "label_token": answer.get("label_token")}
        )
        if status != 403:
            demo.failures.append(f"POST /feedback for another entity: HTTP {status} {refused} (expected 403)")
    on_b = sum(1 for v in assigned.values() if v == "B")
    demo.out(
        f"  requests per variant: {counts}; customers on B: {on_b}/{len(assigned)}; every customer kept its variant"
        if not any("sticky" in f for f in demo.failures)
        else ""
    )
