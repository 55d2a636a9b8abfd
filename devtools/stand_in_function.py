"""A stand-in predict function on moto's Lambda, for the rollout code: versions, aliases and weights to shift,
with environment variables that name the model version. Its code is a one-line handler nobody runs."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_stand_in_function(lam: Any, name: str, environment: dict[str, str]) -> None:
    role = boto3.client("iam").create_role(RoleName="predict", AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.lambda_handler",
        Code={"ZipFile": _code()},
        Environment={"Variables": environment},
    )
