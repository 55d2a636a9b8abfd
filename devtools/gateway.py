"""A local API Gateway (REST, proxy integration) on 127.0.0.1: each HTTP request becomes a proxy
event, is invoked on a borrowed emulator of the function whose route matches, and the function's
answer goes back as the HTTP response. As on a REST API's default endpoint, the API is served under
its stage (http://127.0.0.1:PORT/<StageName>/...), and API Gateway's own 403s answer what no route
takes: another stage, a path or method without a route. API keys are not enforced locally."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .emulator import EmulatorPool, InvokeError
from .proxy_event import (
    API_METHODS,
    HttpAnswer,
    Route,
    build_event,
    find_route,
    forbidden,
    gateway_error,
    missing_authentication_token,
    parse_answer,
)

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's request payload limit
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class Gateway:
    def __init__(
        self,
        routes: list[Route],
        pools: dict[str, EmulatorPool],
        stage: str = "Prod",
        port: int = 3000,
        log: Callable[[str], None] | None = None,
    ):
        self.routes = routes
        self.pools = pools
        self.stage = stage
        self.log = log
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.gateway = self
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_path(self) -> str:
        """The stage prefix every request path starts with, as in the stack's API URL."""
        return f"/{self.stage}"

    @property
    def url(self) -> str:
        """The API's base URL: what the OpenAPI document's servers entry names, under this origin."""
        return self.origin + self.base_path

    def resource_path(self, path: str) -> str | None:
        """The path without the stage prefix (what the event's `path` holds), or None for another stage.
        Stage names are case-sensitive, like the rest of the URL."""
        if path == self.base_path:
            return "/"
        if path.startswith(self.base_path + "/"):
            return path[len(self.base_path) :]
        return None

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> HttpAnswer:
        parts = urlsplit(target)
        path = self.resource_path(parts.path)
        if path is None:
            return forbidden()
        found = find_route(self.routes, method, path) if method in API_METHODS else None
        if found is None:
            return missing_authentication_token()
        route, params = found
        event = build_event(
            method=method,
            path=path,
            query=parts.query,
            headers=headers,
            body=body,
            route=route,
            path_params=params,
            stage=self.stage,
        )
        try:
            result = self.pools[route.target].invoke(json.dumps(event).encode())
        except InvokeError as exc:
            print(f"gateway: {exc}", file=sys.stderr)
            return gateway_error(502, "Internal server error")
        if result.function_error:
            print(f"gateway: {route.target} raised: {result.payload[:500].decode(errors='replace')}", file=sys.stderr)
            return gateway_error(502, "Internal server error")
        return parse_answer(result.payload)

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    gateway: Gateway


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like API Gateway
    server: _Server

    def _serve(self) -> None:
        started = time.perf_counter()
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            answer = gateway_error(411, "Length Required")
            self.close_connection = True
        elif length is not None and (not length.isdigit() or int(length) > MAX_PAYLOAD):
            answer = gateway_error(413, "Request Too Long")
            self.close_connection = True
            self._discard(int(length) if length.isdigit() else 0)
        else:
            body = self.rfile.read(int(length)) if length else b""
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            answer = self.server.gateway.handle(self.command, self.path, headers, body)
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        log = self.server.gateway.log
        if log is not None:
            ms = (time.perf_counter() - started) * 1000
            log(f"{self.command} {self.path} -> {answer.status} ({ms:.0f} ms)")

    def _discard(self, length: int) -> None:
        """Read a refused body (up to a bound) so that the client sees the 413, not a broken pipe."""
        left = min(length, 8 * MAX_PAYLOAD)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 itself for a method without a do_<METHOD>; API Gateway answers every
        # method, the ones it does not route with its own 403
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is written by _serve when a log function is set
