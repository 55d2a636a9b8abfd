"""Models fitted on pandas DataFrames (tests/support/user_models.py) served by the real predict handler and scored by
the real batch path: the DataFrame they were fitted on, warnings for values never seen in training, who is
at fault when the model fails, categorical drift, and the same answer online and in batch."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys

import numpy as np
import pandas as pd
import pytest
from modelops.core.errors import ModelOpsError
from modelops.model.artifact import Manifest, load_from_dir
from modelops.model.frames import input_spec
from modelops.model.schema import FeatureSchema
from support import user_models
from support.api import invoke, proxy_event, serve_model
from support.batch import DATE, manifest, put_input, read_csv, register_champion, runner
from support.frame_artifacts import json_rows, strict_model, write_frame_artifact

OUT = f"batch/output/{DATE}/"
BUILDERS = {
    "titanic-ct": user_models.column_transformer_model,
    "titanic-hgb": user_models.hgb_from_dtype_model,
    "titanic-fare": user_models.regressor_model,
    "iris-rf": user_models.multiclass_model,
}


@pytest.fixture(scope="module")
def frame_models(tmp_path_factory):
    """name -> (artifact directory, estimator, X) for each user model."""
    out = {}
    for name, build in {**BUILDERS, "titanic-strict": strict_model}.items():
        estimator, X, y = build()
        directory = tmp_path_factory.mktemp(name)
        write_frame_artifact(directory, estimator, X, y, name)
        out[name] = (directory, estimator, X)
    return out


def post(app, body):
    return invoke(app, proxy_event("POST", "/predict", body))


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---- the manifest contract ---------------------------------------------------------------------------------
def test_manifest_records_the_dataframe_input_and_dtypes(frame_models):
    directory, estimator, X = frame_models["titanic-ct"]
    m = Manifest.from_json((directory / "manifest.json").read_bytes())
    assert m.input == {"kind": "dataframe", "columns": list(X.columns)}
    by_name = {f["name"]: f for f in m.features}
    assert {n: f["pandas_dtype"] for n, f in by_name.items()} == {n: str(t) for n, t in X.dtypes.items()}
    assert by_name["sex"]["allowed"] == list(X["sex"].cat.categories)
    assert Manifest.from_json(m.to_json()) == m


def test_array_manifests_are_unchanged(classifier_dir):
    raw = (classifier_dir / "manifest.json").read_bytes()
    m = Manifest.from_json(raw)
    assert m.input is None and b'"input"' not in raw and m.to_json() == raw
    assert all("pandas_dtype" not in f for f in m.features)


def test_string_feature_names_make_a_dataframe_model_without_the_manifest_saying_so(frame_models):
    directory, estimator, X = frame_models["iris-rf"]
    schema = Manifest.from_json((directory / "manifest.json").read_bytes()).schema
    assert input_spec(None, estimator, schema) == {"kind": "dataframe", "columns": list(X.columns)}
    assert input_spec(None, object(), schema) == {"kind": "array"}
    with pytest.raises(ModelOpsError, match="do not match its feature schema"):
        input_spec({"kind": "dataframe", "columns": ["petal_length"]}, estimator, schema)


# ---- online ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_served_answers_are_the_models_answers_on_its_dataframe(monkeypatch, frame_models, name):
    directory, estimator, X = frame_models[name]
    app = serve_model(monkeypatch, directory)
    assert app.gateway.holder.error is None
    sample = X.iloc[[0, 3, 7, 11, 20, 33]]  # NaN in age and embarked among them
    status, _, body = post(app, {"instances": json_rows(sample)})
    assert status == 200, body
    expected = [p.item() if hasattr(p, "item") else p for p in estimator.predict(sample)]
    if isinstance(expected[0], float):  # a copy of the frame may round the last bit differently
        assert body["predictions"] == pytest.approx(expected, rel=1e-12)
    else:
        assert body["predictions"] == expected
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(sample)
        keys = [str(c) for c in estimator.classes_]
        np.testing.assert_allclose([[p[k] for k in keys] for p in body["probabilities"]], proba, rtol=1e-12)
    assert "warnings" not in body  # rows like the training data: the answer is what it always was
    columns = list(reversed(X.columns))  # the columnar form, in another order
    rows = json_rows(sample)
    status, _, columnar = post(app, {"columns": columns, "data": [[r[c] for c in columns] for r in rows]})
    assert status == 200 and columnar["predictions"] == body["predictions"]


def test_all_numeric_dataframe_model_takes_the_fast_path(monkeypatch, frame_models):
    directory, estimator, X = frame_models["iris-rf"]
    app = serve_model(monkeypatch, directory)
    model = app.gateway.holder.model
    fast = model.schema._fast_numeric(json_rows(X.head(3)))
    assert fast is not None and fast.dtype == np.float64
    assert model.runner.takes_dataframe


def test_values_never_seen_are_scored_and_flagged(monkeypatch, frame_models, capsys):
    directory, estimator, X = frame_models["titanic-ct"]
    app = serve_model(monkeypatch, directory)
    rows = json_rows(X.head(3))
    rows[1] = {**rows[1], "embarked": "Belfast", "age": 120.0}
    capsys.readouterr()
    status, _, body = post(app, {"instances": rows})
    assert status == 200
    assert body["warnings"][0] == [] and body["warnings"][2] == []
    assert [(w["feature"], w["code"]) for w in body["warnings"][1]] == [
        ("age", "out_of_range"),
        ("embarked", "unseen_category"),
    ]
    assert "'Belfast' was not seen in training" in body["warnings"][1][1]["message"]
    frame = pd.DataFrame([{**r, "age": r["age"] if r["age"] is not None else np.nan} for r in rows])
    frame = frame.astype({"sex": X["sex"].dtype, "pclass": "int64", "alone": bool})
    assert body["predictions"] == list(estimator.predict(frame))  # unseen values reach the model as they are
    metrics = [r for r in _lines(capsys.readouterr().out) if "_aws" in r]
    assert metrics[-1]["Warnings"] == 2
    assert {"Name": "Warnings", "Unit": "Count"} in metrics[-1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]


def test_the_openapi_document_describes_warnings(monkeypatch, frame_models):
    directory, _, _ = frame_models["titanic-ct"]
    app = serve_model(monkeypatch, directory)
    status, _, doc = invoke(app, proxy_event("GET", "/openapi.json"))
    assert status == 200
    schemas = doc["components"]["schemas"]
    warnings = schemas["PredictResponse"]["properties"]["warnings"]
    assert "never saw in training" in warnings["description"]
    assert set(schemas["PredictionWarning"]["properties"]) == {"feature", "code", "message"}
    assert "500" in doc["paths"]["/predict"]["post"]["responses"]


@pytest.mark.parametrize(
    "change,field,problem",
    [
        ({"pclass": 2.5}, "pclass", "expected a whole number, got 2.5"),
        ({"alone": "maybe"}, "alone", "expected a boolean, got string"),
        ({"alone": 2}, "alone", "expected a boolean (true, false, 1 or 0), got 2.0"),
        ({"fare": None}, "fare", "a value is required (null is not allowed)"),
    ],
)
def test_values_the_fitted_dtype_cannot_hold_are_400(monkeypatch, frame_models, change, field, problem):
    directory, _, X = frame_models["titanic-ct"]
    app = serve_model(monkeypatch, directory)
    status, _, body = post(app, {"instances": [{**json_rows(X.head(1))[0], **change}]})
    assert status == 400 and body["error"]["field"] == f"instances[0].{field}"
    assert body["error"]["message"] == f"instances[0].{field}: {problem}"


def test_bool_and_integer_features_take_their_json_forms(monkeypatch, frame_models):
    directory, estimator, X = frame_models["titanic-ct"]
    app = serve_model(monkeypatch, directory)
    row = json_rows(X.head(1))[0]
    answers = [
        post(app, {"instances": [{**row, **change}]})[2]["predictions"]
        for change in ({}, {"alone": int(row["alone"]), "pclass": float(row["pclass"])})
    ]
    assert answers[0] == answers[1]


# ---- who is at fault ---------------------------------------------------------------------------------------
def test_a_model_refusing_an_unseen_value_is_a_400_naming_it(monkeypatch, frame_models):
    directory, _, X = frame_models["titanic-strict"]
    app = serve_model(monkeypatch, directory)
    rows = json_rows(X.head(3))
    rows[2] = {**rows[2], "embarked": "Belfast"}
    status, _, body = post(app, {"instances": rows})
    assert status == 400 and body["error"]["code"] == "rejected_by_model"
    assert body["error"]["field"] == "instances[2].embarked"
    assert "('Belfast' was not seen in training): ValueError: Found unknown categories" in body["error"]["message"]


def test_a_model_failing_on_rows_like_its_training_data_is_a_500(monkeypatch, frame_models, capsys):
    directory, _, X = frame_models["titanic-strict"]
    app = serve_model(monkeypatch, directory)
    rows = [{**json_rows(X.head(1))[0], "fare": 50.125}]  # inside the training range, a seen category
    log = io.StringIO()  # the Powertools handler keeps the stream it was created with
    monkeypatch.setattr(app.gateway.log.registered_handler, "stream", log)
    capsys.readouterr()
    status, _, body = post(app, {"instances": rows})
    assert status == 500 and body["error"]["code"] == "model_error"
    metrics = [r for r in _lines(capsys.readouterr().out) if "_aws" in r]
    assert metrics[-1]["ServerErrors"] == 1 and metrics[-1]["ClientErrors"] == 0
    logged = [r for r in _lines(log.getvalue()) if r.get("message") == "the model failed on valid rows"]
    assert logged and "fare with more than two decimals" in logged[0]["reason"]


def test_a_model_needing_a_module_the_runtime_lacks_is_a_503_naming_it(monkeypatch, tmp_path, caplog):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    package = tmp_path / "code"
    package.mkdir()
    (package / "house_features.py").write_text("def double(X):\n    return X * 2\n")
    monkeypatch.syspath_prepend(str(package))
    import house_features

    estimator, X, y = user_models.multiclass_model(60)
    estimator = Pipeline([("double", FunctionTransformer(house_features.double)), ("model", estimator)]).fit(X, y)
    write_frame_artifact(tmp_path / "model", estimator, X, y, "iris-custom")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(package)])
    monkeypatch.delitem(sys.modules, "house_features")
    with caplog.at_level(logging.ERROR, logger="modelops.serving.model_holder"):
        app = serve_model(monkeypatch, tmp_path / "model")
    assert any("missing module 'house_features'" in r.getMessage() for r in caplog.records)
    status, headers, body = post(app, {"instances": json_rows(X.head(1))})
    assert status == 503 and body["error"]["code"] == "model_unavailable" and "retry-after" in headers
    assert "house_features" in app.gateway.holder.error


def test_a_class_from_main_is_named_when_the_model_cannot_load(monkeypatch, tmp_path):
    import pickle

    from modelops.core.errors import MissingModuleError

    estimator, X, y = user_models.multiclass_model(60)
    write_frame_artifact(tmp_path, estimator, X, y, "iris")

    def fail(*_args, **_kwargs):
        raise AttributeError("Can't get attribute 'Scaler' on <module '__main__'>")

    monkeypatch.setattr("joblib.load", fail)
    with pytest.raises(MissingModuleError, match="defined in __main__"):
        load_from_dir(tmp_path)
    assert pickle  # the message names the class and what to do


# ---- batch -------------------------------------------------------------------------------------------------
def csv_input(rows, columns, ids):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *columns])
    for i, row in zip(ids, rows, strict=True):
        writer.writerow([i, *("" if row[c] is None else row[c] for c in columns)])
    return buf.getvalue().encode()


def jsonl_input(rows, ids):
    return b"".join(json.dumps({"id": i, **row}).encode() + b"\n" for i, row in zip(ids, rows, strict=True))


def batch_run(s3, registry, directory, name, body, filename):
    if name not in registry.list_models():
        register_champion(registry, directory)
    put_input(s3, filename, body)
    result = runner(s3, model_name=name).run(DATE, force=True)
    assert result["status"] == "succeeded"
    rejected = read_csv(s3, OUT + "rejected.csv")
    return {r["id"]: r for r in read_csv(s3, OUT + "predictions/part-00000.csv")}, rejected, manifest(s3)


def test_batch_drift_of_categories_and_features_not_measured(s3, registry, frame_models, tmp_path):
    import shutil

    source, estimator, X = frame_models["titanic-hgb"]
    directory = tmp_path / "hgb"
    shutil.copytree(source, directory)
    m = Manifest.from_json((directory / "manifest.json").read_bytes())
    del m.baseline["fare"]  # a model registered without a baseline for one feature
    (directory / "manifest.json").write_bytes(m.to_json())
    rows = json_rows(X.head(300))
    for row in rows[:150]:
        row["sex"] = "female"  # the sex mix shifts
    for row in rows:
        row["embarked"] = None  # nullable: every value missing
    ids = [f"r{i}" for i in range(len(rows))]
    _, _, out = batch_run(s3, registry, directory, "titanic-hgb", csv_input(rows, list(X.columns), ids), "a.csv")
    drift = out["drift"]
    assert drift["feature_psi"]["sex"] > 0.1 and "pclass" in drift["feature_psi"]
    assert "fare" not in drift["feature_psi"] and "embarked" not in drift["feature_psi"]
    assert drift["not_measured"] == {
        "fare": "the model's manifest has no baseline for this feature",
        "embarked": "no values to compare: every value was missing",
    }
    from modelops.batch.metrics import run_documents

    features = {d.get("Feature") for d in run_documents(out) if "FeaturePSI" in d}
    assert features == set(drift["feature_psi"])


def test_batch_rejects_the_rows_the_model_refuses_and_scores_the_rest(s3, registry, frame_models):
    directory, estimator, X = frame_models["titanic-strict"]
    rows = json_rows(X.head(6))
    rows[4] = {**rows[4], "embarked": "Belfast"}
    ids = [f"r{i}" for i in range(len(rows))]
    scored, rejected, out = batch_run(
        s3, registry, directory, "titanic-strict", csv_input(rows, list(X.columns), ids), "a.csv"
    )
    assert sorted(scored) == ["r0", "r1", "r2", "r3", "r5"] and out["rows"]["rejected"] == 1
    assert rejected[0]["line"] == "6"
    assert rejected[0]["reason"].startswith("column 'embarked': the model cannot score this value ('Belfast'")


def test_batch_fails_when_the_model_fails_on_rows_like_its_training_data(s3, registry, frame_models):
    directory, _, X = frame_models["titanic-strict"]
    rows = [{**row, "fare": 50.125} for row in json_rows(X.head(2))]
    register_champion(registry, directory)
    put_input(s3, "a.csv", csv_input(rows, list(X.columns), ["a", "b"]))
    with pytest.raises(ModelOpsError, match="the model failed on rows that match its schema.*two decimals"):
        runner(s3, model_name="titanic-strict").run(DATE)
    assert not s3.list_objects_v2(Bucket="modelops-test", Prefix=OUT + "_manifest.json").get("KeyCount")


# ---- online and batch agree ---------------------------------------------------------------------------------
def parity_rows(X: pd.DataFrame) -> tuple[list[dict], set[int]]:
    """Training-like rows with missing values, values never seen, and values no path may accept; and the
    rows that only typed input (JSON) can refuse: in CSV the number 3 in a category column is the text "3"."""
    rows = json_rows(X.iloc[:16])
    first = X.columns[0]
    rows[12][first] = None if X[first].isna().any() else rows[12][first]
    rows[13][first] = float(X[first].max()) + 10.5  # above the training range
    rows[15][first] = float(X[first].min()) - 3.0  # below it
    if "sex" in X:
        rows[14]["sex"] = "unknown"  # an unseen category of a category column
    if "embarked" in X:
        rows.append({**rows[0], "embarked": None})
        rows.append({**rows[1], "embarked": "Belfast"})
    if "alone" in X:
        rows.append({**rows[6], "alone": not rows[6]["alone"]})
    bad = []
    if "pclass" in X:
        bad += [{**rows[2], "pclass": 2.5}, {**rows[3], "fare": None}]
    if "alone" in X:
        bad += [{**rows[5], "alone": "maybe"}, {**rows[7], "alone": 2}]
    if "petal_length" in X:
        bad += [{**rows[2], "petal_width": "wide"}, {**rows[3], "sepal_length": None}]
    typed_only = set()
    if "sex" in X:
        typed_only.add(len(rows) + len(bad))
        bad.append({**rows[4], "sex": 3})
    return rows + bad, typed_only


def _online(app, row):
    status, _, body = post(app, {"instances": [row]})
    if status != 200:
        assert status == 400, body
        return {"rejected": body["error"]["message"].split(": ", 1)[1], "field": body["error"]["field"]}
    out = {
        "prediction": body["predictions"][0],
        "warnings": sorted(f"{w['feature']}:{w['code']}" for w in (body.get("warnings") or [[]])[0]),
    }
    if "probabilities" in body:
        out["probabilities"] = body["probabilities"][0]
    return out


def _batch(scored, rejected_by_id, row_id):
    if row_id in rejected_by_id:
        return {"rejected": rejected_by_id[row_id]}
    line = scored[row_id]
    out = {"prediction": line["prediction"], "warnings": sorted(filter(None, line["warnings"].split(";")))}
    probabilities = {k[len("proba_") :]: float(v) for k, v in line.items() if k.startswith("proba_")}
    if probabilities:
        out["probabilities"] = probabilities
    return out


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_online_and_batch_give_the_same_answers(monkeypatch, s3, registry, frame_models, name):
    directory, estimator, X = frame_models[name]
    rows, typed_only = parity_rows(X)
    ids = [f"r{i}" for i in range(len(rows))]
    app = serve_model(monkeypatch, directory)
    online = {i: _online(app, row) for i, row in zip(ids, rows, strict=True)}
    good = [row for i, row in zip(ids, rows, strict=True) if "rejected" not in online[i]]
    together = post(app, {"instances": good})[2]["predictions"]  # one request, the same answers
    alone = [online[i]["prediction"] for i in ids if "rejected" not in online[i]]
    assert together == (pytest.approx(alone, rel=1e-12) if isinstance(alone[0], float) else alone)

    for fmt in ("csv", "jsonl"):
        body = csv_input(rows, list(X.columns), ids) if fmt == "csv" else jsonl_input(rows, ids)
        scored, rejected, _ = batch_run(s3, registry, directory, name, body, f"in.{fmt}")
        line_to_id = {str(k + (2 if fmt == "csv" else 1)): i for k, i in enumerate(ids)}
        reasons = {line_to_id[r["line"]]: r["reason"] for r in rejected}
        for k, row_id in enumerate(ids):
            if fmt == "csv" and k in typed_only:
                continue
            want, got = online[row_id], _batch(scored, reasons, row_id)
            assert ("rejected" in want) == ("rejected" in got), (fmt, row_id, want, got)
            if "rejected" in want:
                feature = want["field"].split(".", 1)[1]
                if fmt == "jsonl" or "whole number" in want["rejected"] or "boolean" in want["rejected"]:
                    assert got["rejected"].split(": ", 1)[1] == want["rejected"], (fmt, row_id)
                assert f"'{feature}'" in got["rejected"], (fmt, row_id, got)
                continue
            if isinstance(want["prediction"], float):  # BLAS may round the last bit by the number of rows
                assert float(got["prediction"]) == pytest.approx(want["prediction"], rel=1e-12), (fmt, row_id)
            else:
                assert got["prediction"] == str(want["prediction"]), (fmt, row_id)
            assert got["warnings"] == want["warnings"], (fmt, row_id)
            if "probabilities" in want:
                assert got["probabilities"] == pytest.approx(want["probabilities"], abs=5e-7)
        s3.delete_object(Bucket="modelops-test", Key=f"batch/input/{DATE}/in.{fmt}")


def test_parity_rows_cover_every_dtype_and_both_kinds_of_rejection(frame_models):
    _, _, X = frame_models["titanic-ct"]
    assert {str(t) for t in X.dtypes} >= {"float64", "int64", "bool", "category", "str"}
    rows, typed_only = parity_rows(X)
    assert typed_only and any(r["age"] is None for r in rows) and any(r.get("embarked") == "Belfast" for r in rows)
    schema = FeatureSchema.from_list(
        Manifest.from_json((frame_models["titanic-ct"][0] / "manifest.json").read_bytes()).features
    )
    assert math.isnan(schema.matrix_from_instances([rows[12]], 1)[0, 0])


# ---- pandas from the layer's archive -------------------------------------------------------------------------
_IMPORT_PANDAS = """
import json, sys
from modelops.model.frames import import_pandas
try:
    pd = import_pandas()
