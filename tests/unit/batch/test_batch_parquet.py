"""Parquet batch input against moto S3: snappy, zstd and gzip files written by fastparquet with several row
groups; only the model's columns are fetched; a large object fans out by row groups; missing values and
wrong-typed columns are handled as for CSV; and the rejected rows, manifest, drift and rerun rules are the same."""

from __future__ import annotations

import datetime as dt
import io
import threading

import fastparquet
import numpy as np
import pandas as pd
import pytest
from modelops.batch import plan
from modelops.batch.parquet import TAIL_READ_BYTES, RangeFile, describe_row_groups
from modelops.batch.run import BatchRunner
from modelops.batch.store import ObjectInfo, Store
from modelops.core.errors import InputError, ModelOpsError
from modelops.model.artifact import write_artifact
from modelops.model.dataset import read_csv as read_training_csv
from modelops.model.runtimecheck import pinned_versions
from modelops.model.training import train
from support.batch import (
    BUCKET,
    DATE,
    TRAINING,
    csv_bytes,
    features_and_rows,
    manifest,
    put_input,
    read_csv,
    register_champion,
    runner,
)

OUT = f"batch/output/{DATE}/"


def parquet_bytes(frame: pd.DataFrame, tmp_path, compression: str = "SNAPPY", rows_per_group: int = 50) -> bytes:
    path = tmp_path / f"{compression}-{rows_per_group}.parquet"
    fastparquet.write(str(path), frame, compression=compression, row_group_offsets=rows_per_group, write_index=False)
    return path.read_bytes()


def feature_frame(names: list[str], X: np.ndarray, first_id: int = 0) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=names)
    frame.insert(0, "id", [f"r{i}" for i in range(first_id, first_id + len(X))])
    return frame


def predictions(s3, date: str = DATE) -> list[dict[str, str]]:
    return [row for key in manifest(s3, date)["outputs"]["predictions"] for row in read_csv(s3, key)]


def proba(registry, version, X):
    return registry.load("breast-cancer", version).estimator.predict_proba(X)[:, 1]


