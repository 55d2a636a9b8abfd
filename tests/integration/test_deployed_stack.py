"""A deployed stack answers as the README says: the API with and without its key (or SigV4, for ApiType http or
url), feedback, the OpenAPI document and the model summary, a batch run with its manifest, and the rollout status.

Run with `make smoke STACK=<name>` (see conftest.py for targets and skips). The batch tests write one input
file under <BatchInputPrefix>/2000-01-01/ and its outputs, and delete them afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from deployed import NO_CODEDEPLOY, NO_LAMBDA, Stack

ROOT = Path(__file__).resolve().parents[2]
MODELOPS = str(Path(sys.executable).parent / "modelops")
RUN_DATE = "2000-01-01"
TIMEOUT = 30


def predict_body() -> str:
    return json.loads((ROOT / "events" / "predict-valid.json").read_text())["body"]


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
    proc = subprocess.run(
        [MODELOPS, "--json", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
    )
    if check and proc.returncode != 0:
        pytest.fail(f"modelops {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


# ---- API Gateway ------------------------------------------------------------------------------------------------
def test_predict_without_api_key_is_forbidden(stack: Stack):
    r = requests.post(f"{stack.api_url}/predict", data=predict_body(), timeout=TIMEOUT)
    assert r.status_code == (401 if stack.auth == "jwt" else 403), r.text  # a JWT authorizer answers 401


def test_predict_with_a_wrong_api_key_is_forbidden(stack: Stack):
    r = requests.post(
        f"{stack.api_url}/predict", data=predict_body(), headers={"x-api-key": "not-a-key"}, timeout=TIMEOUT
    )
    assert r.status_code == 403, r.text


def test_health_needs_no_api_key(stack: Stack):
    """API Gateway passes /health to the function without a key (on LocalStack the function then cannot run)."""
    if stack.is_function_url:
        pytest.skip("a function URL has one auth type for every path: /health needs SigV4 too")
    r = requests.get(f"{stack.api_url}/health", timeout=TIMEOUT)
    assert r.status_code != 403, r.text


def test_health(stack: Stack):
    stack.skip_on_localstack(NO_LAMBDA)
    url = f"{stack.api_url}/health"
    r = requests.get(url, headers=stack.signed("GET", url) if stack.is_function_url else None, timeout=TIMEOUT)
    assert r.status_code == 200, f"{r.status_code} {r.text} (503: no model pinned yet, see docs/first-deploy.md)"


def test_predict_with_api_key(stack: Stack, api_key: str):
    stack.skip_on_localstack(NO_LAMBDA)
    r = requests.post(
        f"{stack.api_url}/predict",
        data=predict_body(),
        headers={"x-api-key": api_key, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["predictions"] and answer["request_id"]


def test_predict_signed_with_sigv4(stack: Stack):
    """ApiType http or url with IAM auth: a SigV4-signed request by a principal allowed to invoke is answered."""
    stack.skip_unless_auth("iam")
    url, body = f"{stack.api_url}/predict", predict_body()
    headers = stack.signed("POST", url, body, {"Content-Type": "application/json"})
    r = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] and r.json()["label_token"]


def test_feedback_signed_with_sigv4(stack: Stack):
    """The label front door takes SigV4 only: the signed label of a served prediction is stored, an unsigned one
    is refused by the front door."""
    stack.skip_unless_auth("iam")
    url, body = f"{stack.api_url}/predict", predict_body()
    answer = requests.post(
        url, data=body, headers=stack.signed("POST", url, body, {"Content-Type": "application/json"}), timeout=TIMEOUT
    ).json()
    label = json.dumps(
        {"request_id": answer["request_id"], "actual": answer["predictions"][0], "label_token": answer["label_token"]}
    )
    r = requests.post(stack.feedback_url, data=label, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    headers = stack.signed("POST", stack.feedback_url, label, {"Content-Type": "application/json"})
    r = requests.post(stack.feedback_url, data=label, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 202, r.text


def test_feedback_needs_its_own_key(stack: Stack, api_key: str, feedback_api_key: str):
    """The label API refuses the prediction key, and the label key cannot score (API Gateway's 403s)."""
    body = json.dumps({"request_id": "r", "actual": 0, "label_token": "x.y"})
    for key in (None, api_key):
        headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
        r = requests.post(stack.feedback_url, data=body, headers=headers, timeout=TIMEOUT)
        assert r.status_code == 403, r.text
    r = requests.post(
        f"{stack.api_url}/predict", data=predict_body(), headers={"x-api-key": feedback_api_key}, timeout=TIMEOUT
    )
    assert r.status_code == 403, r.text


def test_feedback(stack: Stack, api_key: str, feedback_api_key: str):
    stack.skip_on_localstack(NO_LAMBDA)
    headers = {"x-api-key": api_key, "Content-Type": "application/json"}
    scored = requests.post(f"{stack.api_url}/predict", data=predict_body(), headers=headers, timeout=TIMEOUT)
    assert scored.status_code == 200, scored.text
    answer = scored.json()
    label = {"request_id": answer["request_id"], "actual": answer["predictions"][0]}
    labelling = {"x-api-key": feedback_api_key, "Content-Type": "application/json"}
    r = requests.post(stack.feedback_url, data=json.dumps(label), headers=labelling, timeout=TIMEOUT)
    assert r.status_code == 400 and r.json()["error"]["field"] == "label_token", r.text
    body = json.dumps({**label, "label_token": answer["label_token"]})
    r = requests.post(stack.feedback_url, data=body, headers=labelling, timeout=TIMEOUT)
    assert r.status_code == 202, r.text


def test_openapi_document(stack: Stack):
    stack.skip_on_localstack(NO_LAMBDA)
    url = f"{stack.api_url}/openapi.json"
    r = requests.get(url, headers=stack.signed("GET", url) if stack.is_function_url else None, timeout=TIMEOUT)
    if stack.parameters.get("ApiDocs", "on") == "off":
        assert r.status_code == 404, r.text
    else:
        assert r.status_code == 200, r.text
        assert "/predict" in r.json()["paths"]


def test_model_summary_is_the_pinned_version(stack: Stack, api_key: str):
    stack.skip_on_localstack(NO_LAMBDA)
    r = requests.get(f"{stack.api_url}/model", headers={"x-api-key": api_key}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == stack.parameters["ModelVersion"]


# ---- batch -----------------------------------------------------------------------------------------------------
@pytest.fixture
def batch_input(stack: Stack):
    """One input file (and the upstream marker) for RUN_DATE; removes it and the run's outputs afterwards."""
    s3 = stack.client("s3")
    bucket = stack.outputs["ModelBucketName"]
    input_prefix = stack.parameters.get("BatchInputPrefix", "batch/input")
    output_prefix = stack.parameters.get("BatchOutputPrefix", "batch/output")
    instances = json.loads(predict_body())["instances"]
    names = list(instances[0])
    rows = [",".join(["id", *names])] + [
        ",".join([f"smoke-{i}", *(str(instances[i % len(instances)][n]) for n in names)]) for i in range(20)
    ]
    s3.put_object(Bucket=bucket, Key=f"{input_prefix}/{RUN_DATE}/smoke.csv", Body="\n".join(rows).encode() + b"\n")
    marker = stack.parameters.get("BatchUpstreamMarker", "{date}/_SUCCESS")
    if marker:
        s3.put_object(Bucket=bucket, Key=f"{input_prefix}/{marker.format(date=RUN_DATE)}", Body=b"")
    yield {"bucket": bucket, "input_prefix": input_prefix, "output_prefix": output_prefix, "rows": len(rows) - 1}
    for prefix in (f"{input_prefix}/{RUN_DATE}/", f"{output_prefix}/{RUN_DATE}/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])


def ensure_champion(stack: Stack) -> str:
    """The registry's champion; on LocalStack one is trained into the stack's registry when there is none."""
    registry, model = stack.outputs["RegistryUri"], stack.parameters["ModelName"]
    listed = cli("--registry", registry, "models", "list", check=False) or []
    if not any(row.get("model") == model and row.get("champion") for row in listed):
        if not stack.localstack:
            pytest.skip(f"no champion of {model} in {registry}: register one first (docs/first-deploy.md step 4)")
        cli("--registry", registry, "train", "--model-name", model, "--alias", "champion")
    return registry


def test_batch_run_writes_its_manifest(stack: Stack, batch_input: dict[str, Any]):
    """`modelops batch run` against the stack's bucket and registry: what the state machine's tasks run."""
    registry = ensure_champion(stack)
    common = ["--date", RUN_DATE, "--bucket", batch_input["bucket"], "--input-prefix", batch_input["input_prefix"]]
    common += ["--output-prefix", batch_input["output_prefix"]]
    env = {"MODELOPS_REGISTRY": registry, "MODELOPS_MODEL_NAME": stack.parameters["ModelName"]}
    env["MODELOPS_BATCH_UPSTREAM_MARKER"] = stack.parameters.get("BatchUpstreamMarker", "{date}/_SUCCESS")
    result = cli("batch", "run", *common, "--force", env=env)
    assert result["status"] == "succeeded", result
    status = cli("batch", "status", *common, env=env)
    assert status["status"] == "succeeded", status
    assert status["manifest"]["rows"]["scored"] == batch_input["rows"]


def test_batch_state_machine_run(stack: Stack, batch_input: dict[str, Any]):
    stack.skip_on_localstack(NO_LAMBDA)
    ensure_champion(stack)
    cfn, sfn = stack.client("cloudformation"), stack.client("stepfunctions")
    arn = cfn.describe_stack_resource(StackName=stack.name, LogicalResourceId="BatchStateMachine")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"run_date": RUN_DATE, "force": True}))
    deadline = time.monotonic() + 900
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "batch run still RUNNING after 15 minutes"
        time.sleep(5)
    assert described["status"] == "SUCCEEDED", described.get("error") or described
    key = f"{batch_input['output_prefix']}/{RUN_DATE}/_manifest.json"
    manifest = json.loads(stack.client("s3").get_object(Bucket=batch_input["bucket"], Key=key)["Body"].read())
    assert manifest["status"] == "succeeded" and manifest["rows"]["scored"] == batch_input["rows"]