except ModuleNotFoundError as exc:
    print(json.dumps({"missing": exc.name, "message": str(exc)}))
else:
    print(json.dumps({"file": pd.__file__, "fake": getattr(pd, "FAKE", False)}))
"""


def test_pandas_comes_from_the_archive_when_it_is_not_installed(tmp_path):
    """A python with numpy and modelops but no pandas on its path, as on Lambda: the archive is extracted once,
    under the extraction directory, and a second process reuses the copy."""
    import subprocess
    import zipfile
    from pathlib import Path

    site = tmp_path / "layer" / "python"  # a layer as built: python/ and, beside it, dataframe/pandas.zip
    site.mkdir(parents=True)
    (site / "numpy").symlink_to(Path(np.__file__).parent)
    root = Path(__file__).resolve().parents[3]
    archive = tmp_path / "layer" / "dataframe" / "pandas.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pandas/__init__.py", "FAKE = True\n")
    env = {"PATH": "/usr/bin:/bin", "MODELOPS_PANDAS_DIR": str(tmp_path / "x")}  # the archive is found by its place
    code = f"import sys; sys.path[:0] = [{str(site)!r}, {str(root / 'layers' / 'modelops')!r}]\n" + _IMPORT_PANDAS

    def run(**extra):
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", code], env={**env, **extra}, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.splitlines()[-1])

    first = run()
    assert first["fake"] and first["file"].startswith(str(tmp_path / "x"))
    extracted = [p for p in (tmp_path / "x").iterdir() if not p.name.startswith(".")]
    assert len(extracted) == 1
    assert run()["file"] == first["file"]  # reused, not extracted again
    missing = run(MODELOPS_PANDAS_ARCHIVE=str(tmp_path / "absent.zip"))
    assert missing["missing"] == "pandas" and "absent.zip" in missing["message"]


def test_the_openapi_document_types_bool_and_integer_features(monkeypatch, frame_models):
    directory, _, _ = frame_models["titanic-ct"]
    app = serve_model(monkeypatch, directory)
    instance = invoke(app, proxy_event("GET", "/openapi.json"))[2]["components"]["schemas"]["Instance"]["properties"]
    assert instance["alone"]["type"] == "boolean" and instance["pclass"]["type"] == "integer"
    assert {t.get("type") for t in instance["age"]["anyOf"]} == {"number", "null"}


def test_a_dataframe_model_without_pandas_is_a_503_naming_it(monkeypatch, frame_models, caplog):
    import modelops.model.frames

    def no_pandas():
        raise ModuleNotFoundError("No module named 'pandas'", name="pandas")

    monkeypatch.setattr(modelops.model.frames, "import_pandas", no_pandas)
    directory, _, X = frame_models["titanic-hgb"]
    with caplog.at_level(logging.ERROR, logger="modelops.serving.model_holder"):
        app = serve_model(monkeypatch, directory)
    assert any("missing module 'pandas'" in r.getMessage() for r in caplog.records)
    assert post(app, {"instances": json_rows(X.head(1))})[0] == 503


def test_a_pandas_dtype_the_schema_cannot_fill_is_refused_at_load():
    from modelops.model.frames import FrameBuilder
    from modelops.model.schema import CATEGORY, NUMBER, Feature

    for feature in (
        Feature("alone", CATEGORY, allowed=("False", "True"), pandas_dtype="bool"),  # "False" would be True
        Feature("when", NUMBER, 0, 1, pandas_dtype="datetime64[ns]"),
    ):
        with pytest.raises(ModelOpsError, match=f"feature '{feature.name}'"):
            FrameBuilder(FeatureSchema((feature,)), [feature.name], pd)
    numbers = FeatureSchema((Feature("x", NUMBER, 0, 9, nullable=True, pandas_dtype="Int64"),))
    frame = FrameBuilder(numbers, ["x"], pd)(np.array([[1.0], [np.nan]]))
    assert str(frame["x"].dtype) == "Int64" and frame["x"].isna().tolist() == [False, True]


# ---- models registered with modelops.register() ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_models_registered_with_register_serve_and_batch_score_alike(monkeypatch, s3, registry, name, tmp_path):
    """modelops.register() writes the manifest contract this path reads (input, pandas_dtype, allowed)."""
    import modelops

    estimator, X, y = BUILDERS[name]()
    manifest = modelops.register(
        estimator, X, y, name=name, registry=registry, alias="champion", check=name == "titanic-ct"
    )
    assert manifest.input == {"kind": "dataframe", "columns": list(X.columns)}
    rows, _ = parity_rows(X)
    rows = rows[:16]
    directory = tmp_path / "artifact"
    registry.download(name, manifest.version, directory)
    app = serve_model(monkeypatch, directory)
    status, _, body = post(app, {"instances": rows})
    assert status == 200, body
    ids = [f"r{i}" for i in range(len(rows))]
    put_input(s3, "in.csv", csv_input(rows, list(X.columns), ids))
    assert runner(s3, model_name=name).run(DATE)["status"] == "succeeded"
    scored = {r["id"]: r for r in read_csv(s3, OUT + "predictions/part-00000.csv")}
    for row_id, online in zip(ids, body["predictions"], strict=True):
        if isinstance(online, float):
            assert float(scored[row_id]["prediction"]) == pytest.approx(online, rel=1e-12)
        else:
            assert scored[row_id]["prediction"] == str(online)
    clean = X.iloc[:12]
    expected = estimator.predict(clean)
    assert body["predictions"][:12] == (
        pytest.approx(list(expected), rel=1e-12) if isinstance(body["predictions"][0], float) else list(expected)
    )


# ---- array models load without pandas, wherever pandas is installed ------------------------------------------
_LOAD_IN_FRESH_PROCESS = """
import json, sys, threading
from modelops.model.artifact import load_from_dir
from modelops.model import frames
seen = {}
if sys.argv[2] == "thread":  # another thread imports pandas while this one is inside the block
    with frames.pandas_hidden():
        try:
            import pandas  # noqa: F401
        except ModuleNotFoundError as exc:
            seen["here"] = exc.name
        worker = threading.Thread(target=lambda: seen.update(there=__import__("pandas").__name__))
        worker.start()
        worker.join()
