"""The deployed stack under test and how to reach it; see conftest.py."""

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
        return self._reachable(self.outputs["PredictApiUrl"].rstrip("/"))

    @property
    def feedback_url(self) -> str:
        """POST /feedback on the label API (its own REST API and key), reachable from here."""
        return self._reachable(self.outputs["FeedbackUrl"].rstrip("/"))

    @property
    def auth(self) -> str:
        """How the predict front door authenticates (output PredictApiAuth): api-key, iam or jwt."""
        return self.outputs.get("PredictApiAuth", "api-key")

    @property
    def is_function_url(self) -> bool:
        """ApiType url: one auth type for every path, so the open routes need a signature too."""
        return ".lambda-url." in self.outputs["PredictApiUrl"]

    def skip_unless_auth(self, auth: str) -> None:
        if self.auth != auth:
            pytest.skip(f"this stack's front door authenticates with {self.auth}, not {auth}")

    def signed(self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None) -> dict[str, str]:
        """Headers of the request signed with SigV4 by the ambient credentials, for an IAM-authed front door."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.session.Session()
        service = "lambda" if ".lambda-url." in url else "execute-api"
        request = AWSRequest(method=method, url=url, data=body.encode(), headers=dict(headers or {}))
        SigV4Auth(session.get_credentials(), service, session.region_name).add_auth(request)
        return dict(request.headers.items())

    def _reachable(self, url: str) -> str:
        if self.localstack:
            m = re.match(r"https?://([^.]+)\.execute-api\.[^/]+/(.+)$", url)
            assert m, f"unexpected API URL {url}"
            return f"{self.endpoint}/_aws/execute-api/{m.group(1)}/{m.group(2)}"
        return url

    def client(self, service: str) -> Any:
        return boto3.client(service)

    def skip_on_localstack(self, reason: str) -> None:
        if reason == NO_LAMBDA and os.environ.get("MODELOPS_LOCALSTACK_EXECUTES_LAMBDA") == "1":
            return  # LocalStack runs Lambda code under the Runtime Interface Emulator (make deploy-local-exec)
        if self.localstack:
            pytest.skip(f"{reason} (LocalStack {self.localstack['version']})")
