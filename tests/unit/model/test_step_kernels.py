"""modelops.model.step_kernels: fitted StandardScaler, LogisticRegression and HistGradientBoostingClassifier steps
called without scikit-learn's input validation give the same bytes as the steps' own methods, are used only
when verified, and never for a subclass, a step that outputs DataFrames or a method replaced on the step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from modelops.model.artifact import load_from_dir
from modelops.model.inference import ModelRunner, PipelineCall
from modelops.model.step_kernels import final_kernel, proba_kernel, transform_kernel, verified
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _rows(n: int, width: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width)) * 3


@pytest.fixture(scope="module")
def iris_pipeline():
    X, y = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), X


@pytest.fixture(scope="module")
def binary_pipeline():
    X, y = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y == 0), X


@pytest.mark.parametrize("which", ["iris_pipeline", "binary_pipeline"])
@pytest.mark.parametrize("n", [1, 7, 100])
def test_kernels_give_the_steps_bytes(request, which, n):
    pipeline, _ = request.getfixturevalue(which)
    scaler, model = pipeline[0], pipeline[-1]
    X = _rows(n, 4)
    scaled = transform_kernel(scaler)(X.copy())
    assert scaled.tobytes() == scaler.transform(X).tobytes()
    ours, theirs = proba_kernel(model)(scaled), model.predict_proba(scaler.transform(X))
    assert ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes()


def test_the_scaler_kernel_leaves_its_input_alone(iris_pipeline):
    scaler = iris_pipeline[0][0]
    X = _rows(5, 4)
    before = X.copy()
    transform_kernel(scaler)(X)
    assert X.tobytes() == before.tobytes()


@pytest.mark.parametrize("with_mean, with_std", [(False, True), (True, False), (False, False)])
def test_scaler_options_are_followed(iris_pipeline, with_mean, with_std):
    X = iris_pipeline[1]
    scaler = StandardScaler(with_mean=with_mean, with_std=with_std).fit(X)
    rows = _rows(9, 4)
    assert transform_kernel(scaler)(rows.copy()).tobytes() == scaler.transform(rows).tobytes()


def test_subclasses_dataframe_output_and_in_place_scalers_get_no_kernel(iris_pipeline):
    X = iris_pipeline[1]

    class Scaler(StandardScaler):
        pass

    assert transform_kernel(Scaler().fit(X)) is None
    assert transform_kernel(StandardScaler(copy=False).fit(X)) is None
    framed = StandardScaler().fit(X).set_output(transform="pandas")
    assert verified(transform_kernel(framed), framed.transform, _rows(3, 4)) is None


def test_a_kernel_that_differs_from_its_step_is_not_used(iris_pipeline):
    model = iris_pipeline[0][-1]
    kernel = proba_kernel(model)
    probe = _rows(8, 4)
    assert verified(kernel, model.predict_proba, probe) is kernel
    assert verified(lambda X: kernel(X) + 1e-16, model.predict_proba, probe) is None
    assert verified(kernel, lambda X: np.zeros((len(X), 3)), probe) is None
    assert verified(lambda X: 1 / 0, model.predict_proba, probe) is None


def test_the_runner_calls_the_logistic_pipeline_through_its_kernels(classifier_dir):
    loaded = load_from_dir(classifier_dir)
    schema = loaded.manifest.schema
    runner = ModelRunner(loaded.estimator, schema, loaded.manifest.input, True)
    call = runner._complete_rows_call
    assert isinstance(call, PipelineCall)
    assert call.final_kernel is not None and all(k is not None for k in call.kernels)
    rows = json.loads(json.dumps(loaded.golden["instances"]))
    matrix = schema.matrix_from_instances([rows[i % len(rows)] for i in range(100)], 1000)
    for block in (matrix[:1], matrix[:37], matrix):
        assert runner.raw(block).tobytes() == loaded.estimator.predict_proba(block).tobytes()


def test_a_step_method_replaced_on_the_step_is_called(classifier_dir):
    loaded = load_from_dir(classifier_dir)
    schema = loaded.manifest.schema
    runner = ModelRunner(loaded.estimator, schema, loaded.manifest.input, True)
    final = runner._complete_rows_call.final
    calls = []
    real = final.predict_proba
    final.predict_proba = lambda X: calls.append(len(X)) or real(X)
    try:
        matrix = schema.matrix_from_instances(json.loads(json.dumps(loaded.golden["instances"][:3])), 1000)
        runner.raw(matrix)
    finally:
        del final.predict_proba
    assert calls == [3]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("n", [1, 100, 3000])
def test_the_boosting_kernel_gives_predict_probas_bytes(binary, n):
    """The kernel runs each tree itself (one reused buffer, bitsets built once), so it is compared with
    predict_proba on one-class and three-class models, and on rows with missing values, which trees route
    by their learned side."""
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[::9, 2] = np.nan  # trained with missing values, so the trees have a side for them
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y == 0 if binary else y)
    kernel = final_kernel(model)
    assert kernel is not None
    rows = _rows(n, 4) + 4
    assert kernel(rows.copy()).tobytes() == model.predict_proba(rows).tobytes()
    rows[::3, 2] = np.nan
    assert kernel(rows.copy()).tobytes() == model.predict_proba(rows).tobytes()


def test_a_boosting_model_with_categorical_features_gets_no_kernel():
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[:, 0] = (X[:, 0] > 5.8).astype(float)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(X, y)
    assert final_kernel(model) is None


def test_the_runner_calls_the_boosting_model_through_its_kernel(classifier_v2_dir):
    loaded = load_from_dir(classifier_v2_dir)
    schema = loaded.manifest.schema
    runner = ModelRunner(loaded.estimator, schema, loaded.manifest.input, True)
    assert runner._complete_rows_call is not None and runner._complete_rows_call.final_kernel is not None
    rows = json.loads(json.dumps(loaded.golden["instances"]))
    matrix = schema.matrix_from_instances([rows[i % len(rows)] for i in range(100)], 1000)
    for block in (matrix[:1], matrix):
        assert runner.raw(block).tobytes() == loaded.estimator.predict_proba(block).tobytes()


def test_a_bare_estimator_gets_its_kernel_too(classifier_dir, classifier_v2_dir):
    """A model saved without a Pipeline around it (a bare HistGradientBoostingClassifier from a notebook) is called
    through its kernel, with the same bytes as its predict_proba."""
    for model_dir in (classifier_dir, classifier_v2_dir):  # LogisticRegression and HistGradientBoosting last steps
        loaded = load_from_dir(model_dir)
        schema = loaded.manifest.schema
        bare = loaded.estimator.steps[-1][1]
        runner = ModelRunner(bare, schema, loaded.manifest.input, True)
        assert runner._complete_rows_call is not None and runner._complete_rows_call.final_kernel is not None
        rows = json.loads(json.dumps(loaded.golden["instances"]))
        matrix = loaded.estimator[:-1].transform(schema.matrix_from_instances(rows, 1000))
        for block in (matrix[:1], matrix):
            assert runner.raw(block).tobytes() == bare.predict_proba(block).tobytes()
