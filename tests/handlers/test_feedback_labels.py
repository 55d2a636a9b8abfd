"""POST /feedback hardening, driven through the real handler with API Gateway proxy events: a label needs the
label_token of a served prediction (bound to its request, rows and entity, within the window), records its
writer, must be a label the model could produce, and hostile bodies get a 400 with their log line written."""

from __future__ import annotations

import time

from modelops.capture import feedback as fb
from modelops.capture import labelsecret, labeltoken
from modelops.core.errors import ModelOpsError
from modelops.registry import Registry
from support.aws import BUCKET
from support.feedback import KEY_ID, deployed, error_of, post, served

__all__ = ["deployed"]  # the fixture, used by name


def stored(s3) -> list[fb.FeedbackRecord]:
    return fb.FeedbackStore(BUCKET, "data", s3=s3).read()


def test_a_label_needs_a_valid_token_for_a_served_request(deployed, classifier_dir, s3):
    app = deployed(classifier_dir)
    assert error_of(post(app, {"request_id": "req-1", "actual": "benign"})) == (400, "missing_field", "label_token")
    assert error_of(post(app, {"actual": "benign", "label_token": "junk"})) == (
        400,
        "malformed_label_token",
        "label_token",
    )
    forged = served(secret=b"guessed")
    assert error_of(post(app, {"actual": "benign", "label_token": forged})) == (403, labeltoken.INVALID, "label_token")
    old = served(served_at=time.time() - 73 * 3600)
    assert error_of(post(app, {"actual": "benign", "label_token": old})) == (400, "label_expired", "label_token")
    assert stored(s3) == []

    ok = post(app, {"actual": "benign", "row": 1, "label_token": served()})
    assert ok["statusCode"] == 202, ok
    (record,) = stored(s3)
    assert (record.request_id, record.row, record.actual, record.writer) == ("req-1", 1, "benign", KEY_ID)


def test_the_window_is_configurable(deployed, classifier_dir, monkeypatch):
    app = deployed(classifier_dir)
    monkeypatch.setenv(labelsecret.WINDOW_ENV, "1")
    two_hours_ago = served(served_at=time.time() - 7200)
    assert error_of(post(app, {"actual": "benign", "label_token": two_hours_ago}))[1] == "label_expired"
    monkeypatch.setenv(labelsecret.WINDOW_ENV, "3")
    assert post(app, {"actual": "benign", "label_token": two_hours_ago})["statusCode"] == 202


def test_a_label_is_bound_to_the_token_request_rows_and_entity(deployed, classifier_dir, s3):
    app = deployed(classifier_dir)
    token = served(request_id="req-9", rows=2, entity_id="cust-1")
    assert error_of(post(app, {"entity_id": "cust-2", "actual": "benign", "label_token": token})) == (
        403,
        fb.TOKEN_MISMATCH,
        "entity_id",
    )
    assert error_of(post(app, {"request_id": "req-8", "actual": "benign", "label_token": token})) == (
        403,
        fb.TOKEN_MISMATCH,
        "request_id",
    )
    assert error_of(post(app, {"row": 2, "actual": "benign", "label_token": token})) == (400, "row_not_served", "row")
    assert error_of(post(app, {"actual": ["benign"] * 3, "label_token": token})) == (400, "row_not_served", "actual")
    no_entity = served(request_id="req-7")
    assert error_of(post(app, {"entity_id": "cust-1", "actual": "benign", "label_token": no_entity}))[:2] == (
        403,
        fb.TOKEN_MISMATCH,
    )
    assert stored(s3) == []
    # naming only the entity labels the very request the token was issued for, under that entity
    assert post(app, {"entity_id": "cust-1", "actual": "malignant", "label_token": token})["statusCode"] == 202
    (record,) = stored(s3)
    assert (record.request_id, record.entity_id) == ("req-9", "cust-1")


def test_the_writer_is_the_api_key_or_the_iam_caller(deployed, classifier_dir, s3):
    app = deployed(classifier_dir)
    post(app, {"actual": "benign", "label_token": served()}, api_key_id="k-1")
    arn = "arn:aws:iam::123456789012:role/labeller"
    post(app, {"actual": "benign", "label_token": served()}, api_key_id=None, user_arn=arn)
    post(app, {"actual": "benign", "label_token": served()}, api_key_id=None)
    assert [r.writer for r in stored(s3)] == ["k-1", arn, None]


def test_records_written_before_the_writer_field_still_read():
    old = fb.FeedbackRecord.from_json(b'{"at": "2026-05-28T00:00:00Z", "actual": 1, "request_id": "r"}')
    assert old.writer is None and old.request_id == "r"
    new = fb.FeedbackRecord.from_json(fb.FeedbackRecord(at=0.0, actual=1, request_id="r", writer="k").to_json())
    assert new.writer == "k"


def test_regression_labels_must_be_finite_numbers(deployed, regressor_dir, s3):
    app = deployed(regressor_dir)
    for bad in ("12.5", True, None, {"v": 1}, [1.0, "x"]):
        out = post(app, {"actual": bad, "label_token": served()})
        assert error_of(out)[0::2] == (400, "actual"), (bad, out["json"])
    # not numbers at all in JSON: refused while reading the body, before any label is looked at
    for text in (b"NaN", b"Infinity", b"1e999", b"-1e400", b"1" + b"0" * 400):
        body = b'{"actual": ' + text + b', "label_token": "' + served().encode() + b'"}'
        status, code, field = error_of(post(app, body, raw=True))
        assert (status, field) == (400, "body") and code in ("malformed_json", "not_finite"), text
    assert stored(s3) == []
    assert post(app, {"actual": [1e308, -3], "label_token": served()})["statusCode"] == 202
    assert [r.actual for r in stored(s3)] == [[1e308, -3]]


def test_classes_fail_closed_and_are_read_again_after_a_failure(deployed, classifier_dir, s3, monkeypatch):
    """A registry that fails once: the label is refused with a retryable 503 (never stored unchecked), and the
    next request reads the classes and checks the label against them."""
    app = deployed(classifier_dir)
    real = Registry.manifest
    calls = {"n": 0}

    def flaky(self, name, version):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ModelOpsError("registry unavailable")
        return real(self, name, version)

    monkeypatch.setattr(Registry, "manifest", flaky)
    first = post(app, {"actual": "not-a-class", "label_token": served()})
    assert error_of(first) == (503, "labels_unavailable", None) and first["multiValueHeaders"]["Retry-After"]
    assert stored(s3) == []
    assert error_of(post(app, {"actual": "not-a-class", "label_token": served()}))[0::2] == (400, "actual")
    assert post(app, {"actual": "benign", "label_token": served()})["statusCode"] == 202
    assert calls["n"] == 2  # read again once after the failure, then kept
