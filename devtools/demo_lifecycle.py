"""The lifecycle loop, run locally end to end with the real handlers (predict, monitor, retrain) on an
in-process AWS emulator (moto):

    1. v1 serves
    2. drifted traffic and labels arrive
    3. the metric crosses the threshold and the alarm event fires
    4. the retrain runs and v2 goes out as a canary
    5. v2 is promoted

What is emulated, and how: the capture lines the predict handler prints are written to S3 the way the
subscription filter and Firehose deliver them; EMF lines are turned into PutMetricData; the emulator does
not evaluate alarms, so the alarm is evaluated here and its EventBridge event built from the same shape as
events/alarm-state-change.json; CloudFormation and CodeDeploy are not available, so where AWS updates the
stack a local deployer publishes the pinned Lambda version and shifts the `live` alias weights itself (no
PreTraffic hook, no rollback alarms), and the stack-update event that ends a rollout is built by hand.

Run: python -m devtools.demo_lifecycle
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUCKET = "modelops-demo"
TRUSTED_KEY = "training-data/trusted/scanner-b.csv"
MODEL = "breast-cancer"
FUNCTION = "modelops-PredictFunction"
STACK = "modelops-local"
QUALITY_THRESHOLD = 0.93
DRIFT_THRESHOLD = 0.25
DRIFT_FACTOR = 1.3
CONTEXT = SimpleNamespace(
    function_name="demo",
    memory_limit_in_mb=1024,
    aws_request_id="demo",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:demo",
)


def _handler(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"demo_{name}_app", REPO / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quiet(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run a handler, keeping what it prints (logs, EMF and capture lines) for the demo to use."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn()
    return result, buffer.getvalue().splitlines()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _predict_event(instances: list[dict[str, Any]]) -> dict[str, Any]:
    event = json.loads((REPO / "events" / "predict-valid.json").read_text())
    event["body"] = json.dumps({"instances": instances})
    event.setdefault("requestContext", {})["requestId"] = str(uuid.uuid4())  # API Gateway's id per request
    return event


class Demo:
    def __init__(self, out: Callable[[str], None] = print):
        self.out = out
        self.cache = tempfile.mkdtemp(prefix="modelops-demo-")

    def step(self, n: int, title: str) -> None:
        self.out(f"\n[{n}/5] {title}")

    def say(self, text: str) -> None:
        self.out(f"      {text}")

    # ---- serving --------------------------------------------------------------------------------
    def serve(self, version: str, rows: list[dict[str, Any]]) -> tuple[list[Any], list[str]]:
        """Requests through the real predict handler pinned to `version`; returns answers + capture lines."""
        with _environment({"MODELOPS_MODEL_VERSION": version, "MODELOPS_CAPTURE": "on"}):
            predict = _handler("predict")
            answers, lines = [], []
            for row in rows:
                response, printed = _quiet(lambda row=row: predict.lambda_handler(_predict_event([row]), CONTEXT))
                if response["statusCode"] != 200:
                    raise RuntimeError(f"predict answered {response['statusCode']}: {response['body']}")
                answers.append(json.loads(response["body"]))
                lines.extend(line for line in printed if '"capture":true' in line)
        return answers, lines

    def deliver_captures(self, lines: list[str]) -> str:
        """What the subscription filter + Firehose do in AWS: gzip the capture lines into the data prefix."""
        key = f"data/captures/date={time.strftime('%Y-%m-%d', time.gmtime())}/firehose-{time.time_ns()}.gz"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(("\n".join(lines) + "\n").encode()))
        return key

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> int:
        import boto3
        import numpy as np
        from modelops.capture.feedback import FeedbackStore
        from modelops.model.artifact import write_artifact
        from modelops.model.dataset import load_builtin
        from modelops.model.training import train
        from modelops.registry import CHAMPION, Registry
        from modelops.rollout.deploy import AliasShiftDeployer, LambdaVersions, PinNames, SsmPins
        from modelops.wiring import retrain as lifecycle

        from devtools.lifecycle_sim import WRITERS, drifted_rows, trusted_rows_csv
        from devtools.stand_in_function import create_stand_in_function

        self.s3 = boto3.client("s3")
        self.s3.create_bucket(Bucket=BUCKET)
        registry = Registry(f"s3://{BUCKET}/registry", s3=self.s3)
        ssm, lam, cw = boto3.client("ssm"), boto3.client("lambda"), boto3.client("cloudwatch")
        pin = SsmPins(ssm, PinNames(STACK, MODEL))
        dataset = load_builtin("breast_cancer")
        names = dataset.feature_names

        # 1 -------------------------------------------------------------------------------------
        self.step(1, "v1 serves")
        with tempfile.TemporaryDirectory() as tmp:
            trained = train(dataset, MODEL)
            write_artifact(tmp, trained.estimator, trained.manifest, trained.golden, trained.evaluation)
            v1 = registry.register(tmp).version
        registry.set_alias(MODEL, CHAMPION, v1, reason="first model", trigger="demo")
        pin.put(v1)
        create_stand_in_function(lam, FUNCTION, {"MODELOPS_MODEL_VERSION": pin.get()})
        lam.create_alias(
            FunctionName=FUNCTION, Name="live", FunctionVersion=lam.publish_version(FunctionName=FUNCTION)["Version"]
        )
        self.say(f"trained and registered {MODEL} {v1} (holdout accuracy {trained.manifest.metrics['accuracy']:.3f})")
        self.say(f"champion pinned in SSM {pin.name} = {pin.get()}; predict function version 1 behind alias `live`")
        rows = [dict(zip(names, r, strict=True)) for r in dataset.X[:3].tolist()]
        answers, _ = self.serve(pin.get(), rows)
        for a, truth in zip(answers, dataset.y[:3], strict=True):
            self.say(f"POST /predict -> {a['predictions'][0]:<9} (true: {truth}) served by {a['model']['version']}")

        # 2 -------------------------------------------------------------------------------------
        self.step(2, "drifted traffic and labels arrive")
        X, y = drifted_rows(dataset, 400, DRIFT_FACTOR)
        self.say(f"a new scanner reports every radius/perimeter/area {DRIFT_FACTOR:.0%} of the old reading")
        answers, lines = self.serve(v1, [dict(zip(names, r, strict=True)) for r in X.tolist()])
        key = self.deliver_captures(lines)
        self.say(f"400 requests served by v1; {len(lines)} capture lines delivered to s3://{BUCKET}/{key}")
        self.say("  (in AWS: log subscription filter { $.capture IS TRUE } -> Firehose -> S3)")
        store = FeedbackStore(BUCKET, "data", self.s3)
        for i, (a, truth) in enumerate(zip(answers, y, strict=True)):
            store.append(str(truth), request_id=a["request_id"], writer=WRITERS[i % len(WRITERS)])
        served_accuracy = float(np.mean([a["predictions"][0] == t for a, t in zip(answers, y, strict=True)]))
        self.say(
            f"400 labels arrived through the feedback store from {len(WRITERS)} clinics; "
            f"v1 was right on {served_accuracy:.1%} of them"
        )
        self.s3.put_object(Bucket=BUCKET, Key=TRUSTED_KEY, Body=trusted_rows_csv(dataset, 150, DRIFT_FACTOR))
        self.say(f"the data team confirmed 150 diagnoses from the new scanner: s3://{BUCKET}/{TRUSTED_KEY}")
        self.say("  (the retrain decides on these plus v1's own held-out rows, never on client labels alone)")

        # 3 -------------------------------------------------------------------------------------
        self.step(3, "the metric crosses the threshold and the alarm event fires")
        summary, printed = _quiet(lambda: _handler("monitor").lambda_handler({}, CONTEXT))
        published = self.publish_emf(cw, printed)
        info = summary["versions"][v1]
        self.say(
            f"monitor: {summary['captured_requests']} captured requests, {summary['labelled_rows']} labelled; "
            f"{published} metric values published"
        )
        self.say(
            f"  QualityAccuracy {info['quality']['accuracy']:.3f}, QualityAUC {info['quality'].get('roc_auc', 0):.3f}, "
            f"DriftPSIMax {info['drift']['psi_max']:.2f} ({info['drift']['psi_max_feature']})"
        )
        cw.put_metric_alarm(
            AlarmName=f"modelops-{MODEL}-quality",
            Namespace="modelops",
            MetricName="QualityAccuracy",
            Dimensions=[{"Name": "ModelName", "Value": MODEL}],
            Statistic="Average",
            Period=3600,
            EvaluationPeriods=1,
            Threshold=QUALITY_THRESHOLD,
            ComparisonOperator="LessThanThreshold",
        )
        value = info["quality"]["accuracy"]
        if not value < QUALITY_THRESHOLD:
            self.say(f"accuracy {value:.3f} is not below {QUALITY_THRESHOLD}: no alarm, nothing to retrain")
            return 1
        reason = f"Threshold Crossed: 1 datapoint [{value:.4f}] was less than the threshold ({QUALITY_THRESHOLD})."
        cw.set_alarm_state(AlarmName=f"modelops-{MODEL}-quality", StateValue="ALARM", StateReason=reason)
        event = self.alarm_event(f"modelops-{MODEL}-quality", reason)
        self.say(f"alarm modelops-{MODEL}-quality -> ALARM ({reason})")
        self.say("  (the emulator does not evaluate alarms: evaluated here; EventBridge event built as in AWS)")
        self.say(f"EventBridge: {event['detail-type']} {event['detail']['alarmName']} -> RetrainFunction")

        # 4 -------------------------------------------------------------------------------------
        self.step(4, "the retrain runs and v2 goes out as a canary")
        deployer = AliasShiftDeployer(LambdaVersions(lam, FUNCTION), canary_weight=0.1)
        self.say(
            "In AWS a rollout is a stack update that CloudFormation and CodeDeploy carry out; locally the deployer "
            "publishes the pinned Lambda version and shifts the `live` alias weights itself (no PreTraffic hook, "
            "no rollback alarms)"
        )
        original_factory = lifecycle.deployer_from_env
        lifecycle.deployer_from_env = lambda env=None: deployer
        try:
            retrain = _handler("retrain")
            result, _ = _quiet(lambda: retrain.lambda_handler(event, CONTEXT))
            self.say(f"retrain: {result['outcome']}: {result['reason']}")
            if result["outcome"] != "promoted":
                return 1
            data, metrics = result["data"], result["metrics"]
            self.say(
                f"  data: {data['original']['rows']} original rows ({data['original']['uri']}) + "
                f"{data['recent_train_rows']} recent labelled rows; holdout: newest {data['holdout_rows']} rows"
            )
            self.say(
                f"  holdout accuracy: champion {metrics['champion']['accuracy']:.3f}, "
                f"candidate {metrics['candidate']['accuracy']:.3f}"
            )
            v2 = result["candidate"]
            alias = lam.get_alias(FunctionName=FUNCTION, Name="live")
            weights = alias["RoutingConfig"]["AdditionalVersionWeights"]
            self.say(
                f"registered {v2} (registry alias candidate); rollout {result['deployment_id']}: alias `live` "
                f"-> version {alias['FunctionVersion']} + {weights} "
            )
            again, _ = _quiet(lambda: retrain.lambda_handler(event, CONTEXT))
            self.say(f"the alarm fires again during the canary -> {again['outcome']}: {again['reason']}")

            # 5 -----------------------------------------------------------------------------------
            self.step(5, "v2 is promoted")
            from modelops.ports import Rollout

            target = next(iter(weights))
            deployer.complete(
                Rollout(result["deployment_id"], v2, deployer.mechanism, alias["FunctionVersion"], target)
            )
            # In AWS the rollout is a stack update; its end reaches the retrain function as this event.
            success = {
                "source": "aws.cloudformation",
                "detail-type": "CloudFormation Stack Status Change",
                "detail": {
                    "stack-id": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/local",
                    "status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""},
                    "client-request-token": result["deployment_id"],
                },
            }
            done, _ = _quiet(lambda: retrain.lambda_handler(success, CONTEXT))
        finally:
            lifecycle.deployer_from_env = original_factory
        self.say(
            f"alias `live` -> version {lam.get_alias(FunctionName=FUNCTION, Name='live')['FunctionVersion']} (100%)"
        )
        self.say(
            f"deployment succeeded -> {done['outcome']}: champion {registry.resolve(MODEL, CHAMPION)}, "
            f"SSM {pin.name} = {pin.get()} (a later `sam deploy` resolves this)"
        )
        X2, y2 = drifted_rows(dataset, 200, DRIFT_FACTOR, seed=99)
        fresh = [dict(zip(names, r, strict=True)) for r in X2.tolist()]
        new_answers, _ = self.serve(pin.get(), fresh)
        old_answers, _ = self.serve(v1, fresh)
        acc_new = float(np.mean([a["predictions"][0] == t for a, t in zip(new_answers, y2, strict=True)]))
        acc_old = float(np.mean([a["predictions"][0] == t for a, t in zip(old_answers, y2, strict=True)]))
        self.say(f"200 new drifted requests: v2 ({pin.get()}) right on {acc_new:.1%}, v1 would have been {acc_old:.1%}")
        history = [e["event"] for e in registry.history(MODEL)]
        self.say(f"registry history: {', '.join(history)}")
        return 0 if done["outcome"] == "promoted" and registry.resolve(MODEL, CHAMPION) == v2 else 1

    def publish_emf(self, cw: Any, lines: list[str]) -> int:
        """What CloudWatch does with EMF log lines: turn each into metric data."""
        count = 0
        for line in lines:
            if not line.startswith('{"_aws"'):
                continue
            doc = json.loads(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    for dims in directive["Dimensions"]:
                        cw.put_metric_data(
                            Namespace=directive["Namespace"],
                            MetricData=[
                                {
                                    "MetricName": metric["Name"],
                                    "Value": float(doc[metric["Name"]]),
                                    "Dimensions": [{"Name": d, "Value": str(doc[d])} for d in dims],
                                }
                            ],
                        )
                        count += 1
        return count

    def alarm_event(self, name: str, reason: str) -> dict[str, Any]:
        event = json.loads((REPO / "events" / "alarm-state-change.json").read_text())
        event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
        event["detail"]["alarmName"] = name
        event["detail"]["state"]["reason"] = reason
        return event


def demo_environment(cache_dir: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "modelops",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "modelops",
        "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
        "MODELOPS_MODEL_NAME": MODEL,
        "MODELOPS_DATA_URI": f"s3://{BUCKET}/data",
        "MODELOPS_CACHE_DIR": cache_dir,
        "MODELOPS_PREDICT_FUNCTION": FUNCTION,
        "MODELOPS_STACK_NAME": STACK,
        "MODELOPS_RETRAIN_MIN_ACCURACY": "0.85",
        "MODELOPS_RETRAIN_MARGIN": "0.01",
        "MODELOPS_RETRAIN_COOLDOWN_HOURS": "24",
        "MODELOPS_RETRAIN_TRUSTED_URI": f"s3://{BUCKET}/training-data/trusted",
        "MODELOPS_MONITOR_WINDOW_HOURS": "24",
    }


def main(out: Callable[[str], None] = print) -> int:
    from moto import mock_aws

    out("modelops lifecycle: monitor -> alarm -> retrain -> canary -> promote (local, AWS emulated by moto)")
    demo = Demo(out)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    with _environment(demo_environment(demo.cache)), mock_aws():
        code = demo.run()
    out("\nlifecycle demo " + ("finished: v2 replaced v1 through the canary path" if code == 0 else "FAILED"))
    return code


if __name__ == "__main__":
    sys.exit(main())
