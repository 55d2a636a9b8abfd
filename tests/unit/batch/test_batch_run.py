"""Batch runs end to end against moto S3: happy paths, rejects, dependencies, idempotency, failures, backfill."""

from __future__ import annotations

import json

import modelops.batch.part as part_module
import numpy as np
import pytest
from botocore.exceptions import ClientError
from modelops.core.errors import ModelOpsError
from support.batch import (
    BUCKET,
    DATE,
    config,
    csv_bytes,
    features_and_rows,
    jsonl_bytes,
    keys,
    manifest,
    put_input,
    read_csv,
    register_champion,
    runner,
)

OUT = f"batch/output/{DATE}/"


def expected_proba(registry, version, X):
    return registry.load("breast-cancer", version).estimator.predict_proba(X)


def test_csv_happy_path(s3, registry, champion):
    names, X = features_and_rows(500)
    put_input(s3, "part-a.csv", csv_bytes(names, X))
    result = runner(s3).run(DATE)

    assert result["status"] == "succeeded"
    m = manifest(s3)
    assert m["rows"] == {"read": 500, "scored": 500, "rejected": 0}
    assert m["model"] == {"name": "breast-cancer", "version": champion}
    etag = s3.head_object(Bucket=BUCKET, Key=f"batch/input/{DATE}/part-a.csv")["ETag"]
    assert m["inputs"] == [
        {"key": f"batch/input/{DATE}/part-a.csv", "etag": etag, "size": len(csv_bytes(names, X)), "format": "csv"}
    ]
    assert set(m["drift"]["feature_psi"]) == set(names) and m["drift"]["prediction_psi"] is not None
    rows = read_csv(s3, OUT + "predictions/part-00000.csv")
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(500)]
    proba = expected_proba(registry, champion, X)
    np.testing.assert_allclose([float(r["proba_malignant"]) for r in rows], proba[:, 1], atol=1e-6)
    assert [r["prediction"] for r in rows] == [["benign", "malignant"][i] for i in proba.argmax(1)]
    assert {r["model_version"] for r in rows} == {champion}
    assert read_csv(s3, OUT + "rejected.csv") == []
    # _lease.json: the date's lease, released (batch.lease)
    assert keys(s3, OUT) == sorted(
        [OUT + "_lease.json", OUT + "_manifest.json", OUT + "predictions/part-00000.csv", OUT + "rejected.csv"]
    )


def test_jsonl_happy_path(s3, registry, champion):
    names, X = features_and_rows(300, seed=1)
    put_input(s3, "events.jsonl", jsonl_bytes(names, X))
    runner(s3).run(DATE)

    m = manifest(s3)
    assert m["rows"] == {"read": 300, "scored": 300, "rejected": 0} and m["inputs"][0]["format"] == "jsonl"
    rows = read_csv(s3, OUT + "predictions/part-00000.csv")
    assert [r["id"] for r in rows] == [str(i) for i in range(300)]
    np.testing.assert_allclose(
        [float(r["proba_malignant"]) for r in rows], expected_proba(registry, champion, X)[:, 1], atol=1e-6
    )


def test_rejected_rows_get_line_and_reason(s3, champion):
    names, X = features_and_rows(6, seed=2)
    lines = csv_bytes(names, X, ids=["a", "b", "c", "d", "e", "f"]).decode().splitlines()
    lines[2] = lines[2].replace(",", ";", 1)  # line 3: one field short
    fields = lines[4].split(",")
    fields[3] = "abc"  # line 5: not a number
    lines[4] = ",".join(fields)
    fields = lines[5].split(",")
    fields[7] = ""  # line 6: empty value
    lines[5] = ",".join(fields)
    fields = lines[6].split(",")
    fields[1] = "inf"  # line 7: not finite
    lines[6] = ",".join(fields)
    lines.insert(3, "")  # a blank line (line 4) is not a row
    lines[1] = '"id, quoted"' + lines[1][1:]  # a quoted id with a comma still scores
    body = ("\n".join(lines) + "\n").encode()
    put_input(s3, "mixed.csv", body)
    runner(s3).run(DATE)

    m = manifest(s3)
    assert m["rows"] == {"read": 6, "scored": 2, "rejected": 4}
    rejected = read_csv(s3, OUT + "rejected.csv")
    assert [(r["line"], r["object"]) for r in rejected] == [
        (str(n), f"batch/input/{DATE}/mixed.csv") for n in (3, 6, 7, 8)
    ]
    assert "expected 31 fields, found 30" in rejected[0]["reason"]
    assert f"column '{names[2]}': 'abc' is not a number" == rejected[1]["reason"]
    assert f"column '{names[6]}' is empty" == rejected[2]["reason"]
    assert "not a finite number" in rejected[3]["reason"]
    assert [r["id"] for r in read_csv(s3, OUT + "predictions/part-00000.csv")] == ["id, quoted", "c"]


