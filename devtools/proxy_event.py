"""API Gateway REST (v1) proxy integration, both ways: an HTTP request becomes the event Lambda
receives (the shape of `sam local generate-event apigateway aws-proxy`), and the function's answer
becomes the HTTP response, with API Gateway's 502 when the answer is malformed."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from .template import ApiRoute

ACCOUNT_ID = "123456789012"
API_ID = "local"
# The methods a REST API method can be defined for, and so the ones ANY stands for; API Gateway
# routes no other method (TRACE, CONNECT, extension methods) to an integration.
API_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})


@dataclass
class Route:
    route: ApiRoute
    target: str  # function logical id
    pattern: re.Pattern[str]

    @classmethod
    def build(cls, route: ApiRoute, target: str) -> Route:
        parts = []
        for segment in route.path.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("+}"):
                parts.append(f"(?P<{_group(segment[1:-2])}>.+)")
            elif segment.startswith("{") and segment.endswith("}"):
                parts.append(f"(?P<{_group(segment[1:-1])}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        return cls(route, target, re.compile("^/" + "/".join(parts) + "$"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method):
            return None
        m = self.pattern.match(path)
        if m is None:
            return None
        names = [s.strip("{}+") for s in self.route.path.split("/") if s.startswith("{")]
        return dict(zip(names, m.groups(), strict=True))

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal paths over variables and a method over ANY."""
        greedy = "+}" in self.route.path
        variables = self.route.path.count("{")
        return (int(greedy), variables, int(self.route.method == "ANY"))


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def find_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in sorted(routes, key=lambda r: r.specificity):
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None


def build_event(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    route: Route,
    path_params: dict[str, str],
    stage: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value  # API Gateway keeps the last value in `headers`
        multi.setdefault(name, []).append(value)
    qs_single: dict[str, str] = {}
    qs_multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        qs_single[name] = value
        qs_multi.setdefault(name, []).append(value)
    try:
        text, b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, b64 = base64.b64encode(body).decode(), True
    now = time.time()
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
    return {
        "body": text if body else None,
        "resource": route.route.path,
        "path": path,
        "httpMethod": method,
        "isBase64Encoded": b64,
        "queryStringParameters": qs_single or None,
        "multiValueQueryStringParameters": qs_multi or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "local",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": formatdate(now, usegmt=True),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "apiKey": None,
                "apiKeyId": None,
                "accessKey": None,
                "sourceIp": source_ip,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "path": f"/{stage}{path}",
            "resourcePath": route.route.path,
            "httpMethod": method,
            "protocol": "HTTP/1.1",
            "domainName": "localhost",
            "domainPrefix": "localhost",
        },
    }


@dataclass
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def gateway_error(status: int, message: str, error_type: str | None = None) -> HttpAnswer:
    """An answer API Gateway gives itself, without calling the function; error_type is its
    x-amzn-ErrorType header where the answer has a known one."""
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpAnswer(status, headers, json.dumps({"message": message}).encode())


def forbidden() -> HttpAnswer:
    """No such stage: the first path segment of a REST API's default endpoint names the stage."""
    return gateway_error(403, "Forbidden", "ForbiddenException")


def missing_authentication_token() -> HttpAnswer:
    """No resource and method for the request in the stage: REST APIs answer 403, not 404 or 405."""
    return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")


def parse_answer(payload: bytes) -> HttpAnswer:
    """A proxy integration answer, or API Gateway's own 502 if the function's output is not one."""
    try:
        answer = json.loads(payload)
        status = int(answer["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(status)
    except (ValueError, KeyError, TypeError):
        return gateway_error(502, "Internal server error")
    headers: list[tuple[str, str]] = []
    multi = answer.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers.extend((name, str(v)) for v in values)
    for name, value in (answer.get("headers") or {}).items():
        if name not in multi:
            headers.append((name, str(value)))
    body = answer.get("body") or ""
    if not isinstance(body, str):
        return gateway_error(502, "Internal server error")
    data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode("utf-8")
    return HttpAnswer(status, headers, data)
