"""Bounded windows: monitor and retrain keep at most the newest N captured requests and N feedback records of a
window, and say how many older ones they dropped."""

from __future__ import annotations

import time

from modelops.adapters.objectstore import open_location
from modelops.capture import feedback
from modelops.capture.feedback import FeedbackStore
from modelops.capture.labelled import read_window
from modelops.capture.partitions import newest
from modelops.capture.records import PredictionLog, prediction_record
from modelops.retrain.data import FeedbackLabelled


def seed_window(tmp_path, n: int, start: float):
    store, _ = open_location(str(tmp_path))
    log, fb = PredictionLog(store, "data"), FeedbackStore(store, "data")
    log.append(
        prediction_record(
            request_id=f"r{i}", model_version="v1", at=start + i, instances=[{"x": float(i)}], predictions=[0]
        )
        for i in range(n)
    )
    for i in range(n):
        fb.append(1, request_id=f"r{i}", at=start + i + 0.5, writer=f"k{i % 2}")
    return store


def test_newest_keeps_the_newest_records_in_order_and_counts_the_rest():
    class R:
        def __init__(self, at):
            self.at = at

    records = [R(t) for t in (5, 1, 9, 3, 7, 2)]
    kept, dropped = newest(iter(records), 3)
    assert [r.at for r in kept] == [5, 7, 9] and dropped == 3
    kept, dropped = newest(iter(records), None)
    assert [r.at for r in kept] == [1, 2, 3, 5, 7, 9] and dropped == 0


def test_read_window_drops_the_oldest_beyond_the_bound(tmp_path):
    start = time.time() - 3600
    store = seed_window(tmp_path, 30, start)
    window = read_window(store, "data", since=start - 1, until=time.time(), max_records=10)
    assert len(window.captured) == 10 and window.dropped_captured == 20 and window.dropped_feedback == 20
    assert [r.request_id for r in window.labelled] == [f"r{i}" for i in range(20, 30)]
    assert window.labelled[0].writer == "k0"  # the label's writer survives the join
    assert window.counts() == {
        "captured_requests": 10,
        "labelled_rows": 10,
        "dropped_captured": 20,
        "dropped_feedback": 20,
    }
    unbounded = read_window(store, "data", since=start - 1, until=time.time(), max_records=None)
    assert len(unbounded.labelled) == 30 and "dropped_captured" not in unbounded.counts()


def test_retrain_source_reports_what_it_dropped(tmp_path):
    start = time.time() - 3600
    store = seed_window(tmp_path, 30, start)
    source = FeedbackLabelled(store, "data", max_records=12)
    rows = source.labelled("m", start - 1, time.time())
    assert len(rows) == 12 and source.dropped == {"dropped_captured": 18, "dropped_feedback": 18}


def test_old_feedback_records_without_a_writer_still_read(tmp_path):
    store, _ = open_location(str(tmp_path))
    store.put("data/feedback/date=2026-01-01/1.json", b'{"at": "2026-01-01T00:00:00Z", "actual": 1, "request_id": "a"}')
    (record,) = FeedbackStore(store, "data").read()
    assert record.writer is None and record.actual == 1
    assert feedback.FeedbackRecord.from_json(record.to_json()).writer is None