def test_dependency_not_ready_gives_no_output_then_runs(s3, champion):
    names, X = features_and_rows(20)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, upstream_marker="{date}/_SUCCESS")

    result = r.run(DATE)
    assert result["status"] == "waiting"
    assert result["waiting_for"] == [f"upstream marker s3://{BUCKET}/batch/input/{DATE}/_SUCCESS"]
    assert keys(s3, "batch/output/") == []
    assert r.status(DATE)["status"] == "pending"

    put_input(s3, "_SUCCESS", b"")
    assert r.run(DATE)["status"] == "succeeded"
    assert manifest(s3)["rows"]["scored"] == 20  # the marker itself is not input


def test_cross_cycle_dependency_waits_for_previous_day(s3, champion):
    names, X = features_and_rows(10)
    for day in ("2026-03-13", DATE):
        put_input(s3, "a.csv", csv_bytes(names, X), date=day)
    r = runner(s3, require_previous=True)

    waiting = r.run(DATE)
    assert waiting["status"] == "waiting" and "previous run 2026-03-13" in waiting["waiting_for"][0]
    assert keys(s3, OUT) == []
    r2 = runner(s3)  # the previous day itself has no cross-cycle requirement configured here
    assert r2.run("2026-03-13")["status"] == "succeeded"
    assert r.run(DATE)["status"] == "succeeded"


def test_idempotent_rerun_skips_then_force_gives_identical_output(s3, champion):
    names, X = features_and_rows(400)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, chunk_rows=128)
    r.run(DATE)
    first = s3.get_object(Bucket=BUCKET, Key=OUT + "predictions/part-00000.csv")["Body"].read()
    first_manifest = manifest(s3)

    skipped = r.run(DATE)
    assert skipped["status"] == "skipped" and manifest(s3)["attempt"] == first_manifest["attempt"]

    forced = r.run(DATE, force=True)
    assert forced["status"] == "succeeded" and manifest(s3)["attempt"] != first_manifest["attempt"]
    assert s3.get_object(Bucket=BUCKET, Key=OUT + "predictions/part-00000.csv")["Body"].read() == first
    assert manifest(s3)["rows"] == first_manifest["rows"]
    assert not [k for k in keys(s3, OUT) if "_attempts" in k]


def _assert_clean_single_run(s3, n: int) -> None:
    m = manifest(s3)
    assert m["rows"] == {"read": n, "scored": n, "rejected": 0}
    ids = [r["id"] for r in read_csv(s3, OUT + "predictions/part-00000.csv")]
    assert ids == [f"r{i}" for i in range(n)]  # nothing lost, nothing duplicated
    assert not [k for k in keys(s3, OUT) if "_attempts" in k]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_crash_mid_run_then_rerun_is_clean(s3, champion):
    names, X = features_and_rows(1000)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, chunk_rows=200)
    seen = []

    def crash_on_third_chunk(chunk):
        seen.append(len(chunk.ids))
        if len(seen) == 3:
            raise RuntimeError("simulated crash")

    r.on_chunk = crash_on_third_chunk
    with pytest.raises(RuntimeError):
        r.run(DATE)
    assert seen == [25, 50, 100]  # the first blocks are 1/8, 1/4 and 1/2 of a chunk
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "predictions/").get("Contents")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "_manifest.json")
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []  # aborted, not dangling
    assert r.status(DATE)["status"] == "pending"

    r.on_chunk = None
    assert r.run(DATE)["status"] == "succeeded"
    _assert_clean_single_run(s3, 1000)


