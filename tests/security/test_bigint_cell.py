"""A cell holding an integer too big for 64 bits, in CSV and JSON Lines input, through a real batch run (moto S3).

simdjson, which the bulk CSV parser uses, refuses such an integer with RuntimeError (BIGINT_ERROR); the run must
not fail: the block falls back to parsing line by line, where float() reads the value as the predict API does.
orjson reads an integer beyond 64 bits as a float. A value beyond float's range is rejected with a reason.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from modelops.batch.bulkcsv import parse_numbers
from support.batch import (
    DATE,
    csv_bytes,
    features_and_rows,
    jsonl_bytes,
    manifest,
    put_input,
    read_csv,
    register_champion,
    runner,
)

BIG = "123456789012345678901234567890"
OUT = f"batch/output/{DATE}/"


@pytest.fixture
def champion(registry, classifier_dir):
    return register_champion(registry, classifier_dir)


def scored(s3) -> dict[str, dict[str, str]]:
    return {r["id"]: r for key in manifest(s3)["outputs"]["predictions"] for r in read_csv(s3, key)}


def test_simdjson_refusal_of_a_big_integer_is_a_fallback_not_an_error():
    assert parse_numbers(b"[1.5," + BIG.encode() + b",2]") is None


def test_big_integer_cells_in_csv_and_jsonl_are_scored_as_floats(s3, registry, champion):
    names, X = features_and_rows(200, seed=11)
    text = csv_bytes(names, X).decode().splitlines()
    fields = text[1 + 50].split(",")
    fields[3] = BIG  # the row with id r50, in the bulk parser's path (all numeric, ids first)
    text[1 + 50] = ",".join(fields)
    fields = text[1 + 60].split(",")
    fields[5] = "-" + BIG + "0" * 400  # beyond float's range: float() gives inf
    text[1 + 60] = ",".join(fields)
    put_input(s3, "a.csv", ("\n".join(text) + "\n").encode())

    lines = jsonl_bytes(names, X[:40]).decode().splitlines()
    row = json.loads(lines[7])
    lines[7] = json.dumps({**row, "id": "j7"}).replace(json.dumps(row[names[2]]), BIG, 1)
    assert BIG in lines[7]
    put_input(s3, "b.jsonl", ("\n".join(lines) + "\n").encode())

    result = runner(s3, chunk_rows=64).run(DATE)

    assert result["status"] == "succeeded"
    m = manifest(s3)
    assert m["rows"] == {"read": 240, "scored": 239, "rejected": 1}
    rows = scored(s3)
    estimator = registry.load("breast-cancer", champion).estimator
    big_csv = X[50].copy()
    big_csv[2] = float(BIG)  # field 3 is feature 2 (field 0 is the id)
    big_json = X[7].copy()
    big_json[2] = float(BIG)
    expected = estimator.predict_proba(np.vstack([big_csv, big_json]))[:, 1]
    np.testing.assert_allclose([float(rows["r50"]["proba_malignant"]), float(rows["j7"]["proba_malignant"])], expected)
    assert "r60" not in rows and "r0" in rows and "r199" in rows
    rejected = read_csv(s3, OUT + "rejected.csv")
    assert len(rejected) == 1
    assert rejected[0]["object"].endswith("a.csv") and rejected[0]["line"] == "62"
    assert "is not a finite number" in rejected[0]["reason"] and names[4] in rejected[0]["reason"]
