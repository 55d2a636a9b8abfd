"""Attack (or just a big batch): a POST /predict whose capture line would exceed CloudWatch Logs' event limit
(256 KB, 262,144 bytes including 26 bytes of overhead per event; Lambda truncates longer stdout lines), so that
the capture of the request would be cut or lost without a trace. The real predict handler must write every
capture line under the configured bound (default 200,000 bytes), the feedback join must recover every row, and
a row that cannot fit a line of its own must be recorded as truncated and counted in the EMF metrics line."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime

import pytest
from modelops.capture import feedback
from modelops.capture.labelled import join, labelled_rows
from modelops.capture.records import PredictionLog, merge_parts, parse_records
from modelops.serving.capture import DEFAULT_MAX_LINE_BYTES
from support.api import invoke, proxy_event, serve_model

CLOUDWATCH_EVENT_LIMIT = 262_144 - 26
BUCKET = "modelops-test"


@pytest.fixture
def serve(monkeypatch):
    return functools.partial(serve_model, monkeypatch)


@pytest.fixture
def golden(classifier_dir):
    return json.loads((classifier_dir / "golden.json").read_text())


def _rows(golden, n):
    """n distinct valid rows: golden rows cycled, each value nudged by the row number."""
    base = golden["instances"]
    return [{k: v * (1 + (i % 97) / 1000) for k, v in base[i % len(base)].items()} for i in range(n)]


def _post_columns(app, rows, request_id):
    columns = list(rows[0])
    body = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    return invoke(app, proxy_event("POST", "/predict", body, request_id=request_id))


def _lines(out):
    return [line for line in out.splitlines() if line.startswith("{")]


def _deliver(s3, lines):
    """What the capture pipeline writes to S3 for these log lines (one object of JSON lines)."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    body = ("\n".join(lines) + "\n").encode()
    s3.put_object(Bucket=BUCKET, Key=f"data/captures/date={day}/stream-1", Body=body)


def test_a_capture_over_256_kb_is_split_into_lines_under_the_bound_and_fully_recoverable(
    serve, classifier_dir, golden, capsys, s3
):
    app = serve(classifier_dir, MODELOPS_CAPTURE="on")
    rows = _rows(golden, 1000)
    capsys.readouterr()
    status, _, answer = _post_columns(app, rows, "big-1")
    assert status == 200 and len(answer["predictions"]) == 1000
    lines = _lines(capsys.readouterr().out)
    captures = [line for line in lines if json.loads(line).get("capture") is True]
    sizes = [len(line.encode()) for line in captures]
    assert sum(sizes) > 262_144, "the request must be one whose single capture line would exceed the event limit"
    assert len(captures) > 1
    assert max(sizes) <= DEFAULT_MAX_LINE_BYTES < CLOUDWATCH_EVENT_LIMIT
    parts = [json.loads(line) for line in captures]
    assert {p["request_id"] for p in parts} == {"big-1"}
    assert sorted(p["part"] for p in parts) == list(range(1, len(parts) + 1))
    assert {p["parts"] for p in parts} == {len(parts)} and {p["rows"] for p in parts} == {1000}
    assert all("truncated" not in p for p in parts)
    metrics = [json.loads(line) for line in lines if "_aws" in json.loads(line)]
    assert metrics[-1]["CaptureRowsDropped"] == 0 and metrics[-1]["CapturesTruncated"] == 0

    _deliver(s3, captures)
    records = PredictionLog(BUCKET, "data", s3=s3).read()
    assert len(records) == 1  # one request, however many lines
    record = records[0]
    assert record.predictions == answer["predictions"] and record.instances == rows and not record.lost_rows
    assert record.scores == pytest.approx([p["malignant"] for p in answer["probabilities"]])

    actual = ["benign"] * 1000
    feedback.FeedbackStore(BUCKET, "data", s3=s3).append(actual, request_id="big-1")
    labelled = labelled_rows(BUCKET, "data", s3=s3)
    assert [r.row for r in labelled] == list(range(1000))
    assert [r.features for r in labelled] == rows
    assert [r.prediction for r in labelled] == answer["predictions"]