def test_failure_in_a_later_part_leaves_earlier_uploads_invisible_then_rerun(s3, champion):
    names, X = features_and_rows(400)
    put_input(s3, "a.csv", csv_bytes(names, X[:200]))
    put_input(s3, "b.csv", csv_bytes(names, X[200:], ids=[f"r{i}" for i in range(200, 400)]))
    r = runner(s3, chunk_rows=100)
    seen = []

    def crash_in_second_object(chunk):
        seen.append(int(chunk.id_list()[0][1:]))
        if seen[-1] > 200:  # b.csv's second chunk
            raise RuntimeError("simulated crash")

    r.on_chunk = crash_in_second_object
    with pytest.raises(RuntimeError):
        r.run(DATE)
    assert seen[0] == 0 and 200 in seen and seen[-1] > 200 and seen == sorted(seen)
    # part 0 finished: its upload is open but nothing is readable at the final location
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])] == [
        OUT + "predictions/part-00000.csv"
    ]
    assert keys(s3, OUT + "predictions/") == []
    r.on_chunk = None
    assert r.run(DATE)["status"] == "succeeded"
    m = manifest(s3)
    assert m["rows"] == {"read": 400, "scored": 400, "rejected": 0}
    ids = [row["id"] for key in m["outputs"]["predictions"] for row in read_csv(s3, key)]
    assert ids == [f"r{i}" for i in range(400)]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []  # the stale upload was aborted


def _fail_call(s3, operation: str, code: str, when):
    """Make one S3 operation fail with a ClientError (as real S3 would under throttling)."""

    def handler(params, **kwargs):
        if when(params):
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    s3.meta.events.register(f"before-parameter-build.s3.{operation}", handler)
    return handler


def test_throttled_multipart_upload_then_rerun(s3, champion, monkeypatch):
    """A SlowDown on the second UploadPart, injected through a botocore before-parameter-build hook (moto never throttles)."""
    from modelops.batch import writer

    names, X = features_and_rows(30_000, seed=3)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, chunk_rows=5000)
    monkeypatch.setattr(writer, "PART_BYTES", 512 * 1024)  # small parts so the output needs several
    handler = _fail_call(s3, "UploadPart", "SlowDown", lambda p: p["PartNumber"] == 2)
    with pytest.raises(ModelOpsError, match="SlowDown"):
        r.run(DATE)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "_manifest.json")
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "predictions/").get("Contents")
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []

    s3.meta.events.unregister("before-parameter-build.s3.UploadPart", handler)
    monkeypatch.setattr(writer, "PART_BYTES", 8 * 1024**2)
    assert r.run(DATE)["status"] == "succeeded"
    _assert_clean_single_run(s3, 30_000)


def test_failed_manifest_write_leaves_run_uncommitted_then_rerun(s3, champion):
    """Commit completes the predictions' uploads, then the manifest PUT is refused (injected InternalError)."""
    names, X = features_and_rows(300)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3)
    handler = _fail_call(s3, "PutObject", "InternalError", lambda p: p["Key"].endswith("_manifest.json"))
    with pytest.raises(ModelOpsError, match="InternalError"):
        r.run(DATE)
    assert r.status(DATE)["status"] == "pending"  # downstream sees no manifest: not committed
    s3.meta.events.unregister("before-parameter-build.s3.PutObject", handler)
    assert r.run(DATE)["status"] == "succeeded"
    _assert_clean_single_run(s3, 300)


def test_backfill_date_uses_its_own_folders(s3, champion):
    names, X = features_and_rows(30)
    put_input(s3, "a.csv", csv_bytes(names, X), date="2025-12-31")
    put_input(s3, "a.csv", csv_bytes(names, X[:5]), date=DATE)
    r = runner(s3)
    assert r.default_date() != "2025-12-31"
    assert r.run("2025-12-31")["status"] == "succeeded"
    assert manifest(s3, "2025-12-31")["rows"]["scored"] == 30
    assert keys(s3, OUT) == []  # the other date is untouched