else:
    loaded = load_from_dir(sys.argv[1])
    seen["pandas_imported"] = "pandas" in sys.modules
    seen["type"] = type(loaded.estimator).__name__
    import pandas  # importable again after the load
    seen["after"] = pandas.__name__
print(json.dumps(seen))
"""


def _fresh(*args: str) -> dict:
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "layers" / "modelops")}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_an_array_model_loads_without_importing_pandas(classifier_dir):
    """scikit-learn imports pandas at its first import whenever it can (about 0.3 s of a cold start); an array
    model is loaded with pandas hidden, as the Lambda layer keeps it off sys.path, and pandas imports after."""
    seen = _fresh(str(classifier_dir), "load")
    assert seen == {"pandas_imported": False, "type": "Pipeline", "after": "pandas"}


def test_an_array_model_that_pickled_a_pandas_object_still_loads(tmp_path, classifier_dir):
    """The hidden import fails the first attempt with ModuleNotFoundError('pandas'); the retry imports pandas."""
    import joblib
    import pandas as pd
    from modelops.model.artifact import MODEL_FILE, Manifest, write_artifact

    loaded = load_from_dir(classifier_dir)
    loaded.estimator.modelops_note = pd.Series([1, 2])  # a pandas object inside an array model's pickle
    directory = tmp_path / "with-series"
    write_artifact(directory, loaded.estimator, Manifest.from_json(loaded.manifest.to_json()), loaded.golden)
    assert "pandas" in (directory / MODEL_FILE).read_bytes().decode("latin-1")
    assert isinstance(joblib.load(directory / MODEL_FILE).modelops_note, pd.Series)
    seen = _fresh(str(directory), "load")
    assert seen["pandas_imported"] is True and seen["type"] == "Pipeline"


def test_pandas_is_hidden_from_the_loading_thread_only():
    """A batch part's Parquet reader imports pandas in its own thread while the model loads."""
    assert _fresh("-", "thread") == {"here": "pandas", "there": "pandas"}