class RecordingStore(Store):
    """The S3 store, recording each ranged GET's span."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ranges: list[tuple[str, int, int | None]] = []

    def open_range(self, key, etag, start, end=None):
        self.ranges.append((key, start, end))
        return super().open_range(key, etag, start, end)


def test_snappy_zstd_and_gzip_files_score_as_the_same_rows_in_csv(s3, registry, champion, tmp_path):
    names, X = features_and_rows(450, seed=11)
    for n, compression in enumerate(["SNAPPY", "ZSTD", "GZIP"]):
        rows = X[n * 150 : (n + 1) * 150]
        put_input(
            s3,
            f"part-{n}.{compression.lower()}.parquet",
            parquet_bytes(feature_frame(names, rows, n * 150), tmp_path, compression),
        )
    put_input(s3, "all.csv", csv_bytes(names, X), date="2026-03-15")
    runner(s3, chunk_rows=40).run(DATE)
    runner(s3, chunk_rows=40).run("2026-03-15")

    m, m_csv = manifest(s3), manifest(s3, "2026-03-15")
    assert m["rows"] == {"read": 450, "scored": 450, "rejected": 0}
    assert [i["format"] for i in m["inputs"]] == ["parquet"] * 3
    assert m["drift"] == m_csv["drift"]  # the same bins from the same values
    rows = predictions(s3)
    assert rows == predictions(s3, "2026-03-15")
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(450)]
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba(registry, champion, X), atol=1e-6)
    # a rerun of a committed date is skipped, as for CSV
    assert runner(s3).run(DATE)["status"] == "skipped"


def test_only_the_models_columns_are_fetched(s3, registry, champion, tmp_path):
    names, X = features_and_rows(1000, seed=12)
    frame = feature_frame(names, X)
    rng = np.random.default_rng(0)
    frame["notes"] = ["".join(rng.choice(list("abcdefghij"), 400)) for _ in range(len(frame))]  # not a feature
    body = parquet_bytes(frame, tmp_path, "SNAPPY", rows_per_group=250)
    put_input(s3, "a.parquet", body)
    key = f"batch/input/{DATE}/a.parquet"
    pf = fastparquet.ParquetFile(io.BytesIO(body))
    notes = [
        (
            min(c.meta_data.dictionary_page_offset or c.meta_data.data_page_offset, c.meta_data.data_page_offset),
            c.meta_data.total_compressed_size,
        )
        for rg in pf.row_groups
        for c in rg.columns
        if c.meta_data.path_in_schema == ["notes"]
    ]
    assert sum(size for _, size in notes) > len(body) / 2  # the unused column is most of the file

    store = RecordingStore(BUCKET, s3=s3)
    BatchRunner(runner(s3).config, store=store).run(DATE)
    assert manifest(s3)["rows"]["scored"] == 1000
    fetched = [(start, end or len(body)) for k, start, end in store.ranges if k == key]
    overlap = sum(max(0, min(e, start + size) - max(s, start)) for s, e in fetched for start, size in notes)
    # only the footer's read-ahead (the object's last TAIL_READ_BYTES) may touch the unused column
    assert overlap <= TAIL_READ_BYTES < sum(size for _, size in notes) / 4
    rows = predictions(s3)
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba(registry, champion, X), atol=1e-6)


def test_a_large_object_fans_out_by_row_groups(s3, registry, champion, tmp_path):
    names, X = features_and_rows(700, seed=13)
    X[430, 3] = np.inf  # row 431, in the fifth row group
    body = parquet_bytes(feature_frame(names, X), tmp_path, "ZSTD", rows_per_group=100)
    put_input(s3, "big.parquet", body)
    groups = describe_row_groups(
        Store(BUCKET, s3=s3), f"batch/input/{DATE}/big.parquet", _etag(s3, "big.parquet"), len(body)
    )
    assert [g.rows for g in groups] == [100] * 7
    assert [g.first_row for g in groups] == list(range(0, 700, 100))

    target = 2 * min(g.compressed_bytes for g in groups)
    r = runner(s3, part_bytes=target, inline_max_bytes=1, chunk_rows=64)
    prepared = r.prepare(DATE)
    assert prepared["mode"] == "fanout"
    parts = r.parts(prepared["run"])
    spans = [p["row_groups"] for p in parts]
    assert len(parts) >= 3 and spans[0][0] == 0 and spans[-1][1] == 7
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # contiguous, whole row groups
    for first, stop in spans[:-1]:  # each part closes at the first row group that reaches the target
        sizes = [g.compressed_bytes for g in groups[first:stop]]
        assert sum(sizes) >= target > sum(sizes[:-1])
    assert [p["rows"] for p in parts] == [100 * (stop - first) for first, stop in spans]
    assert {(p["start"], p["end"]) for p in parts} == {(0, len(body))}
    r.execute(prepared["run"])

    m = manifest(s3)
    assert m["rows"] == {"read": 700, "scored": 699, "rejected": 1}
    assert len(m["outputs"]["predictions"]) == len(parts)
    rows = predictions(s3)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(700) if i != 430]
    keep = np.arange(700) != 430
    np.testing.assert_allclose(
        [float(r["proba_malignant"]) for r in rows], proba(registry, champion, X[keep]), atol=1e-6
    )
    rejected = read_csv(s3, OUT + "rejected.csv")
    assert [(r["line"], r["reason"]) for r in rejected] == [("431", f"column '{names[3]}': inf is not a finite number")]


def test_without_id_columns_rows_are_named_by_their_row_number_in_every_part(s3, registry, champion, tmp_path):
    names, X = features_and_rows(300, seed=14)
    body = parquet_bytes(pd.DataFrame(X, columns=names), tmp_path, "SNAPPY", rows_per_group=50)
    put_input(s3, "x.parquet", body)
    r = runner(s3, id_columns=(), part_bytes=1, inline_max_bytes=1, chunk_rows=32)
    prepared = r.prepare(DATE)
    assert len(r.parts(prepared["run"])) == 6  # split although rows have no id: the footer numbers them
    r.execute(prepared["run"])
    rows = predictions(s3)
    assert list(rows[0])[:3] == ["object", "line", "prediction"]
    assert [int(r["line"]) for r in rows] == list(range(1, 301))
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba(registry, champion, X), atol=1e-6)


def test_row_group_spans_close_once_they_hold_the_target_bytes():
    class Group:
        def __init__(self, index, rows, size):
            self.index, self.rows, self.compressed_bytes = index, rows, size

    groups = [Group(0, 10, 5), Group(1, 10, 5), Group(2, 10, 30), Group(3, 5, 1)]
    assert plan.group_spans(groups, 10) == [(0, 2, 20), (2, 3, 10), (3, 4, 5)]
    assert plan.group_spans(groups, 1000) == [(0, 4, 35)]
    info = ObjectInfo(key="in/a.parquet", etag='"e"', size=41)
    whole = plan.plan_parts([info], None)
    assert len(whole) == 1 and "row_groups" not in whole[0] and whole[0]["format"] == "parquet"
    split = plan.plan_parts([info], None, row_group_bytes=10, row_groups=lambda o: groups)
    assert [p["row_groups"] for p in split] == [[0, 2], [2, 3], [3, 4]]
    assert plan.work_bytes(info) == 41 * plan.PARQUET_EXPANSION


# ---- missing values and wrong types: the same rules as for CSV --------------------------------------------
@pytest.fixture
def own_model(registry, tmp_path):
    """A model trained on a CSV with gaps in 'age' and 'plan', none in 'income'."""
    trained = train(read_training_csv(TRAINING, "y"), "own")
    write_artifact(tmp_path / "own", trained.estimator, trained.manifest, trained.golden)
    register_champion(registry, tmp_path / "own")
    return registry.load("own", "champion")


def test_missing_values_and_wrong_types_reject_rows_with_reasons(s3, own_model, tmp_path):
    typed = pd.DataFrame(
        {
            "id": pd.array([1, 2, 3, 4, 5, 6], dtype="Int64"),
            "age": [30.0, np.nan, None, 30.0, 30.0, 30.0],
            "income": pd.array([2000, 2000, 2000, None, 2000, 2000], dtype="Int64"),
            "plan": ["a", "a", None, "a", "N/A", "b"],
            "extra": ["x"] * 6,
        }
    )
    put_input(s3, "a.parquet", parquet_bytes(typed, tmp_path, "SNAPPY", rows_per_group=4))
    # a Glue table typed every column as text; and one where 'age' became a timestamp
    text = pd.DataFrame(
        {"id": ["7", "8", "9"], "age": ["31", "NA", "x"], "income": ["2100", "2200", "2300"], "plan": ["b", "a", "a"]}
    )
    put_input(s3, "b.parquet", parquet_bytes(text, tmp_path, "GZIP"))
    stamped = pd.DataFrame({"id": ["10"], "age": [dt.datetime(2026, 1, 1)], "income": [2000], "plan": ["a"]})
    put_input(s3, "c.parquet", parquet_bytes(stamped, tmp_path, "ZSTD"))
    runner(s3, model_name="own", chunk_rows=3).run(DATE)

    m = manifest(s3)
    assert m["rows"] == {"read": 10, "scored": 7, "rejected": 3}
    rows = predictions(s3)
    assert [r["id"] for r in rows] == ["1", "2", "3", "5", "6", "7", "8"]
    matrix = np.array(
        [
            [30, 2000, "a"],
            [np.nan, 2000, "a"],
            [np.nan, 2000, np.nan],
            [30, 2000, np.nan],
            [30, 2000, "b"],
            [31, 2100, "b"],
            [np.nan, 2200, "a"],
        ],
        dtype=object,
    )
    expected = own_model.estimator.predict_proba(matrix)[:, 1]
    np.testing.assert_allclose([float(r["proba_yes"]) for r in rows], expected, atol=1e-6)
    reasons = [(r["object"].rsplit("/", 1)[1], r["line"], r["reason"]) for r in read_csv(s3, OUT + "rejected.csv")]
    assert reasons == [
        ("a.parquet", "4", "column 'income' is null"),
        ("b.parquet", "3", "column 'age': 'x' is not a number"),
        ("c.parquet", "1", "column 'age' holds datetime64[us] values in this file, expected a number"),
    ]


def test_a_missing_feature_column_or_a_file_that_is_not_parquet_fails_with_one_line(s3, champion, tmp_path):
    names, X = features_and_rows(10)
    put_input(s3, "a.parquet", parquet_bytes(feature_frame(names, X).drop(columns=[names[2]]), tmp_path))
    with pytest.raises(InputError, match=f"a.parquet: missing required feature column '{names[2]}'"):
        runner(s3).run(DATE)
    put_input(s3, "a.parquet", csv_bytes(names, X))
    with pytest.raises(InputError, match=r"a.parquet: not a Parquet file \(no PAR1 at its end\)"):
        runner(s3).run(DATE)


def test_a_footer_claiming_more_bytes_than_the_object_is_refused_before_it_is_read(s3, champion, tmp_path):
    names, X = features_and_rows(10)
    body = bytearray(parquet_bytes(feature_frame(names, X), tmp_path))
    body[-8:-4] = (len(body) * 10).to_bytes(4, "little")
    put_input(s3, "a.parquet", bytes(body))
    with pytest.raises(ModelOpsError, match="not a valid Parquet file"):
        runner(s3).run(DATE)


def test_id_columns_of_any_type_null_ids_and_ids_that_need_quoting(s3, champion, tmp_path):
    names, X = features_and_rows(6, seed=15)
    frame = pd.DataFrame(X, columns=names)
    frame.insert(0, "id", ["a", "b,c", None, 'd"e', "f", "g"])
    frame.insert(1, "batch", pd.array([7, 7, 7, 7, None, 8], dtype="Int64"))
    put_input(s3, "a.parquet", parquet_bytes(frame, tmp_path))
    plain = pd.DataFrame(X, columns=names)
    plain.insert(0, "id", ["p", "q", "r", "s", "t", "u"])
    plain.insert(1, "batch", np.arange(6, dtype=np.uint64) + np.uint64(2**64 - 6))  # beyond int64
    put_input(s3, "b.parquet", parquet_bytes(plain, tmp_path, "ZSTD"))
    runner(s3, id_columns=("id", "batch")).run(DATE)
    rows = predictions(s3)
    assert [(r["id"], r["batch"]) for r in rows] == [
        ("a", "7"),
        ("b,c", "7"),
        ('d"e', "7"),
        ("g", "8"),
        *[(t, str(2**64 - 6 + i)) for i, t in enumerate("pqrstu")],
    ]
    reasons = [(r["line"], r["reason"]) for r in read_csv(s3, OUT + "rejected.csv")]
    assert reasons == [("3", "id column 'id' is null"), ("5", "id column 'batch' is null")]


def test_a_row_group_too_large_to_decode_is_refused_with_a_hint(s3, champion, tmp_path, monkeypatch):
    from modelops.batch import parquet

    names, X = features_and_rows(100)
    put_input(s3, "a.parquet", parquet_bytes(feature_frame(names, X), tmp_path, rows_per_group=100))
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_BYTES", 100 * 31 * 8 - 1)  # the 30 features and the id
    with pytest.raises(InputError, match="row group 0 holds 100 rows.*write smaller row groups"):
        runner(s3).run(DATE)


def test_range_file_serves_fetched_spans_with_one_get_per_adjacent_run(s3):
    s3.put_object(Bucket=BUCKET, Key="k", Body=bytes(range(256)) * 64)
    store = RecordingStore(BUCKET, s3=s3)
    whole = RangeFile(store, "k", s3.head_object(Bucket=BUCKET, Key="k")["ETag"], 256 * 64)
    f = whole.holding(whole.fetch_spans([(100, 200), (0, 50), (60, 90)]))  # gaps under MERGE_GAP_BYTES: one GET
    assert store.ranges == [("k", 0, 200)]
    f.seek(120)
    assert f.read(5) == bytes(range(120, 125)) and f.tell() == 125
    assert len(store.ranges) == 1
    f.seek(-4, 2)
    assert f.read() == bytes(range(252, 256))  # outside the fetched spans: one exact GET
    assert store.ranges[-1] == ("k", 256 * 64 - 4, 256 * 64)


def test_the_batch_only_parquet_layer_is_not_part_of_the_runtime_models_are_checked_against():
    pinned = pinned_versions()
    assert "scikit-learn" in pinned and "fastparquet" not in pinned and "cramjam" not in pinned


def _etag(s3, name: str) -> str:
    return s3.head_object(Bucket=BUCKET, Key=f"batch/input/{DATE}/{name}")["ETag"]


def test_a_parts_row_groups_are_read_through_one_streamed_get(s3, registry, champion, tmp_path):
    """With every column a feature or the id, the row groups' column chunks lie side by side: after the footer, one
    streamed GET reads the whole part forward, instead of a GET per row group (each of which a store may answer
    in time proportional to the object, as moto's server does), and the answers are the same."""
    names, X = features_and_rows(1000, seed=14)
    body = parquet_bytes(feature_frame(names, X), tmp_path, "SNAPPY", rows_per_group=100)
    assert len(fastparquet.ParquetFile(io.BytesIO(body)).row_groups) == 10
    put_input(s3, "a.parquet", body)
    key = f"batch/input/{DATE}/a.parquet"
    store = RecordingStore(BUCKET, s3=s3)
    BatchRunner(runner(s3).config, store=store).run(DATE)
    reads = [(start, end) for k, start, end in store.ranges if k == key]
    footer_start = len(body) - TAIL_READ_BYTES
    data_reads = [(start, end) for start, end in reads if start < footer_start]
    assert len(data_reads) == 1, reads  # the planner's footer reads aside, one GET for all ten row groups
    assert data_reads[0][0] == 4  # the first column chunk, right after the leading PAR1
    rows = predictions(s3)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(1000)]
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba(registry, champion, X), atol=1e-6)