def test_multi_chunk_input_bounded_by_chunk_size(s3, champion):
    names, X = features_and_rows(6_345)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, chunk_rows=500, score_workers=2)  # the tail's block sizes depend on the worker count
    buffered = []
    r.on_chunk = lambda chunk: buffered.append(chunk.lines)
    r.run(DATE)

    # short first blocks, then the chunk size, then shrinking blocks so the scoring threads end together
    assert buffered[:3] == [62, 125, 250] and buffered.count(500) >= 5 and sum(buffered) == 6_345
    tail = buffered[len(buffered) - buffered[::-1].index(500) :]
    assert len(tail) >= 4 and tail == sorted(tail, reverse=True)
    m = manifest(s3)
    assert m["chunks"] == len(buffered) and m["peak_chunk_rows"] == 500
    assert m["rows"]["scored"] == 6_345


def test_byte_range_parts_give_the_same_rows_and_absolute_line_numbers(s3, champion):
    names, X = features_and_rows(700, seed=4)
    lines = csv_bytes(names, X).decode().splitlines()
    lines[650] = lines[650] + ",extra"  # line 651 has one field too many
    put_input(s3, "a.csv", ("\n".join(lines) + "\n").encode())
    put_input(s3, "b.csv", csv_bytes(names, X[:50], ids=[f"b{i}" for i in range(50)]))
    r = runner(s3, part_bytes=16 * 1024, chunk_rows=64)
    prepared = r.prepare(DATE, split=True)  # as the fan-out plans it
    parts = r.parts(prepared["run"])
    assert len(parts) > 5 and {p["key"].rsplit("/", 1)[1] for p in parts} == {"a.csv", "b.csv"}
    # a later byte range in a fresh process reads the header with a GET of its own; the parts after it
    # share that header (same object version), so each takes one GET for its lines only
    part_module._HEADERS.clear()
    gets = []
    open_range = r.store.open_range
    r.store.open_range = lambda key, etag, start, end=None: gets.append(start) or open_range(key, etag, start, end)
    r.score_part(prepared["run"], parts[2])
    r.score_part(prepared["run"], parts[3])
    assert gets == [0, parts[2]["start"] - 1, parts[3]["start"] - 1]
    r.store.open_range = open_range
    r.execute(prepared["run"])

    m = manifest(s3)
    assert m["parts"] == len(parts) and m["rows"] == {"read": 750, "scored": 749, "rejected": 1}
    ids = [row["id"] for key in m["outputs"]["predictions"] for row in read_csv(s3, key)]
    assert ids == [f"r{i}" for i in range(700) if i != 649] + [f"b{i}" for i in range(50)]
    rejected = read_csv(s3, OUT + "rejected.csv")
    assert [(r_["line"], r_["reason"]) for r_ in rejected] == [("651", "expected 31 fields, found 32")]


def test_one_process_streams_each_object_whole_and_only_the_fan_out_splits(s3, champion):
    names, X = features_and_rows(700, seed=4)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, part_bytes=16 * 1024, chunk_rows=64)
    assert r.config.inline_max_bytes >= 16 * 1024 * 8  # this input is scored inline
    inline = r.prepare(DATE)
    assert inline["mode"] == "inline" and len(r.parts(inline["run"])) == 1
    r.release(inline["run"])  # one run per date: the next prepare would wait for this one
    fanned = runner(s3, part_bytes=16 * 1024, chunk_rows=64, inline_max_bytes=1).prepare(DATE)
    assert fanned["mode"] == "fanout" and len(r.parts(fanned["run"])) > 5
    assert r.run(DATE)["status"] == "waiting"  # the planned fan-out still holds the date
    r.release(fanned["run"])

    r.run(DATE)  # in-process, as the CLI runs it: one part for the object whatever its size
    m = manifest(s3)
    assert m["parts"] == 1 and m["outputs"]["predictions"] == [OUT + "predictions/part-00000.csv"]
    assert m["rows"]["scored"] == 700


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_column", "missing required feature column 'worst_area'"),
        ("missing_id", "missing required id column 'id'"),
        ("empty_folder", "no input objects under"),
        ("unsupported", "unsupported input object"),
        ("changed_object", "changed after the run was planned"),
    ],
)
def test_bad_input_fails_the_run_without_manifest(s3, champion, case, message):
    names, X = features_and_rows(10)
    body = csv_bytes(names, X)
    r = runner(s3)
    if case == "missing_column":
        put_input(s3, "a.csv", body.replace(b",worst_area", b",worst_areax", 1))
    elif case == "missing_id":
        put_input(s3, "a.csv", body.replace(b"id,", b"key,", 1))
    elif case == "empty_folder":
        put_input(s3, "_SUCCESS", b"")
    elif case == "unsupported":
        put_input(s3, "a.orc", b"ORC")
    if case == "changed_object":
        put_input(s3, "a.csv", body)
        prepared = r.prepare(DATE)
        put_input(s3, "a.csv", body + body.splitlines(keepends=True)[1])  # overwritten after planning
        with pytest.raises(ModelOpsError, match=message):
            r.execute(prepared["run"])
    else:
        with pytest.raises(ModelOpsError, match=message):
            r.run(DATE)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "_manifest.json")


