"""Feedback: validation, append-only storage partitioned by date (moto S3), the join to predictions,
and the POST /feedback handler driven with a real-shaped API Gateway proxy event."""

from __future__ import annotations

import json
import time

import pytest
from modelops.capture import feedback as fb
from modelops.capture.labelled import labelled_rows
from modelops.capture.records import PredictionLog, parse_records, prediction_record
from modelops.core.clock import parse_time
from modelops.core.errors import InputError
from support.events import feedback_event_with_body
from support.feedback import EVENT_REQUEST_ID, FEEDBACK_CONTEXT, feedback_event
from support.handlers import load_handler

BUCKET = "modelops-test"
DAY = 86400.0
T0 = 1_780_000_000.0  # a fixed instant (2026-05-28)


@pytest.fixture
def store(s3):
    return fb.FeedbackStore(BUCKET, "data", s3=s3)


@pytest.fixture
def log(s3):
    return PredictionLog(BUCKET, "data", s3=s3)


def test_feedback_is_append_only_and_partitioned_by_date(store, s3):
    a = store.append("malignant", request_id="r1", at=T0)
    b = store.append("benign", request_id="r1", at=T0 + DAY)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="data/feedback/")["Contents"])
    assert len(keys) == 2 and a.feedback_id != b.feedback_id
    assert keys[0].startswith("data/feedback/date=2026-05-28/") and keys[1].startswith("data/feedback/date=2026-05-29/")
    with pytest.raises(s3.exceptions.ClientError):  # the same key can never be written twice
        s3.put_object(Bucket=BUCKET, Key=keys[0], Body=b"{}", IfNoneMatch="*")
    assert [r.actual for r in store.read()] == ["malignant", "benign"]
    assert [r.actual for r in store.read(since=T0 + DAY / 2)] == ["benign"]
    assert [r.actual for r in store.read(until=T0 + 1)] == ["malignant"]


def test_validation_names_the_field():
    cases = [
        ({"actual": 1}, "request_id"),
        ({"request_id": "r"}, "actual"),
        ({"request_id": "r", "actual": None}, "actual"),
        ({"request_id": "r", "actual": float("nan")}, "actual"),
        ({"request_id": "r", "actual": 1, "extra": 1}, "extra"),
        ({"request_id": {"a": 1}, "actual": 1}, "request_id"),
        ({"entity_id": "e", "actual": 1, "row": -1}, "row"),
        ({"request_id": "r", "actual": "maybe"}, "actual"),
    ]
    for body, field in cases:
        with pytest.raises(InputError) as err:
            fb.validate_feedback(
                body, allowed_labels=["benign", "malignant"] if body.get("actual") == "maybe" else None
            )
        assert err.value.field == field, body
    assert fb.validate_feedback({"entity_id": 7, "actual": [1.5, 2]}) == {
        "actual": [1.5, 2],
        "request_id": None,
        "entity_id": "7",
        "row": None,
    }


def test_join_by_request_id_entity_and_latest_correction(store, log):
    log.append(
        [
            prediction_record(
                request_id="r1",
                model_version="v1",
                variant="A",
                entity_id="u1",
                predictions=["benign"],
                scores=[0.2],
                at=T0,
                instances=[{"x": 1}],
            ),
            prediction_record(
                request_id="r2",
                model_version="v2",
                variant="B",
                entity_id="u2",
                predictions=["malignant", "benign"],
                scores=[0.9, 0.1],
                at=T0 + 10,
            ),
            prediction_record(
                request_id="r3", model_version="v2", variant="B", entity_id="u2", predictions=["benign"], at=T0 + 20
            ),
            prediction_record(request_id="r4", model_version="v1", status=400, predictions=[], at=T0 + 30),
        ]
    )
    store.append("malignant", request_id="r1", at=T0 + 100)
    store.append("benign", request_id="r1", at=T0 + 200)  # a correction: the later label wins
    store.append(["malignant", "malignant"], request_id="r2", at=T0 + 100)
    store.append("malignant", entity_id="u2", at=T0 + 15)  # labels u2's latest prediction before T0+15, i.e. r2 row 0
    store.append("benign", request_id="unknown", at=T0 + 100)
    rows = labelled_rows(BUCKET, "data", s3=store.s3)
    got = {(r.request_id, r.row): (r.variant, r.prediction, r.actual, r.score) for r in rows}
    assert got == {
        ("r1", 0): ("A", "benign", "benign", 0.2),
        ("r2", 0): ("B", "malignant", "malignant", 0.9),
        ("r2", 1): ("B", "benign", "malignant", 0.1),
    }
    assert next(r for r in rows if r.request_id == "r1").features == {"x": 1}


