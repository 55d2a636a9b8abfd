"""Runs one function's handler in a process where the ML runtime layer's packages cannot be imported, as the
functions without that layer run on Lambda. Driven by tests/handlers/test_lean_functions.py:

    python tests/support/numpy_free_runner.py SPEC.json

SPEC (JSON): {"function": <functions/ directory>, "scenario": "import" | "feedback" | "pretraffic_hook",
"env": {...}, "bucket": ..., "objects": <directory of S3 objects to seed, path = key>, ...scenario fields}.
S3 is moto's, seeded with objects the calling test wrote through the real registry. Prints one JSON document:
{"answers": [...], "stored": [...], "imported": [ML modules in sys.modules]}. An import of an ML package fails
with ImportError naming it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import io
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

# What layers/mlruntime ships (and pandas' zip): none of it is on a function without that layer.
ML_PACKAGES = frozenset({"numpy", "scipy", "sklearn", "joblib", "threadpoolctl", "narwhals", "pandas"})


class RefuseMLPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in ML_PACKAGES:
            raise ImportError(f"{name} is not importable without the ML runtime layer", name=name)
        return None


sys.meta_path.insert(0, RefuseMLPackages())  # before anything outside the standard library is imported

ROOT = Path(__file__).resolve().parents[2]


class Ctx:
    function_name = "lean-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:lean-function"
    aws_request_id = "req-1"


def load_app(function: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{function}_app", ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed(s3: Any, bucket: str, objects: Path) -> None:
    s3.create_bucket(Bucket=bucket)
    for path in sorted(p for p in objects.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=path.relative_to(objects).as_posix(), Body=path.read_bytes())


def run_feedback(app: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from modelops.capture import feedback

    answers = [app.lambda_handler(event, Ctx()) for event in spec["events"]]
    stored = feedback.FeedbackStore(spec["bucket"], "data").read()
    return {"answers": answers, "stored": [asdict(record) for record in stored]}


class FakePredictVersion:
    """The new predict version as the hook sees it: Lambda GetFunctionConfiguration and Invoke (moto's Invoke
    needs Docker), answering the proxy response the test gives; response shapes as in AWS's Lambda API docs."""

    def __init__(self, pinned: str, answer: dict[str, Any]):
        self.pinned = pinned
        self.answer = answer
        self.sent: list[Any] = []

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"Environment": {"Variables": {"MODELOPS_MODEL_VERSION": self.pinned}}}

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        self.sent.append(json.loads(json.loads(Payload)["body"])["instances"])
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer).encode())}


def run_pretraffic_hook(app: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """CodeDeploy through a botocore Stubber (moto lacks PutLifecycleEventHookExecutionStatus); the responses are
    GetDeployment's documented shape with the AppSpec inline."""
    import boto3
    from botocore.stub import Stubber

    event = spec["event"]
    codedeploy = boto3.client("codedeploy")
    stub = Stubber(codedeploy)
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(spec["appspec"])}}
    stub.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": event["DeploymentId"], "revision": revision}},
        {"deploymentId": event["DeploymentId"]},
    )
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": event["LifecycleEventHookExecutionId"]},
        {
            "deploymentId": event["DeploymentId"],
            "lifecycleEventHookExecutionId": event["LifecycleEventHookExecutionId"],
            "status": spec["expect_status"],
        },
    )
    predict = FakePredictVersion(spec["pinned"], spec["answer"])
    clients = {"codedeploy": codedeploy, "lambda": predict}
    app.wiring = app.hook_wiring.build(clients=lambda service: clients.get(service) or boto3.client(service))
    with stub:
        result = app.lambda_handler(event, Ctx())
        stub.assert_no_pending_responses()
    return {"answers": [result], "sent": predict.sent}


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    os.environ.update(spec.get("env", {}))
    output: dict[str, Any] = {}
    if spec["scenario"] == "import":
        load_app(spec["function"])
    else:
        import boto3
        from moto import mock_aws

        with mock_aws():
            seed(boto3.client("s3"), spec["bucket"], Path(spec["objects"]))
            app = load_app(spec["function"])
            output = {"feedback": run_feedback, "pretraffic_hook": run_pretraffic_hook}[spec["scenario"]](app, spec)
    output["imported"] = sorted(name for name in sys.modules if name.partition(".")[0] in ML_PACKAGES)
    print(json.dumps(output, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
