"""HTTP API (payload format 2.0) and Lambda function URL events, answered like REST API proxy events.

The predict function is written against REST API proxy events (payload format 1.0). The other two ways AWS
sends HTTP requests to a function use payload format 2.0, which differs in shape, not in meaning:

    method      requestContext.http.method                  (1.0: httpMethod)
    path        rawPath; with a named HTTP API stage it starts with /<stage>, which is dropped here, as a REST
                API's `path` leaves it out; a $default stage and function URLs have none
    headers     one value per name (repeats joined with commas), names in lowercase; cookies are taken out
                of the headers into a `cookies` list, and are put back as one Cookie header here
    query       rawQueryString, queryStringParameters (repeats joined with commas)
    caller      requestContext.authorizer.iam (IAM auth: accessKey, accountId, callerId, userArn, userId), which
                AWS sets and a client cannot; given to the REST event's requestContext.identity

A 2.0 answer has no multiValueHeaders (API Gateway would ignore them): each header is one value, and every
Set-Cookie value goes into `cookies`. Sources: "Create AWS Lambda proxy integrations for HTTP APIs in API
Gateway" (payload format structure, response format) and "Lambda function URL request and response payloads"
in AWS's documentation, and `sam local generate-event apigateway http-api-proxy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

V2 = "2.0"
DEFAULT_STAGE = "$default"


def is_v2(event: Mapping[str, Any]) -> bool:
    return str(event.get("version")) == V2 and "rawPath" in event


def is_rest(event: Mapping[str, Any]) -> bool:
    return isinstance(event.get("httpMethod"), str) and isinstance(event.get("path"), str)


def stageless_path(raw_path: str, stage: str | None) -> str:
    if stage and stage != DEFAULT_STAGE:
        prefix = f"/{stage}"
        if raw_path == prefix:
            return "/"
        if raw_path.startswith(prefix + "/"):
            return raw_path[len(prefix) :]
    return raw_path or "/"


def rest_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The REST proxy event a 2.0 event stands for, or None when the 2.0 event lacks a method or path."""
    context = event.get("requestContext") or {}
    http = context.get("http") if isinstance(context, Mapping) else None
    raw_path = event.get("rawPath")
    if not isinstance(http, Mapping) or not isinstance(http.get("method"), str) or not isinstance(raw_path, str):
        return None
    stage = context.get("stage") or DEFAULT_STAGE
    path = stageless_path(raw_path, stage)
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    cookies = [str(c) for c in event.get("cookies") or []]
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    raw_query = event.get("rawQueryString") or ""
    multi_query = parse_qs(raw_query, keep_blank_values=True) if raw_query else None
    return {
        "resource": path,
        "path": path,
        "httpMethod": http["method"].upper(),
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": event.get("queryStringParameters") or None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": event.get("pathParameters") or None,
        "stageVariables": event.get("stageVariables") or None,
        "requestContext": {
            "accountId": context.get("accountId"),
            "apiId": context.get("apiId"),
            "domainName": context.get("domainName"),
            "httpMethod": http["method"].upper(),
            "identity": {"sourceIp": http.get("sourceIp"), "userAgent": http.get("userAgent"), **iam_identity(context)},
            "path": raw_path,  # like a REST API's requestContext.path: the stage prefix included
            "protocol": http.get("protocol"),
            "requestId": context.get("requestId"),
            "resourcePath": path,
            "stage": stage,
        },
        "body": event.get("body"),
        "isBase64Encoded": bool(event.get("isBase64Encoded")),
    }


def iam_identity(context: Mapping[str, Any]) -> dict[str, str]:
    """The IAM caller of a 2.0 event (HTTP API or function URL with IAM auth) in REST identity field names."""
    authorizer = context.get("authorizer")
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    if not isinstance(iam, Mapping):
        return {}
    names = {"accessKey": "accessKey", "accountId": "accountId", "callerId": "caller", "userArn": "userArn"}
    names["userId"] = "user"
    return {rest: str(iam[v2]) for v2, rest in names.items() if iam.get(v2)}


def v2_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """A REST proxy answer in the 2.0 shape: single-valued headers, Set-Cookie values in `cookies`."""
    headers: dict[str, str] = {}
    cookies: list[str] = []

    def add(name: str, value: Any) -> None:
        if name.lower() == "set-cookie":
            cookies.append(str(value))
        elif name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = str(value)

    for name, value in (response.get("headers") or {}).items():
        add(name, value)
    for name, values in (response.get("multiValueHeaders") or {}).items():
        for value in values or []:
            if name in (response.get("headers") or {}) and str(value) == str(response["headers"][name]):
                continue  # the same header given in both fields
            add(name, value)
    out: dict[str, Any] = {
        "statusCode": int(response.get("statusCode", 200)),
        "headers": headers,
        "body": response.get("body") or "",
        "isBase64Encoded": bool(response.get("isBase64Encoded")),
    }
    if cookies:
        out["cookies"] = cookies
    return out


def rest_predict_event(body: str, request_id: str, *, user_agent: str, stage: str = "live") -> dict[str, Any]:
    """A REST API proxy event for POST /predict with a JSON body, as the `live` alias receives it from API Gateway
    (what the pre-traffic hook replays and the SnapStart warm-up sends through the gateway)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": user_agent}
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": stage,
            "resourcePath": "/predict",
            "httpMethod": "POST",
            "path": f"/{stage}/predict",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": user_agent},
        },
        "body": body,
        "isBase64Encoded": False,
    }
