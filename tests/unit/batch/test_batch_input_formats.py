"""Batch input as data teams write it, against moto S3: gzip-compressed CSV and JSON Lines, zero-byte part
files, a UTF-8 byte order mark, files without an id column, missing values, and a bucket that does not exist."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from modelops.batch import plan
from modelops.batch.run import BatchRunner, scheduled_step
from modelops.batch.store import ObjectInfo, open_store
from modelops.core.errors import ModelOpsError, NotFoundError
from modelops.model.artifact import write_artifact
from modelops.model.dataset import read_csv as read_training_csv
from modelops.model.training import train
from support.batch import (
    BUCKET,
    DATE,
    TRAINING,
    config,
    csv_bytes,
    features_and_rows,
    jsonl_bytes,
    manifest,
    put_input,
    read_csv,
    register_champion,
    runner,
)

OUT = f"batch/output/{DATE}/"
BOM = b"\xef\xbb\xbf"


def proba(registry, version, X):
    return registry.load("breast-cancer", version).estimator.predict_proba(X)[:, 1]


def predictions(s3) -> list[dict[str, str]]:
    return [row for key in manifest(s3)["outputs"]["predictions"] for row in read_csv(s3, key)]


def test_gzip_csv_and_jsonl_score_like_their_plain_versions(s3, registry, champion):
    names, X = features_and_rows(300, seed=3)
    put_input(s3, "a.csv.gz", gzip.compress(csv_bytes(names, X[:200])))
    # two gzip members one after the other, as `cat a.gz b.gz` writes them
    body = jsonl_bytes(names, X[200:])
    half = body.index(b"\n", len(body) // 2) + 1
    put_input(s3, "b.jsonl.gz", gzip.compress(body[:half]) + gzip.compress(body[half:]))
    runner(s3, chunk_rows=32).run(DATE)

    m = manifest(s3)
    assert m["rows"] == {"read": 300, "scored": 300, "rejected": 0}
    assert [(i["format"], i.get("compression")) for i in m["inputs"]] == [("csv", "gzip"), ("jsonl", "gzip")]
    rows = predictions(s3)
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba(registry, champion, X), atol=1e-6)


def test_gzip_objects_are_planned_whole_even_for_the_fan_out(s3, champion):
    names, X = features_and_rows(700, seed=4)
    put_input(s3, "a.csv.gz", gzip.compress(csv_bytes(names, X), compresslevel=1))
    put_input(s3, "b.csv", csv_bytes(names, X))
    r = runner(s3, part_bytes=16 * 1024, chunk_rows=64, inline_max_bytes=1)
    prepared = r.prepare(DATE)
    assert prepared["mode"] == "fanout"
    parts = r.parts(prepared["run"])
    gz = [p for p in parts if p["key"].endswith(".gz")]
    assert len(gz) == 1 and gz[0]["start"] == 0 and gz[0]["end"] == gz[0]["size"] > 16 * 1024
    assert len(parts) > 5  # the plain object is still cut into byte ranges
    r.execute(prepared["run"])
    assert manifest(s3)["rows"]["scored"] == 1400


def test_gzip_counts_at_its_expected_size_for_the_inline_threshold():
    small = ObjectInfo("d/a.csv.gz", '"e"', 300)
    assert plan.choose_mode([small], 300 * plan.GZIP_EXPANSION) == plan.INLINE
    assert plan.choose_mode([small], 300 * plan.GZIP_EXPANSION - 1) == plan.FANOUT
    assert plan.choose_mode([ObjectInfo("d/a.csv", '"e"', 300)], 300) == plan.INLINE


def test_a_corrupt_gzip_object_fails_the_run_with_one_line(s3, champion):
    names, X = features_and_rows(50)
    whole = gzip.compress(csv_bytes(names, X))
    put_input(s3, "a.csv.gz", whole[: len(whole) // 2])  # truncated
    with pytest.raises(ModelOpsError, match=r"a\.csv\.gz: not a valid gzip file") as failure:
        runner(s3).run(DATE)
    assert "\n" not in str(failure.value)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "_manifest.json")


def test_zero_byte_part_files_are_skipped_and_listed(s3, registry, champion):
    names, X = features_and_rows(40)
    put_input(s3, "part-00000.csv", csv_bytes(names, X))
    put_input(s3, "part-00001.csv", b"")
    put_input(s3, "part-00002.jsonl", b"")
    put_input(s3, "part-00003.csv.gz", gzip.compress(b""))  # compressed, but holds nothing
    runner(s3).run(DATE)
    m = manifest(s3)
    assert m["rows"]["scored"] == 40
    skipped = {s["key"].rsplit("/", 1)[1]: s["reason"] for s in m["skipped_inputs"]}
    assert skipped == {
        "part-00001.csv": "empty object (0 bytes)",
        "part-00002.jsonl": "empty object (0 bytes)",
        "part-00003.csv.gz": "no data after decompression",
    }
    assert [i["key"].rsplit("/", 1)[1] for i in m["inputs"]] == ["part-00000.csv", "part-00003.csv.gz"]


def test_a_folder_of_zero_byte_objects_fails_the_run(s3, champion):
    put_input(s3, "part-00000.csv", b"")
    with pytest.raises(ModelOpsError, match=r"is empty \(1 zero-byte object\(s\)\): nothing to score"):
        runner(s3).run(DATE)


def test_a_byte_order_mark_is_accepted_on_csv_and_json_lines(s3, registry, champion):
    names, X = features_and_rows(20, seed=6)
    put_input(s3, "a.csv", BOM + csv_bytes(names, X[:10]))
    put_input(s3, "b.jsonl", BOM + jsonl_bytes(names, X[10:]))
    put_input(s3, "c.jsonl.gz", gzip.compress(BOM + jsonl_bytes(names, X[:5])))
    runner(s3).run(DATE)
    m = manifest(s3)
    assert m["rows"] == {"read": 25, "scored": 25, "rejected": 0}


@pytest.mark.parametrize("layout", ["bulk", "line by line", "json lines", "gzip"])
def test_without_id_columns_each_row_carries_its_object_and_line(s3, registry, champion, layout):
    names, X = features_and_rows(120, seed=7)
    csv_lines = csv_bytes(names, X).decode().splitlines()
    no_ids = [line.split(",", 1)[1] for line in csv_lines]  # an export without an id column
    expected_lines = list(range(2, 122))
    if layout == "line by line":
        no_ids.insert(50, "")  # a blank line (line 51) takes that stretch off the bulk path
        expected_lines = [n if n < 51 else n + 1 for n in expected_lines]
    body = ("\n".join(no_ids) + "\n").encode()
    if layout == "json lines":
        body = b"".join(json.dumps(dict(zip(names, map(float, row), strict=True))).encode() + b"\n" for row in X)
        expected_lines = list(range(1, 121))
    name = {"json lines": "x.jsonl", "gzip": "x,1.csv.gz"}.get(layout, "x.csv")
    put_input(s3, name, gzip.compress(body) if name.endswith(".gz") else body)
    runner(s3, id_columns=(), chunk_rows=16).run(DATE)
    rows = predictions(s3)
    assert list(rows[0])[:3] == ["object", "line", "prediction"]
    assert {r["object"] for r in rows} == {f"batch/input/{DATE}/{name}"}  # a comma in the key is quoted
    assert [int(r["line"]) for r in rows] == expected_lines
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba(registry, champion, X), atol=1e-6)


def test_without_id_columns_objects_are_not_cut_into_byte_ranges(s3, champion):
    names, X = features_and_rows(700, seed=4)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, id_columns=(), part_bytes=16 * 1024, inline_max_bytes=1)
    prepared = r.prepare(DATE)
    assert prepared["mode"] == "fanout" and len(r.parts(prepared["run"])) == 1


def test_a_missing_id_column_says_how_to_do_without(s3, champion):
    names, X = features_and_rows(10)
    put_input(s3, "a.csv", csv_bytes(names, X).replace(b"id,", b"key,", 1))
    with pytest.raises(ModelOpsError, match="missing required id column 'id' .*object and line"):
        runner(s3).run(DATE)


# ---- missing values: parsed as training parses them -------------------------------------------------------


@pytest.fixture
def own_model(registry, tmp_path):
    """A model trained on a CSV with gaps in 'age' and 'plan', none in 'income'."""
    trained = train(read_training_csv(TRAINING, "y"), "own")
    write_artifact(tmp_path, trained.estimator, trained.manifest, trained.golden)
    register_champion(registry, tmp_path)
    return registry.load("own", "champion")


def test_missing_values_score_where_the_model_saw_gaps(s3, own_model):
    nullable = {f.name: f.nullable for f in own_model.manifest.schema.features}
    assert nullable == {"age": True, "income": False, "plan": True}
    put_input(
        s3,
        "a.csv",
        b"id,age,income,plan\n1,30,2000,a\n2,NA,2000,a\n3,,2000,null\n4,30,,a\n5,30,NaN,b\n6,30,x,b\n",
    )
    put_input(
        s3,
        "b.jsonl",
        b'{"id": 7, "age": null, "income": 5, "plan": null}\n{"id": 8, "age": 1, "income": null, "plan": "a"}\n',
    )
    runner(s3, model_name="own").run(DATE)
    m = manifest(s3)
    assert m["rows"] == {"read": 8, "scored": 4, "rejected": 4}
    assert [r["id"] for r in predictions(s3)] == ["1", "2", "3", "7"]
    rows = predictions(s3)
    matrix = np.array([[30, 2000, "a"], [np.nan, 2000, "a"], [np.nan, 2000, np.nan]], dtype=object)
    expected = own_model.estimator.predict_proba(matrix)[:, 1]
    np.testing.assert_allclose([float(r["proba_yes"]) for r in rows[:3]], expected, atol=1e-6)
    reasons = [(r["line"], r["reason"]) for r in read_csv(s3, OUT + "rejected.csv")]
    assert reasons == [
        ("5", "column 'income' is empty"),
        ("6", "column 'income' has the missing value 'NaN'"),
        ("7", "column 'income': 'x' is not a number"),
        ("2", "field 'income': a value is required (null is not allowed)"),
    ]


def test_tokens_read_as_missing_in_training_are_missing_in_batch_input(s3, registry, tmp_path):
    body = TRAINING.replace(b",1000,", b",?,")  # row 0's income is '?'
    trained = train(read_training_csv(body, "y", missing=["?"]), "own")
    assert trained.manifest.recipe["missing_values"] == ["?"]
    write_artifact(tmp_path, trained.estimator, trained.manifest, trained.golden)
    register_champion(registry, tmp_path)
    put_input(s3, "a.csv", b"id,age,income,plan\n1,30,?,a\n")
    runner(s3, model_name="own").run(DATE)
    assert manifest(s3)["rows"] == {"read": 1, "scored": 1, "rejected": 0}


# ---- a bucket that does not exist is an error, not a dependency wait --------------------------------------
def test_a_missing_bucket_fails_instead_of_waiting(s3, champion):
    r = runner(s3, bucket="no-such-bucket", upstream_marker="{date}/_SUCCESS")
    r.store = open_store("no-such-bucket", s3=s3)
    for step in (lambda: r.run(DATE), lambda: r.status(DATE), lambda: scheduled_step(r, DATE, False, 1, 3, 60)):
        with pytest.raises(NotFoundError, match="bucket 'no-such-bucket' does not exist"):
            step()


def test_a_missing_local_directory_fails_instead_of_waiting(tmp_path, registry, champion, s3):
    r = BatchRunner(config(bucket=str(tmp_path / "nowhere")), registry=registry)
    with pytest.raises(NotFoundError, match="does not exist"):
        r.run(DATE)