def test_a_row_too_large_for_a_line_is_recorded_as_truncated_and_counted(serve, classifier_dir, golden, capsys, s3):
    rows = golden["instances"][:6]  # values of a few digits
    wide = {k: v * (1 + 1e-12) for k, v in rows[3].items()}  # the same row with every value 16-17 digits long
    # A bound that fits any of the ordinary rows on a line of its own, but not the wide one.
    app = serve(classifier_dir, MODELOPS_CAPTURE="on")
    capsys.readouterr()
    _post_columns(app, [rows[0]], "one-narrow")
    _post_columns(app, [wide], "one-wide")
    narrow_line, wide_line = (
        len(line.encode()) for line in _lines(capsys.readouterr().out) if json.loads(line).get("capture") is True
    )
    assert wide_line - narrow_line > 300
    bound = (narrow_line + wide_line) // 2
    app = serve(classifier_dir, MODELOPS_CAPTURE="on", MODELOPS_CAPTURE_MAX_BYTES=str(bound))
    sent = rows[:3] + [wide] + rows[3:]
    capsys.readouterr()
    status, _, answer = _post_columns(app, sent, "mixed-1")
    assert status == 200
    lines = _lines(capsys.readouterr().out)
    captures = [line for line in lines if json.loads(line).get("capture") is True]
    assert all(len(line.encode()) <= bound for line in captures)
    truncated = [json.loads(line) for line in captures if "truncated" in json.loads(line)]
    assert len(truncated) == 1
    marker = truncated[0]
    assert marker["request_id"] == "mixed-1" and "instances" not in marker
    assert marker["truncated"][0]["row"] == 3 and "does not fit" in marker["truncated"][0]["reason"]
    metrics = [json.loads(line) for line in lines if "_aws" in json.loads(line)][-1]
    assert metrics["CaptureRowsDropped"] == 1 and metrics["CapturesTruncated"] == 1
    names = {m["Name"] for m in metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"CaptureRowsDropped", "CapturesTruncated"} <= names

    _deliver(s3, captures)
    feedback.FeedbackStore(BUCKET, "data", s3=s3).append(["benign"] * len(sent), request_id="mixed-1")
    labelled = labelled_rows(BUCKET, "data", s3=s3)
    assert [r.row for r in labelled] == list(range(len(sent)))  # every row's prediction is still joined
    assert [r.prediction for r in labelled] == answer["predictions"]
    assert [r.features for r in labelled] == [*sent[:3], None, *sent[4:]]


def test_parts_merge_into_one_request_and_a_missing_part_labels_nothing():
    """Parts arrive in any order, possibly twice (Firehose retries); rows of a part that never arrived are listed
    as lost, and feedback for them joins nothing instead of labelling the wrong row."""

    def part(n, offset, predictions):
        return {
            "capture": True,
            "at": 1_700_000_000_000,
            "request_id": "r-1",
            "model_version": "v1",
            "status": 200,
            "part": n,
            "parts": 3,
            "row_offset": offset,
            "rows": 5,
            "predictions": predictions,
            "instances": [{"x": p} for p in predictions],
        }

    lines = [part(3, 4, [4]), part(1, 0, [0, 1]), part(3, 4, [4])]  # part 2 (rows 2 and 3) lost
    data = "\n".join(json.dumps(line) for line in lines).encode()
    (record,) = merge_parts(parse_records(data))
    assert record.predictions == [0, 1, None, None, 4] and record.lost_rows == [2, 3]
    assert record.instances == [{"x": 0}, {"x": 1}, None, None, {"x": 4}]
    fb = [feedback.FeedbackRecord(at=1_800_000_000, actual=[10, 11, 12, 13, 14], request_id="r-1")]
    assert [(r.row, r.actual) for r in join(parse_records(data), fb)] == [(0, 10), (1, 11), (4, 14)]