def test_records_are_read_from_firehose_cloudwatch_envelopes(s3):
    import gzip

    line = json.dumps(prediction_record(request_id="r9", model_version="v1", variant="B", predictions=[3.5], at=T0))
    envelope = {
        "messageType": "DATA_MESSAGE",
        "logEvents": [
            {"id": "1", "timestamp": 0, "message": line},
            {"id": "2", "timestamp": 0, "message": "START RequestId"},
        ],
    }
    records = list(parse_records(gzip.compress(json.dumps(envelope).encode())))
    assert [(r.request_id, r.variant, r.predictions) for r in records] == [("r9", "B", [3.5])]
    nested = json.dumps({"level": "INFO", "message": json.loads(line)}).encode()
    assert [r.request_id for r in parse_records(nested + b"\nnot json\n")] == ["r9"]


def test_parse_time_forms():
    assert parse_time("2026-05-28T00:00:00Z") == pytest.approx(1_779_926_400.0)
    assert parse_time("2026-05-28") == pytest.approx(1_779_926_400.0)
    assert time.time() - parse_time("2h") == pytest.approx(7200, abs=5)
    with pytest.raises(InputError) as err:
        parse_time("yesterday")
    assert err.value.field == "since"


def test_handler_stores_feedback_and_rejects_bad_input(s3, registry, classifier_dir, monkeypatch):
    manifest = registry.register(classifier_dir)
    monkeypatch.setenv("MODELOPS_DATA_URI", f"s3://{BUCKET}/data")
    monkeypatch.setenv("MODELOPS_REGISTRY", f"s3://{BUCKET}/registry")
    monkeypatch.setenv("MODELOPS_MODEL_NAME", "breast-cancer")
    monkeypatch.setenv("MODELOPS_MODEL_VERSION", manifest.version)
    app = load_handler("feedback")
    ok = app.lambda_handler(feedback_event(), FEEDBACK_CONTEXT)
    assert ok["statusCode"] == 202, ok
    stored = fb.FeedbackStore(BUCKET, "data", s3=s3).read()
    assert [(r.request_id, r.actual) for r in stored] == [(EVENT_REQUEST_ID, "malignant")]

    bad_label = app.lambda_handler(feedback_event(actual="malignnt"), FEEDBACK_CONTEXT)
    assert bad_label["statusCode"] == 400 and json.loads(bad_label["body"])["error"]["field"] == "actual"
    malformed = app.lambda_handler(feedback_event_with_body(b'{"request_id": '), FEEDBACK_CONTEXT)
    assert malformed["statusCode"] == 400 and json.loads(malformed["body"])["error"]["code"] == "malformed_json"
    no_token = app.lambda_handler(
        feedback_event_with_body(b'{"request_id": "r", "actual": "benign"}'), FEEDBACK_CONTEXT
    )
    assert no_token["statusCode"] == 400 and json.loads(no_token["body"])["error"]["field"] == "label_token"
    assert len(fb.FeedbackStore(BUCKET, "data", s3=s3).read()) == 1


def test_handler_answers_503_when_storage_fails(s3, registry, classifier_dir, monkeypatch):
    manifest = registry.register(classifier_dir)
    monkeypatch.setenv("MODELOPS_DATA_URI", "s3://no-such-bucket/data")
    monkeypatch.setenv("MODELOPS_REGISTRY", f"s3://{BUCKET}/registry")
    monkeypatch.setenv("MODELOPS_MODEL_NAME", "breast-cancer")
    monkeypatch.setenv("MODELOPS_MODEL_VERSION", manifest.version)
    app = load_handler("feedback")
    out = app.lambda_handler(feedback_event(), FEEDBACK_CONTEXT)
    assert out["statusCode"] == 503 and json.loads(out["body"])["error"]["code"] == "feedback_unavailable"