def test_regression_model_writes_prediction_values(s3, registry, regressor_dir):
    version = register_champion(registry, regressor_dir)
    loaded = registry.load("diabetes", version)
    names = list(loaded.manifest.schema.names)
    X = np.random.default_rng(5).normal(scale=0.05, size=(40, len(names))).round(5)
    put_input(s3, "a.csv", csv_bytes(names, X))
    r = runner(s3, model_name="diabetes")
    r.run(DATE)
    rows = read_csv(s3, OUT + "predictions/part-00000.csv")
    assert list(rows[0]) == ["id", "prediction", "model_version", "warnings"]
    np.testing.assert_allclose([float(r_["prediction"]) for r_ in rows], loaded.estimator.predict(X), rtol=1e-12)
    assert manifest(s3)["drift"]["prediction_psi"] is not None


def test_pinned_model_version_overrides_champion(s3, registry, classifier_dir, classifier_v2_dir):
    v1 = register_champion(registry, classifier_dir)
    v2 = registry.register(classifier_v2_dir).version
    names, X = features_and_rows(20)
    put_input(s3, "a.csv", csv_bytes(names, X))
    runner(s3, model_version=v2).run(DATE)
    assert manifest(s3)["model"]["version"] == v2 != v1
    assert {r["model_version"] for r in read_csv(s3, OUT + "predictions/part-00000.csv")} == {v2}


def test_config_errors_are_one_line():
    with pytest.raises(ModelOpsError, match="MODELOPS_DATA_BUCKET"):
        config(bucket="")
    with pytest.raises(ModelOpsError, match="MODELOPS_BATCH_CHUNK_ROWS"):
        from modelops.batch.config import BatchConfig

        BatchConfig.from_env(
            {
                "MODELOPS_DATA_BUCKET": "b",
                "MODELOPS_REGISTRY": "s3://b/r",
                "MODELOPS_MODEL_NAME": "m",
                "MODELOPS_BATCH_CHUNK_ROWS": "lots",
            }
        )
    assert json.dumps(config().id_columns) == '["id"]'
    from modelops.batch.config import BatchConfig

    base = {"MODELOPS_DATA_BUCKET": "b", "MODELOPS_REGISTRY": "s3://b/r", "MODELOPS_MODEL_NAME": "m"}
    assert BatchConfig.from_env({**base, "MODELOPS_BATCH_SCORE_WORKERS": "0"}).score_workers == 0
    assert BatchConfig.from_env({**base, "MODELOPS_BATCH_SCORE_WORKERS": "3"}).score_workers == 3
    with pytest.raises(ModelOpsError, match="MODELOPS_BATCH_SCORE_WORKERS=-1 is below the minimum 0"):
        BatchConfig.from_env({**base, "MODELOPS_BATCH_SCORE_WORKERS": "-1"})


def test_without_id_columns_each_prediction_names_its_object_and_line(s3, registry, champion):
    names, X = features_and_rows(50)
    put_input(s3, "a.csv", csv_bytes(names, X))
    runner(s3, id_columns=()).run(DATE)
    rows = read_csv(s3, OUT + "predictions/part-00000.csv")
    assert list(rows[0]) == [
        "object",
        "line",
        "prediction",
        "proba_benign",
        "proba_malignant",
        "model_version",
        "warnings",
    ]
    assert {r["object"] for r in rows} == {f"batch/input/{DATE}/a.csv"}
    assert [int(r["line"]) for r in rows] == list(range(2, 52))  # the header is line 1, as in rejected.csv
    np.testing.assert_allclose(
        [float(r["proba_malignant"]) for r in rows], expected_proba(registry, champion, X)[:, 1], atol=1e-6
    )
