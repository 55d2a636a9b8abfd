"""Integration tests against a deployed stack (`make smoke STACK=name`), as aws-samples projects do them.

They run only when AWS_SAM_STACK_NAME names a deployed stack (otherwise every test skips, so `make test` skips
them) and use the ambient AWS credentials, region and AWS_ENDPOINT_URL. The stack's outputs come from
CloudFormation DescribeStacks.

LocalStack (what `make deploy-local` deploys into) is detected explicitly: AWS_ENDPOINT_URL answers
/_localstack/info. There, tests that need what LocalStack community cannot do without Docker (running Lambda
code, so every API route that reaches a function, and the state machine's tasks) or does not have at all
(CodeDeploy) skip with that reason; the API is reached through LocalStack's path-style execute-api URL.
With MODELOPS_LOCALSTACK_EXECUTES_LAMBDA=1 (`make deploy-local-exec`: LocalStack runs the functions under the
Runtime Interface Emulator) the tests that need function code run there too.
"""

from __future__ import annotations

import os

import boto3
import pytest
from deployed import Stack, localstack_info


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
    stack.skip_unless_auth("api-key")
    key = stack.client("apigateway").get_api_key(apiKey=stack.outputs["PredictApiKeyId"], includeValue=True)
    return str(key["value"])


@pytest.fixture(scope="session")
def feedback_api_key(stack: Stack) -> str:
    stack.skip_unless_auth("api-key")
    key = stack.client("apigateway").get_api_key(apiKey=stack.outputs["FeedbackApiKeyId"], includeValue=True)
    return str(key["value"])
