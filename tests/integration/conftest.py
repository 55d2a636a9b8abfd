"""Integration tests against a deployed stack (`make smoke STACK=name`), as aws-samples projects do them.

They run only when AWS_SAM_STACK_NAME names a deployed stack (otherwise every test skips, so `make test` skips
them) and use the ambient AWS credentials, region and AWS_ENDPOINT_URL. The stack's outputs come from
CloudFormation DescribeStacks.

LocalStack (what `make deploy-local` deploys into) is detected explicitly: AWS_ENDPOINT_URL answers
/_localstack/info. There, tests that need what LocalStack community cannot do without Docker (running Lambda
code, so every API route that reaches a function, and the state machine's tasks) or does not have at all
(CodeDeploy) skip with that reason; the API is reached through LocalStack's path-style execute-api URL.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

NO_LAMBDA = "LocalStack community runs no Lambda code without Docker: this route's function cannot answer"
NO_CODEDEPLOY = "CodeDeploy is not in LocalStack community: the stack has no deployment group to read"


def localstack_info(endpoint: str | None) -> dict[str, Any] | None:
    """LocalStack's /_localstack/info when the endpoint is LocalStack, else None."""
    if not endpoint:
        return None
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/_localstack/info", timeout=5) as r:
            info = json.load(r)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "version" in info else None


@dataclass
class Stack:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    localstack: dict[str, Any] | None
    endpoint: str | None

    @property
    def api_url(self) -> str:
        """Base URL of the API stage, reachable from here."""
        url = self.outputs["PredictApiUrl"].rstrip("/")
        if self.localstack:
            m = re.match(r"https?://([^.]+)\.execute-api\.[^/]+/(.+)$", url)
            assert m, f"unexpected PredictApiUrl {url}"
            return f"{self.endpoint}/_aws/execute-api/{m.group(1)}/{m.group(2)}"
        return url

    def client(self, service: str) -> Any:
        return boto3.client(service)

    def skip_on_localstack(self, reason: str) -> None:
        if self.localstack:
            pytest.skip(f"{reason} (LocalStack {self.localstack['version']})")


@pytest.fixture(autouse=True)
def aws_env():
    """Overrides the unit tests' fake-credentials fixture: these tests use the real environment."""
    yield


@pytest.fixture(scope="session")
def stack() -> Stack:
    name = os.environ.get("AWS_SAM_STACK_NAME")
    if not name:
        pytest.skip("AWS_SAM_STACK_NAME is not set: run `make smoke STACK=<name>` against a deployed stack")
    described = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return Stack(
        name=name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ResolvedValue", p["ParameterValue"]) for p in described["Parameters"]},
        localstack=localstack_info(endpoint),
        endpoint=endpoint.rstrip("/") if endpoint else None,
    )


@pytest.fixture(scope="session")
def api_key(stack: Stack) -> str:
    key = stack.client("apigateway").get_api_key(apiKey=stack.outputs["PredictApiKeyId"], includeValue=True)
    return str(key["value"])
