"""The local API Gateway + Runtime Interface Emulator pool, on a throwaway echo function: real HTTP in,
real-shaped proxy events to the function, proxy answers back out."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.local_fixtures import api_call, http_call

from devtools.gateway import Gateway
from devtools.proxy_event import API_METHODS, Route, find_route, parse_answer
from devtools.template import ApiRoute

pytestmark = pytest.mark.slow


def _keys(d: dict) -> set[str]:
    return set(d)


def test_event_has_every_field_of_sam_generate_event(echo_stack):
    """Compared with what `sam local generate-event apigateway aws-proxy` produces, offline."""
    sam = Path(sys.executable).with_name("sam")
    generated = json.loads(
        subprocess.run(
            [str(sam), "local", "generate-event", "apigateway", "aws-proxy"],
            capture_output=True,
            check=True,
            env={"SAM_CLI_TELEMETRY": "0", "PATH": "/usr/bin:/bin"},
        ).stdout
    )
    answer = api_call(
        echo_stack,
        "POST",
        "/things/a/b?x=1&x=2&y=",
        body='{"k": 1}',
        headers={"Content-Type": "application/json", "User-Agent": "pytest"},
    )
    assert answer.status == 200
    event = answer.json()["event"]
    assert _keys(generated) <= _keys(event)
    assert _keys(generated["requestContext"]) - {"identity"} <= _keys(event["requestContext"])
    assert _keys(generated["requestContext"]["identity"]) <= _keys(event["requestContext"]["identity"])
    # as on API Gateway: `path` is the resource path, requestContext.path what the client asked for
    assert event["httpMethod"] == "POST" and event["path"] == "/things/a/b"
    assert event["resource"] == "/{proxy+}" and event["pathParameters"] == {"proxy": "things/a/b"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "v1" and event["requestContext"]["path"] == "/v1/things/a/b"
    assert event["requestContext"]["identity"]["userAgent"] == "pytest"


def test_function_gets_template_environment_layer_and_pinned_version(echo_stack):
    doc = api_call(echo_stack, "GET", "/hello").json()
    assert doc["pinned"] == echo_stack.champion == doc["champion"]  # SSM dynamic reference + registry via layer
    assert doc["function"] == "EchoFunction"
    # SAM merges Globals first, then CloudFormation drops the AWS::NoValue variable altogether
    assert doc["extra"] is None


def test_literal_route_wins_and_path_parameters(echo_stack):
    event = api_call(echo_stack, "GET", "/items/42").json()["event"]
    assert event["resource"] == "/items/{id}" and event["pathParameters"] == {"id": "42"}
    # the same path with another method falls through to the greedy ANY route
    event = api_call(echo_stack, "DELETE", "/items/42").json()["event"]
    assert event["resource"] == "/{proxy+}"


def test_status_and_headers_pass_through(echo_stack):
    answer = api_call(echo_stack, "PUT", "/x", body="{}")
    assert answer.status == 201
    assert answer.headers["X-Echo"] == "yes"
    assert answer.headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_binary_body_is_base64(echo_stack):
    raw = bytes(range(256))
    event = api_call(echo_stack, "POST", "/bin", body=raw, headers={"Content-Type": "application/octet-stream"}).json()[
        "event"
    ]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw


def test_handler_exception_and_malformed_answer_are_502(echo_stack):
    for path in ("/boom", "/not-a-proxy-answer"):
        answer = api_call(echo_stack, "GET", path)
        assert answer.status == 502, path
        assert answer.json() == {"message": "Internal server error"}
    assert api_call(echo_stack, "GET", "/after").status == 200  # the pool still serves


def test_stage_root_has_no_route_403_like_api_gateway(echo_stack):
    """The stage's root resource has no method in the echo template, so API Gateway answers its
    MISSING_AUTHENTICATION_TOKEN gateway response (the x-amzn-ErrorType the AWS Knowledge Center's
    "How do I troubleshoot HTTP 403 errors from API Gateway?" table gives)."""
    for path in ("", "/"):
        answer = api_call(echo_stack, "GET", path)
        assert answer.status == 403 and answer.json() == {"message": "Missing Authentication Token"}, path
        assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_paths_outside_the_stage_are_403_forbidden(echo_stack):
    """A REST API's default endpoint takes the first path segment as the stage name, and a stage that
    does not exist is 403 {"message":"Forbidden"}: reported for a URL without its stage in
    OWASP/Serverless-Goat#14 and zappa/Zappa#502, for a wrongly cased stage in
    aws-samples/aws-microservices-deploy-options#26 ("API Gateway is case-sensitive for the URL").
    None of these requests reaches the function."""
    stage = echo_stack.gateway.stage
    for path in ("/", "/hello", f"/{stage.upper()}/hello", f"/{stage}x/hello"):
        answer = http_call(echo_stack.gateway.port, "GET", path)
        assert answer.status == 403 and answer.json() == {"message": "Forbidden"}, path
        assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert api_call(echo_stack, "GET", "/hello").status == 200


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "QUERY", "PURGE"])
def test_methods_api_gateway_does_not_route_are_403(echo_stack, method):
    """A REST API method, ANY included, covers DELETE, GET, HEAD, OPTIONS, PATCH, POST and PUT only
    (the "HTTP methods that API Gateway supports" of the AWS CDK's HttpMethod enum). Any other method
    has no method to match, and a request without a matching resource and method is answered
    403 "Missing Authentication Token" (API Gateway's MISSING_AUTHENTICATION_TOKEN response; LocalStack's
    AWS-validated REST router, services/apigateway/next_gen/execute_api/handlers/resource_router.py,
    expands ANY to those seven methods and answers everything else the same way). So TRACE, CONNECT
    and extension methods never reach the function behind ANY /{proxy+}, and the answer is a 4xx
    instead of http.server's 501."""
    answer = api_call(echo_stack, method, "/anything")
    assert answer.status == 403 and answer.json() == {"message": "Missing Authentication Token"}
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_every_method_any_stands_for_reaches_the_function(echo_stack):
    for method in sorted(API_METHODS):
        answer = api_call(echo_stack, method, "/anything")
        assert answer.status == (201 if method == "PUT" else 200), method  # the echo answers PUT with 201
        if method != "HEAD":
            assert answer.json()["event"]["httpMethod"] == method
    assert api_call(echo_stack, "HEAD", "/anything").body == b""  # the function's body is not sent


def test_payload_over_10_mb_is_413(echo_stack):
    answer = api_call(echo_stack, "POST", "/big", body=b"x" * (10 * 1024 * 1024 + 1))
    assert answer.status == 413


def test_concurrent_requests_share_the_pool(echo_stack):
    """Eight slow requests on two emulators: all answered, each with its own request id, both used."""
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: api_call(echo_stack, "GET", f"/slow?i={i}"), range(8)))
    assert [a.status for a in answers] == [200] * 8
    docs = [a.json() for a in answers]
    assert len({d["event"]["requestContext"]["requestId"] for d in docs}) == 8
    assert len({d["pid"] for d in docs}) == 2


