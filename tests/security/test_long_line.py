"""An input line far longer than MODELOPS_BATCH_MAX_LINE_BYTES (a 20 MiB line among normal rows), in CSV and JSON
Lines, scored through a real batch run on the local object store (a directory: moto would hold whole responses in
memory and hide what the reader holds).

The line must be rejected as one row with a reason naming the bound, every other row scored, and the reader must
not hold the line while looking for its newline: tracemalloc's peak stays far below the line's size. With byte-range
parts (the fan-out's split), part boundaries fall inside the long line: the part that starts mid-line skips to the
next newline and the part the line starts in rejects it.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tracemalloc

import pytest
from modelops.batch.readers import capped_lines
from modelops.batch.run import BatchRunner
from modelops.batch.store import open_store
from support.batch import DATE, config, csv_bytes, features_and_rows, jsonl_bytes, register_champion

LINE_BYTES = 20 * 1024**2
BOUND = 64 * 1024  # MODELOPS_BATCH_MAX_LINE_BYTES in these runs
PEAK_BYTES = 4 * 1024**2  # stated bound on traced memory while scoring: 1/5 of the long line
REASON = f"line longer than {BOUND} bytes (MODELOPS_BATCH_MAX_LINE_BYTES)"
OUT = f"batch/output/{DATE}/"


@pytest.fixture
def champion(registry, classifier_dir):
    return register_champion(registry, classifier_dir)


def local_runner(tmp_path, registry, **overrides) -> BatchRunner:
    c = config(bucket=str(tmp_path), max_line_bytes=BOUND, chunk_rows=50, score_workers=1, **overrides)
    return BatchRunner(c, store=open_store(str(tmp_path)), registry=registry)


def with_long_line(body: bytes, after: int, line: bytes) -> bytes:
    lines = body.splitlines(keepends=True)
    return b"".join([*lines[: after + 1], line, *lines[after + 1 :]])


def read(tmp_path, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((tmp_path / key).read_text())))


def test_capped_lines_drops_a_long_line_as_it_is_read():
    pieces = [b"a,1\nb,", b"x" * 100, b"x" * 100, b"\nc,2\n" + b"y" * 300 + b"\nd,3\n"]
    out = b"".join(capped_lines(iter(pieces), 150))
    marker = b"\0line longer than 150\0\n"
    assert out == b"a,1\n" + marker + b"c,2\n" + marker + b"d,3\n"


def test_capped_lines_matches_a_line_by_line_reference():
    rng = random.Random(4)
    bound = 40
    lines = [b"z" * rng.choice([0, 1, 39, 40, 41, 90, 200]) + b"\n" for _ in range(3000)]
    data = b"".join(lines)
    marker = b"\0line longer than 40\0\n"
    want = b"".join(marker if len(line) - 1 > bound else line for line in lines)
    for size in (7, 64, 300, 5000, len(data)):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        assert b"".join(capped_lines(iter(pieces), bound)) == want, size


def test_a_20_mib_csv_line_is_rejected_in_bounded_memory(tmp_path, registry, champion):
    names, X = features_and_rows(300, seed=5)
    long_line = b"r_long," + b"1.0," * (LINE_BYTES // 4) + b"1.0\n"
    body = with_long_line(csv_bytes(names, X), 150, long_line)  # after the header and 150 rows: line 152
    runner = local_runner(tmp_path, registry)
    runner.store.put(f"batch/input/{DATE}/a.csv", body)
    runner.scorer({"name": "breast-cancer", "version": champion})  # the model is loaded before measuring
    del body, long_line

    tracemalloc.start()
    try:
        result = runner.run(DATE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result["status"] == "succeeded"
    assert result["manifest"]["rows"] == {"read": 301, "scored": 300, "rejected": 1}
    rejected = read(tmp_path, OUT + "rejected.csv")
    assert [(r["line"], r["reason"]) for r in rejected] == [("152", REASON)]
    ids = [r["id"] for r in read(tmp_path, OUT + "predictions/part-00000.csv")]
    assert ids == [f"r{i}" for i in range(300)]
    assert peak < PEAK_BYTES, f"peak traced memory {peak} bytes"


def test_part_boundaries_inside_a_long_line_and_json_lines(tmp_path, registry, champion):
    names, X = features_and_rows(200, seed=6)
    csv_body = with_long_line(csv_bytes(names, X), 99, b"r_long," + b"2.5," * (LINE_BYTES // 4) + b"2.5\n")
    row = json.dumps({"id": "j_long", "pad": "z" * LINE_BYTES}).encode() + b"\n"
    jsonl_body = with_long_line(jsonl_bytes(names, X[:40]), 9, row)  # line 11
    runner = local_runner(tmp_path, registry, part_bytes=3 * 1024**2)
    runner.store.put(f"batch/input/{DATE}/a.csv", csv_body)
    runner.store.put(f"batch/input/{DATE}/b.jsonl", jsonl_body)
    del csv_body, jsonl_body, row

    prepared = runner.prepare(DATE, split=True)
    parts = runner.parts(prepared["run"])
    long_start = len(csv_bytes(names, X[:99]))  # the header and 99 rows come before the long line
    assert sum(1 for p in parts if p["key"].endswith("a.csv") and long_start < p["start"] < long_start + LINE_BYTES) > 2
    manifest = runner.execute(prepared["run"])

    assert manifest["rows"] == {"read": 242, "scored": 240, "rejected": 2}
    rejected = read(tmp_path, OUT + "rejected.csv")
    assert sorted((r["object"].rsplit("/", 1)[-1], r["line"], r["reason"]) for r in rejected) == [
        ("a.csv", "101", REASON),
        ("b.jsonl", "11", REASON),
    ]
    ids = [r["id"] for key in manifest["outputs"]["predictions"] for r in read(tmp_path, key)]
    assert sorted(ids) == sorted([f"r{i}" for i in range(200)] + [str(i) for i in range(40)])