# ---- rollout ---------------------------------------------------------------------------------------------------
def test_rollout_status(stack: Stack):
    stack.skip_on_localstack(NO_CODEDEPLOY)
    status = cli("rollout", "status", "--stack", stack.name)
    assert status["function"] == stack.outputs["PredictFunctionName"]
    assert sum(t["weight"] for t in status["traffic"]) == pytest.approx(1.0)


def test_batch_state_machine_fans_out(stack: Stack, batch_input: dict[str, Any]):
    """The Distributed Map path: with the batch function's inline limit at 1 byte, each input object becomes one
    child run by the worker function. It changes the function's configuration (restored afterwards), so it runs
    only where LocalStack executes the functions (make deploy-local-exec)."""
    if os.environ.get("MODELOPS_LOCALSTACK_EXECUTES_LAMBDA") != "1" or not stack.localstack:
        pytest.skip("changes the batch function's configuration: LocalStack with executed functions only")
    ensure_champion(stack)
    cfn, sfn, lam, s3 = (stack.client(s) for s in ("cloudformation", "stepfunctions", "lambda", "s3"))

    def physical(logical_id: str) -> str:
        detail = cfn.describe_stack_resource(StackName=stack.name, LogicalResourceId=logical_id)
        return str(detail["StackResourceDetail"]["PhysicalResourceId"])

    batch, worker, arn = physical("BatchFunction"), physical("BatchWorkerFunction"), physical("BatchStateMachine")
    first = f"{batch_input['input_prefix']}/{RUN_DATE}/smoke.csv"
    body = s3.get_object(Bucket=batch_input["bucket"], Key=first)["Body"].read().decode()
    second = body.replace("smoke-", "second-")  # ids stay unique across the two objects
    s3.put_object(Bucket=batch_input["bucket"], Key=first.replace("smoke.csv", "second.csv"), Body=second.encode())
    variables = lam.get_function_configuration(FunctionName=batch)["Environment"]["Variables"]

    def configure(env: dict[str, str]) -> None:
        lam.update_function_configuration(FunctionName=batch, Environment={"Variables": env})
        lam.get_waiter("function_updated_v2").wait(FunctionName=batch)

    configure({**variables, "MODELOPS_BATCH_INLINE_MAX_BYTES": "1"})
    try:
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"run_date": RUN_DATE, "force": True}))
        deadline = time.monotonic() + 900
        while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "batch fan-out still RUNNING after 15 minutes"
            time.sleep(5)
        history = json.dumps(sfn.get_execution_history(executionArn=execution["executionArn"])["events"], default=str)
    finally:
        configure(variables)
    assert described["status"] == "SUCCEEDED", described.get("error") or described
    assert worker in history, "the Map state did not invoke the worker function"
    key = f"{batch_input['output_prefix']}/{RUN_DATE}/_manifest.json"
    manifest = json.loads(s3.get_object(Bucket=batch_input["bucket"], Key=key)["Body"].read())
    assert manifest["status"] == "succeeded" and manifest["rows"]["scored"] == 2 * batch_input["rows"], manifest
