"""Hostile bodies at POST /feedback, end to end through the real handler with API Gateway proxy events: JSON
nested 1,000 and 5,000 deep (which once ended in a Lambda error, a 502 at API Gateway) and a lone surrogate (which
once lost the audit log line) are refused with a 400, and the "feedback refused" line is still written."""

from __future__ import annotations

import io
import json

from support.events import feedback_event_with_body
from support.feedback import FEEDBACK_CONTEXT, deployed, error_of, post, served

__all__ = ["deployed"]  # the fixture, used by name


def test_deep_and_oversized_bodies_get_400_not_a_lambda_error(deployed, classifier_dir, monkeypatch):
    app = deployed(classifier_dir)
    for depth in (1000, 5000):
        nested = b'{"label_token": "' + served().encode() + b'", "actual": ' + b"[" * depth + b"]" * depth + b"}"
        status, _, field = error_of(post(app, nested, raw=True))
        assert status == 400 and field in ("actual", "body"), depth
    assert error_of(post(app, b"[" * 5000 + b"]" * 5000, raw=True))[:2] == (400, "too_deep")
    monkeypatch.setenv("MODELOPS_MAX_BODY_BYTES", "100")
    assert error_of(post(app, {"actual": "benign", "label_token": served()}))[:2] == (413, "body_too_large")


def test_a_lone_surrogate_is_refused_and_its_log_line_written(deployed, classifier_dir):
    app = deployed(classifier_dir)
    # stdout as in Lambda: UTF-8 bytes, strict, so a line holding a lone surrogate would fail to be written
    stdout = io.BytesIO()
    # assigned, not setStream: that flushes the handler's old stream, which an earlier test's capture may have closed
    app.logger.registered_handler.stream = io.TextIOWrapper(stdout, encoding="utf-8", errors="strict")
    escaped = b'{"request_id": "\\ud800", "actual": "benign", "label_token": "' + served().encode() + b'"}'
    assert error_of(post(app, escaped, raw=True))[:2] == (400, "malformed_json")
    # a body that is already text holding the surrogate (a JSON event's "\ud800"), from a writer whose id holds one
    event = feedback_event_with_body(b"{}")
    event.update(body='{"request_id": "\ud800", "actual": "benign"}', isBase64Encoded=False)
    event["requestContext"]["identity"]["apiKeyId"] = "key-\udcff"
    out = app.lambda_handler(event, FEEDBACK_CONTEXT)
    assert out["statusCode"] == 400 and json.loads(out["body"])["error"]["code"] == "malformed_json"
    app.logger.registered_handler.flush()
    lines = [json.loads(line) for line in stdout.getvalue().decode().splitlines()]
    refused = [line for line in lines if line.get("message") == "feedback refused"]
    assert len(refused) == 2 and refused[1]["writer"] == "key-\\udcff" and refused[1]["code"] == "malformed_json"
