"""LocalStack runs Lambda code with the "rie" runtime executor (devtools/localstack_rie_executor.py): a real
LocalStack (the pinned localstack-core, on the host, no Docker) creates a function and invokes it through its
Lambda API; the handler runs under the Runtime Interface Emulator and calls LocalStack back with the
credentials and endpoint LocalStack gave it.

Opt-in, since it starts LocalStack (36 s on a loaded 2-core machine): MODELOPS_LOCALSTACK_RIE=1, with
LocalStack's interpreter at MODELOPS_LOCALSTACK_PYTHON (default .venv-localstack/bin/python, as
`make deploy-local` creates it). The runtime is this interpreter (awslambdaric and boto3 are in
requirements-dev.txt). `make deploy-local-exec` runs the whole template the same way.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from base64 import b64decode
from pathlib import Path

import pytest
from support.paths import ROOT

LOCALSTACK_PYTHON = Path(os.environ.get("MODELOPS_LOCALSTACK_PYTHON") or ROOT / ".venv-localstack" / "bin" / "python")


def _localstack_importable() -> bool:
    if os.environ.get("MODELOPS_LOCALSTACK_RIE") != "1" or not LOCALSTACK_PYTHON.is_file():
        return False
    probe = [str(LOCALSTACK_PYTHON), "-c", "import localstack.services.lambda_.invocation.runtime_executor"]
    return subprocess.run(probe, capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _localstack_importable(),
        reason="opt-in: MODELOPS_LOCALSTACK_RIE=1 and LocalStack importable by MODELOPS_LOCALSTACK_PYTHON",
    ),
]

HANDLER = """
import os, boto3

def handler(event, context):
    print("handler saw", event.get("n"))
    if event.get("fail"):
        raise ValueError("asked to fail")
    buckets = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    return {"n": event["n"], "buckets": buckets, "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "endpoint": os.environ["AWS_ENDPOINT_URL"], "task_root": os.environ["LAMBDA_TASK_ROOT"]}
"""


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def localstack(tmp_path_factory):
    from devtools.emulator import rie_binary
    from devtools.localstack_launch import LocalStack, rie_executor_env

    work = tmp_path_factory.mktemp("localstack-rie")
    env = rie_executor_env(Path(sys.executable), rie_binary(), work / "lambda-logs")
    with LocalStack(LOCALSTACK_PYTHON, work / "state", log=work / "localstack.log", extra_env=env) as ls:
        ls.client("s3").create_bucket(Bucket="seen-from-the-function")
        lam = ls.client("lambda")
        lam.create_function(
            FunctionName="probe",
            Runtime="python3.12",
            Role="arn:aws:iam::000000000000:role/probe",
            Handler="app.handler",
            Code={"ZipFile": _zip(HANDLER)},
            Timeout=30,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="probe")
        yield ls


def _invoke(ls, payload: dict) -> dict:
    r = ls.client("lambda").invoke(FunctionName="probe", Payload=json.dumps(payload).encode(), LogType="Tail")
    return {**r, "Payload": json.loads(r["Payload"].read()), "Log": b64decode(r.get("LogResult", "")).decode()}


def test_the_handler_runs_and_calls_localstack_back(localstack):
    r = _invoke(localstack, {"n": 7})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r
    answer = r["Payload"]
    assert answer["n"] == 7 and answer["function"] == "probe"
    assert "seen-from-the-function" in answer["buckets"]  # the function's boto3 reached this LocalStack
    assert answer["endpoint"] == localstack.endpoint
    assert (Path(answer["task_root"]) / "app.py").is_file()  # the code LocalStack unzipped
    assert "handler saw 7" in r["Log"]


def test_a_second_invocation_reuses_the_warm_environment(localstack):
    first, second = _invoke(localstack, {"n": 1}), _invoke(localstack, {"n": 2})
    assert (first["Payload"]["n"], second["Payload"]["n"]) == (1, 2)
    assert "Init Duration" not in second["Log"]  # no second cold start


def test_a_raising_handler_is_a_function_error(localstack):
    r = _invoke(localstack, {"n": 3, "fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert r["Payload"]["errorType"] == "ValueError" and r["Payload"]["errorMessage"] == "asked to fail"