def test_keep_alive_connection_serves_several_requests(echo_stack):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", echo_stack.gateway.port, timeout=30)
    try:
        for i in range(3):
            conn.request("TRACE" if i == 1 else "GET", f"{echo_stack.gateway.base_path}/ka/{i}")
            resp = conn.getresponse()
            if i == 1:  # a gateway answer keeps the connection open as well
                assert resp.status == 403 and resp.read()
                continue
            assert resp.status == 200 and json.loads(resp.read())["event"]["path"] == f"/ka/{i}"
    finally:
        conn.close()


def test_stage_prefix_and_methods_without_a_function():
    """The gateway's own answers need no emulator: nothing here is invoked."""
    gateway = Gateway([Route.build(ApiRoute(None, "/{proxy+}", "ANY"), "Any")], {}, stage="v1", port=0)
    try:
        assert gateway.url == f"http://127.0.0.1:{gateway.port}/v1"
        assert gateway.resource_path("/v1/predict") == "/predict"
        assert gateway.resource_path("/v1") == gateway.resource_path("/v1/") == "/"
        assert gateway.resource_path("/predict") is None and gateway.resource_path("/v10/predict") is None
        assert gateway.handle("GET", "/predict", [], b"").body == b'{"message": "Forbidden"}'
        assert gateway.handle("TRACE", "/v1/predict", [], b"").status == 403
        assert gateway.handle("GET", "/v1", [], b"").status == 403  # no route on the root resource
    finally:
        gateway.server.server_close()


def test_route_specificity_without_a_server():
    routes = [
        Route.build(ApiRoute(None, "/{proxy+}", "ANY"), "Any"),
        Route.build(ApiRoute(None, "/predict", "POST"), "Predict"),
        Route.build(ApiRoute(None, "/models/{name}", "GET"), "Model"),
    ]
    assert find_route(routes, "POST", "/predict")[0].target == "Predict"
    assert find_route(routes, "GET", "/predict")[0].target == "Any"
    route, params = find_route(routes, "GET", "/models/a-b")
    assert route.target == "Model" and params == {"name": "a-b"}
    assert find_route(routes[1:], "GET", "/nope") is None


@pytest.mark.parametrize(
    "payload", [b"not json", b'{"body": "x"}', b'{"statusCode": "abc"}', b'{"statusCode": 200, "body": 5}']
)
def test_malformed_function_answers_become_502(payload):
    assert parse_answer(payload).status == 502


def test_base64_answer_is_decoded():
    answer = parse_answer(
        json.dumps(
            {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
        ).encode()
    )
    assert answer.status == 200 and answer.body == b"\x00\x01"
