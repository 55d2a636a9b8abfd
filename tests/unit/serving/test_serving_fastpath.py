"""The predict path calls the model with scikit-learn's input checks off (modelops.model.inference): the feature
schema refuses every value those checks would, before the model runs, and the answers are the same bytes
as the plain predict_proba's, for numpy pipelines, HistGradientBoosting and a DataFrame pipeline whose
nullable columns carry nulls."""

from __future__ import annotations

import functools
import json
import re

import pytest
import sklearn
from modelops.model.artifact import load_from_dir
from modelops.model.inference import ModelRunner
from support import user_models
from support.api import invoke, proxy_event, serve_model
from support.frame_artifacts import json_rows, write_frame_artifact

TOKEN = re.compile(r',"label_token":"[^"]*"')
XML_TOKEN = re.compile(r"<label_token>[^<]*</label_token>")


@pytest.fixture
def serve(monkeypatch):
    return functools.partial(serve_model, monkeypatch)


@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory):
    estimator, X, y = user_models.column_transformer_model()
    directory = tmp_path_factory.mktemp("ct-frame")
    write_frame_artifact(directory, estimator, X, y, "titanic", golden_rows=10)
    return directory, X


def _golden(model_dir):
    return json.loads((model_dir / "golden.json").read_text())["instances"]