def test_a_streamed_read_that_ends_early_is_an_input_error():
    class ShortStore:
        bucket = "b"

        def uri(self, key):
            return f"s3://b/{key}"

        def open_range(self, key, etag, start, end=None):
            return io.BytesIO(b"x" * 10)  # the object is shorter than the run asked for

    file = RangeFile(ShortStore(), "k", "e", 1000)
    file.stream([(0, 100)])
    with pytest.raises(InputError, match="ended early"):
        file.fetch_spans([(0, 50)])


def test_row_groups_decode_on_the_scoring_workers_with_the_same_answers_as_in_turn(
    s3, registry, champion, tmp_path, monkeypatch
):
    """The reading thread only fetches a row group's bytes; the scoring workers decode it, several row groups at
    once. The predictions, their order, the rejects and the drift counts are those of decoding in turn."""
    from modelops.batch import parquet

    names, X = features_and_rows(1200, seed=16)
    X[[5, 777], 2] = np.nan  # rejected: the feature was trained without gaps
    frame = feature_frame(names, X)
    frame["id"] = np.arange(1200, dtype=np.int64) - 600  # integer ids, negative ones too
    put_input(s3, "a.parquet", parquet_bytes(frame, tmp_path, "ZSTD", rows_per_group=100))
    put_input(s3, "a.parquet", parquet_bytes(frame, tmp_path, "ZSTD", rows_per_group=100), date="2026-03-15")
    threads: list[str] = []
    decoded = parquet.ParquetReader.decoded

    def recording(self, fetched):
        threads.append(threading.current_thread().name)
        yield from decoded(self, fetched)

    monkeypatch.setattr(parquet.ParquetReader, "decoded", recording)
    side = runner(s3, chunk_rows=40, score_workers=3)
    handed_back: list[tuple[int, tuple[int, ...]]] = []
    side.on_chunk = lambda chunk: handed_back.append((len(chunk.ids), chunk.matrix.shape))
    side.run(DATE)
    assert len(threads) == 12 and all(name.startswith("batch-score") for name in threads)
    # scored chunks come back with their ids but without their feature matrix (freed once scored)
    assert sum(n for n, _ in handed_back) == 1198 and {shape for _, shape in handed_back} == {(0, 30)}
    runner(s3, chunk_rows=40, score_workers=1, prefetch=0).run("2026-03-15")  # read, decode and score in turn
    assert threads[12:] == ["MainThread"] * 12

    side_by_side, in_turn = manifest(s3), manifest(s3, "2026-03-15")
    assert side_by_side["rows"] == in_turn["rows"] == {"read": 1200, "scored": 1198, "rejected": 2}
    assert side_by_side["drift"] == in_turn["drift"]
    rows = predictions(s3)
    assert rows == predictions(s3, "2026-03-15")
    assert [r["id"] for r in rows] == [str(i - 600) for i in range(1200) if i not in (5, 777)]
    rejected = [(r["line"], r["reason"]) for r in read_csv(s3, OUT + "rejected.csv")]
    assert rejected == [(r["line"], r["reason"]) for r in read_csv(s3, "batch/output/2026-03-15/rejected.csv")]
    assert rejected == [("6", "column 'mean_perimeter' is null"), ("778", "column 'mean_perimeter' is null")]
