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
from local_fixtures import http_call

from devtools.proxy_event import Route, find_route, parse_answer
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
    answer = http_call(
        echo_stack.gateway.port,
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
    assert event["httpMethod"] == "POST" and event["path"] == "/things/a/b"
    assert event["resource"] == "/{proxy+}" and event["pathParameters"] == {"proxy": "things/a/b"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "v1" and event["requestContext"]["path"] == "/v1/things/a/b"
    assert event["requestContext"]["identity"]["userAgent"] == "pytest"


def test_function_gets_template_environment_layer_and_pinned_version(echo_stack):
    doc = http_call(echo_stack.gateway.port, "GET", "/hello").json()
    assert doc["pinned"] == echo_stack.champion == doc["champion"]  # SSM dynamic reference + registry via layer
    assert doc["function"] == "EchoFunction"
    # SAM merges Globals first, then CloudFormation drops the AWS::NoValue variable altogether
    assert doc["extra"] is None


def test_literal_route_wins_and_path_parameters(echo_stack):
    event = http_call(echo_stack.gateway.port, "GET", "/items/42").json()["event"]
    assert event["resource"] == "/items/{id}" and event["pathParameters"] == {"id": "42"}
    # the same path with another method falls through to the greedy ANY route
    event = http_call(echo_stack.gateway.port, "DELETE", "/items/42").json()["event"]
    assert event["resource"] == "/{proxy+}"


def test_status_and_headers_pass_through(echo_stack):
    answer = http_call(echo_stack.gateway.port, "PUT", "/x", body="{}")
    assert answer.status == 201
    assert answer.headers["X-Echo"] == "yes"
    assert answer.headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_binary_body_is_base64(echo_stack):
    raw = bytes(range(256))
    event = http_call(
        echo_stack.gateway.port, "POST", "/bin", body=raw, headers={"Content-Type": "application/octet-stream"}
    ).json()["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw


def test_handler_exception_and_malformed_answer_are_502(echo_stack):
    for path in ("/boom", "/not-a-proxy-answer"):
        answer = http_call(echo_stack.gateway.port, "GET", path)
        assert answer.status == 502, path
        assert answer.json() == {"message": "Internal server error"}
    assert http_call(echo_stack.gateway.port, "GET", "/after").status == 200  # the pool still serves


def test_root_path_has_no_route_403_like_api_gateway(echo_stack):
    answer = http_call(echo_stack.gateway.port, "GET", "/")
    assert answer.status == 403 and answer.json()["message"] == "Missing Authentication Token"


def test_payload_over_10_mb_is_413(echo_stack):
    answer = http_call(echo_stack.gateway.port, "POST", "/big", body=b"x" * (10 * 1024 * 1024 + 1))
    assert answer.status == 413


def test_concurrent_requests_share_the_pool(echo_stack):
    """Eight slow requests on two emulators: all answered, each with its own request id, both used."""
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: http_call(echo_stack.gateway.port, "GET", f"/slow?i={i}"), range(8)))
    assert [a.status for a in answers] == [200] * 8
    docs = [a.json() for a in answers]
    assert len({d["event"]["requestContext"]["requestId"] for d in docs}) == 8
    assert len({d["pid"] for d in docs}) == 2


def test_keep_alive_connection_serves_several_requests(echo_stack):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", echo_stack.gateway.port, timeout=30)
    try:
        for i in range(3):
            conn.request("GET", f"/ka/{i}")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["event"]["path"] == f"/ka/{i}"
    finally:
        conn.close()


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