def _final_step(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


@pytest.fixture(params=["classifier_dir", "classifier_v2_dir"])
def spied(serve, request, monkeypatch):
    """The handler on the logistic pipeline and on HistGradientBoosting (same features), with a record of each
    predict_proba call of the model's final step and the scikit-learn configuration it ran under."""
    app = serve(request.getfixturevalue(request.param))
    final = _final_step(app.gateway.holder.model.estimator)
    calls = []
    real = final.predict_proba

    def spy(X):
        calls.append(sklearn.get_config())
        return real(X)

    monkeypatch.setattr(final, "predict_proba", spy)
    return app, calls


def _post(app, body=None, **kwargs):
    return invoke(app, proxy_event("POST", "/predict", body, **kwargs))


def test_a_valid_request_reaches_the_model_with_the_checks_off(spied, classifier_dir):
    app, calls = spied
    status, _, _ = _post(app, {"instances": _golden(classifier_dir)[:2]})
    assert status == 200
    assert len(calls) == 1
    assert calls[0]["assume_finite"] is True and calls[0]["skip_parameter_validation"] is True
    assert sklearn.get_config()["assume_finite"] is False  # only for the call


def _replace(row, **changes):
    return {**row, **changes}


@pytest.mark.parametrize(
    "make, code, field",
    [
        (lambda r: {"instances": [_replace(r, mean_radius=None)]}, "wrong_type", "instances[0].mean_radius"),
        (lambda r: {"instances": [_replace(r, mean_radius="7")]}, "wrong_type", "instances[0].mean_radius"),
        (lambda r: {"instances": [_replace(r, mean_radius=True)]}, "wrong_type", "instances[0].mean_radius"),
        (lambda r: {"instances": [_replace(r, mean_radius=[1.0])]}, "wrong_type", "instances[0].mean_radius"),
        (lambda r: {"instances": [r, _replace(r, mean_area={"v": 1})]}, "wrong_type", "instances[1].mean_area"),
        (
            lambda r: {"instances": [{k: v for k, v in r.items() if k != "mean_area"}]},
            "missing_feature",
            "instances[0].mean_area",
        ),
        (lambda r: {"instances": [_replace(r, extra=1.0)]}, "unknown_feature", "instances[0].extra"),
        (lambda r: {"instances": [r, [1.0, 2.0]]}, "invalid_input", "instances[1]"),
        (lambda r: {"columns": list(r), "data": [list(r.values())[:-1]]}, "invalid_input", "data[0]"),
        (lambda r: {"columns": list(r), "data": [[None, *list(r.values())[1:]]]}, "wrong_type", "data[0][0]"),
        (lambda r: {"columns": list(r), "data": [["x", *list(r.values())[1:]]]}, "wrong_type", "data[0][0]"),
        (lambda r: {"columns": list(r), "data": [[True, *list(r.values())[1:]]]}, "wrong_type", "data[0][0]"),
        (lambda r: {"columns": list(r), "data": [[[1.0], *list(r.values())[1:]]]}, "wrong_type", "data[0][0]"),
        (lambda r: {"columns": list(r), "data": [list(r.values()), list(r.values())[1:]]}, "invalid_input", "data[1]"),
        (lambda r: {"columns": list(r), "data": [[*list(r.values()), 1.0]]}, "invalid_input", "data[0]"),
        (
            lambda r: {"columns": [*list(r), "extra"], "data": [[*list(r.values()), 1.0]]},
            "unknown_feature",
            "columns.extra",
        ),
        (lambda r: {"columns": list(r)[1:], "data": [list(r.values())[1:]]}, "missing_feature", "columns.mean_radius"),
        (lambda r: {"instances": [r, _replace(r, worst_area=None)]}, "wrong_type", "instances[1].worst_area"),
    ],
)
def test_wrong_types_and_shapes_are_refused_before_the_model(spied, classifier_dir, make, code, field):
    app, calls = spied
    status, _, body = _post(app, make(_golden(classifier_dir)[0]))
    assert status == 400, body
    assert (body["error"]["code"], body["error"]["field"]) == (code, field)
    assert calls == []


@pytest.mark.parametrize(
    "literal, code",
    [
        ("1e400", "not_finite"),
        ("-1e400", "not_finite"),
        ("1e309", "not_finite"),
        ("NaN", "malformed_json"),  # not JSON: refused by the parser, as are the two below
        ("Infinity", "malformed_json"),
        ("-Infinity", "malformed_json"),
    ],
)
def test_non_finite_values_are_refused_before_the_model(spied, classifier_dir, literal, code):
    app, calls = spied
    row = _golden(classifier_dir)[0]
    for body in (
        {"instances": [row]},
        {"columns": list(row), "data": [list(row.values())]},
    ):
        text = json.dumps(body).replace(repr(row["mean_radius"]), literal, 1)
        assert literal in text
        status, _, answer = _post(app, raw_body=text)
        assert status == 400, answer
        assert answer["error"]["code"] == code and answer["error"]["field"] == "body"
    assert calls == []


def _answers(app, bodies):
    out = []
    for body in bodies:
        for accept in ("application/json", "application/xml"):
            event = proxy_event("POST", "/predict", body, request_id="same", headers={"Accept": accept})
            response = app.lambda_handler(event, None)
            assert response["statusCode"] == 200, response["body"]
            # the token holds the time it was issued
            out.append(XML_TOKEN.sub("", TOKEN.sub("", response["body"])))
    return out


def _bodies(rows):
    many = [rows[i % len(rows)] for i in range(100)]
    columns = list(rows[0])
    return [
        {"instances": rows[:1]},
        {"instances": many},
        {"columns": columns, "data": [[r[c] for c in columns] for r in many]},
    ]


@pytest.mark.parametrize("fixture", ["classifier_dir", "classifier_v2_dir", "frame"])
def test_answers_are_byte_identical_with_and_without_the_fast_path(serve, request, fixture, frame_dir):
    if fixture == "frame":
        model_dir, X = frame_dir
        rows = json_rows(X.head(40))
        assert any(r["age"] is None for r in rows) and any(r["embarked"] is None for r in rows)
        complete = [r for r in rows if None not in r.values()]
        bodies = [*_bodies(rows), *_bodies(complete)]
    else:
        model_dir = request.getfixturevalue(fixture)
        bodies = _bodies(_golden(model_dir))
    app = serve(model_dir)
    runner = app.gateway.holder.model.runner
    assert runner.fast
    fast = _answers(app, bodies)
    runner.fast = False
    plain = _answers(app, bodies)
    assert fast == plain
    assert all('"probabilities"' in answer or "<probabilities>" in answer for answer in fast)
    assert sum(answer.startswith("<?xml") for answer in fast) == len(bodies)


@pytest.mark.parametrize("fixture", ["classifier_dir", "classifier_v2_dir", "regressor_dir"])
def test_the_runner_gives_the_plain_outputs_bit_for_bit(request, fixture):
    loaded = load_from_dir(request.getfixturevalue(fixture))
    schema = loaded.manifest.schema
    proba = loaded.manifest.task == "classification"
    fast = ModelRunner(loaded.estimator, schema, loaded.manifest.input, proba)
    plain = ModelRunner(loaded.estimator, schema, loaded.manifest.input, proba, fast=False)
    rows = json.loads(json.dumps(loaded.golden["instances"]))
    matrix = schema.matrix_from_instances([rows[i % len(rows)] for i in range(100)], 1000)
    for block in (matrix[:1], matrix):
        assert fast.raw(block).tobytes() == plain.raw(block).tobytes()
    if fixture == "classifier_dir":  # the logistic pipeline starts with an imputer that is skipped
        assert fast._complete_rows_estimator is not None


def test_rows_with_nulls_still_reach_the_imputers(frame_dir):
    model_dir, X = frame_dir
    loaded = load_from_dir(model_dir)
    schema = loaded.manifest.schema
    fast = ModelRunner(loaded.estimator, schema, loaded.manifest.input, True)
    rows = json_rows(X.head(40))
    matrix = schema.matrix_from_instances(rows, 1000)
    assert not fast._complete(matrix)
    expected = loaded.estimator.predict_proba(X.head(40))
    assert fast.raw(matrix).tobytes() == expected.tobytes()


def test_the_columnar_form_builds_the_same_matrix_as_instances_in_any_column_order(classifier_dir):
    schema = load_from_dir(classifier_dir).manifest.schema
    rows = [{**r, "mean_radius": int(r["mean_radius"])} for r in _golden(classifier_dir)]  # ints too
    by_rows = schema.matrix_from_instances(rows, 1000)
    for columns in (list(schema.names), list(reversed(schema.names))):
        by_columns = schema.matrix_from_columns(columns, [[r[c] for c in columns] for r in rows], 1000)
        assert by_columns.dtype == by_rows.dtype and by_columns.tobytes() == by_rows.tobytes()


def test_the_fast_matrix_paths_leave_typed_and_one_feature_schemas_to_the_per_value_checks():
    from modelops.core.errors import InputError
    from modelops.model.schema import Feature, FeatureSchema

    typed = FeatureSchema(
        (Feature("n", "number", 0, 9, pandas_dtype="int64"), Feature("b", "number", 0, 1, pandas_dtype="bool"))
    )
    assert typed.matrix_from_columns(["b", "n"], [[1, 3]], 10).tolist() == [[3.0, 1.0]]
    assert typed.matrix_from_instances([{"n": 3, "b": True}], 10).tolist() == [[3.0, 1.0]]
    for call, field in (
        (lambda: typed.matrix_from_columns(["b", "n"], [[1, 3.5]], 10), "data[0][1]"),
        (lambda: typed.matrix_from_instances([{"n": 3, "b": 2}], 10), "instances[0].b"),
    ):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.field == field
    one = FeatureSchema((Feature("x", "number", 0, 1),))
    assert one.matrix_from_instances([{"x": 0.5}, {"x": 1}], 10).tolist() == [[0.5], [1.0]]
    assert one.matrix_from_columns(["x"], [[0.5], [1]], 10).tolist() == [[0.5], [1.0]]
    with pytest.raises(InputError) as caught:
        one.matrix_from_instances([{"x": "0.5"}], 10)
    assert caught.value.field == "instances[0].x"
