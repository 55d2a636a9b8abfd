"""Session fixtures for the local stack (moto server + Runtime Interface Emulator + local API
Gateway). Each stack is started once per test session and stopped at its end; starting costs a
few seconds (moto, training the default model, one cold start per emulator)."""

from __future__ import annotations

import http.client
import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools import processes
from devtools.local_stack import LocalStack
from devtools.template import TEMPLATE

REPO = TEMPLATE.parent
# The template whose API the predict_stack fixture serves (another checkout's template can be tried this way).
TEMPLATE_UNDER_TEST = Path(os.environ.get("MODELOPS_TEMPLATE") or TEMPLATE)

# A tiny function that exercises what the stack provides: the modelops layer on PYTHONPATH, the
# registry in the local AWS, the SSM-pinned version in its environment, and the proxy event.
ECHO_APP = """
import json, os, time
from modelops.registry import Registry

CHAMPION = Registry(os.environ["MODELOPS_REGISTRY"]).resolve(os.environ["MODELOPS_MODEL_NAME"], "champion")


def lambda_handler(event, context):
    if event["path"] == "/boom":
        raise RuntimeError("boom")
    if event["path"] == "/not-a-proxy-answer":
        return {"hello": "world"}
    if event["path"] == "/slow":
        time.sleep(0.3)
    return {
        "statusCode": 201 if event["httpMethod"] == "PUT" else 200,
        "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps({"event": event, "pinned": os.environ["MODELOPS_MODEL_VERSION"], "champion": CHAMPION,
                            "function": context.function_name, "pid": os.getpid(),
                            "extra": os.environ.get("ECHO_EXTRA")}),
    }
"""

ECHO_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  ModelName: {{Type: String, Default: breast-cancer}}
  RegistryPrefix: {{Type: String, Default: registry}}
  Extra: {{Type: String, Default: "off"}}
Conditions:
  ExtraOn: !Equals [!Ref Extra, "on"]
Globals:
  Function:
    Runtime: python3.12
    Timeout: 30
    Environment:
      Variables:
        MODELOPS_REGISTRY: !Sub "s3://${{ModelBucket}}/${{RegistryPrefix}}"
        MODELOPS_MODEL_NAME: !Ref ModelName
        ECHO_EXTRA: global
Resources:
  ModelBucket:
    Type: AWS::S3::Bucket
  ModelOpsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: {layer}
  EchoApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      Handler: app.lambda_handler
      MemorySize: 256
      Layers: [!Ref ModelOpsLayer]
      Environment:
        Variables:
          MODELOPS_MODEL_VERSION: !Sub "{{{{resolve:ssm:/modelops/${{AWS::StackName}}/${{ModelName}}/champion}}}}"
          ECHO_EXTRA: !If [ExtraOn, "on", !Ref "AWS::NoValue"]
      Events:
        Items:
          Type: Api
          Properties: {{RestApiId: !Ref EchoApi, Path: "/items/{{id}}", Method: GET}}
        Anything:
          Type: Api
          Properties: {{RestApiId: !Ref EchoApi, Path: "/{{proxy+}}", Method: ANY}}
"""


def write_echo_project(root: Path) -> Path:
    """A throwaway SAM project with one API function; returns its template path."""
    (root / "functions" / "echo").mkdir(parents=True)
    (root / "functions" / "echo" / "app.py").write_text(textwrap.dedent(ECHO_APP))
    template = root / "template.yaml"
    template.write_text(ECHO_TEMPLATE.format(layer=REPO / "layers" / "modelops"))
    return template


@dataclass
class HttpAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> HttpAnswer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return HttpAnswer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def api_call(stack: LocalStack, method: str, path: str, **kwargs: Any) -> HttpAnswer:
    """http_call to `path` under the served API's stage: api_call(stack, "GET", "/health") asks for /v1/health."""
    assert stack.gateway is not None
    return http_call(stack.gateway.port, method, stack.gateway.base_path + path, **kwargs)


def _started(template: Path, pool_size: int, model_cache: Path) -> Iterator[LocalStack]:
    stack = LocalStack(template, pool_size=pool_size, log=lambda _line: None, model_cache=model_cache)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        processes.stop_all()


@pytest.fixture(scope="session")
def local_model_cache(tmp_path_factory) -> Path:
    """One trained default model per session, shared by every local stack."""
    return tmp_path_factory.mktemp("local-models")


@pytest.fixture(scope="session")
def echo_stack(tmp_path_factory, local_model_cache) -> Iterator[LocalStack]:
    """The local stack serving the throwaway echo function (two emulators)."""
    template = write_echo_project(tmp_path_factory.mktemp("echo-project"))
    yield from _started(template, 2, local_model_cache)


@pytest.fixture(scope="session")
def predict_stack(local_model_cache) -> Iterator[LocalStack]:
    """The local stack serving the repository's template.yaml API (the real predict handler)."""
    yield from _started(TEMPLATE_UNDER_TEST, 2, local_model_cache)
