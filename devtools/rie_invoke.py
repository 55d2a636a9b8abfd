"""One invocation of a handler running under the Lambda Runtime Interface Emulator, through its HTTP API.

Standard library only: the LocalStack executor (devtools/localstack_rie_executor.py) imports it inside
LocalStack's own interpreter, and the local stack (devtools/emulator.py) in ours."""

from __future__ import annotations

import http.client
from email.message import Message

INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def invoke(
    port: int, body: bytes, *, timeout: float, what: str, error: type[Exception], headers: dict[str, str]
) -> tuple[bytes, Message]:
    """POST `body` to the emulator on 127.0.0.1:`port`; its answer and headers. `error(...)` is raised, naming
    `what`, when the emulator does not answer or answers anything but HTTP 200 (a crash, a timeout)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", INVOKE_PATH, body=body, headers=headers)
        resp = conn.getresponse()
        answer = resp.read()
    except OSError as exc:
        raise error(f"{what} did not answer: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise error(f"{what} answered HTTP {resp.status}: {answer[:300]!r}")
    return answer, resp.msg
