"""modelops.register: models and data as a user brings them (tests/support/user_models.py), registered into a local-directory
registry. The inferred schema, the golden set's round trip through its JSON form, held-out metrics, the kept training
sample, and the errors a user can make."""

from __future__ import annotations

import json
import subprocess
import sys

import modelops
import numpy as np
import pandas as pd
import pytest
from modelops.core.errors import ModelOpsError
from modelops.model.artifact import TRAINING_DATA_FILE, Manifest, load_from_dir
from modelops.model.dataset import read_csv
from modelops.model.signature import model_input, to_matrix
from modelops.model.training import evaluate
from modelops.registry import CHAMPION, DEFAULT_LOCAL_REGISTRY, Registry
from modelops.serving.body import read_json
from support import user_models

BUILDERS = {
    "titanic-ct": user_models.column_transformer_model,
    "titanic-hgb": user_models.hgb_from_dtype_model,
    "fares": user_models.regressor_model,
    "species": user_models.multiclass_model,
}


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory) -> Registry:
    return Registry(str(tmp_path_factory.mktemp("registry")))


@pytest.fixture(scope="module")
def registered(local_registry, tmp_path_factory):
    """Each user model registered once (with y), and its artifact downloaded the way a function gets it."""
    out = {}
    for name, build in BUILDERS.items():
        model, X, y = build()
        manifest = modelops.register(model, X, y, name=name, registry=local_registry, check=False)
        directory = tmp_path_factory.mktemp(name)
        local_registry.download(name, manifest.version, directory)
        out[name] = {"model": model, "X": X, "y": y, "manifest": manifest, "dir": directory}
    return out


def features(manifest: Manifest) -> dict[str, dict]:
    return {f["name"]: f for f in manifest.features}


def replay(directory):
    """The golden rows as the predict API validates them, rebuilt into the model's own input."""
    loaded = load_from_dir(directory)
    m = loaded.manifest
    matrix = m.schema.matrix_from_instances(loaded.golden["instances"], max_rows=1000)
    return loaded, model_input(m.features, m.input, matrix)


# ---- the inferred schema -------------------------------------------------------------------------------------------
def test_column_transformer_schema(registered):
    r = registered["titanic-ct"]
    m, X = r["manifest"], r["X"]
    assert [f["name"] for f in m.features] == list(r["model"].feature_names_in_)
    assert m.input == {"kind": "dataframe", "columns": ["age", "fare", "pclass", "sex", "embarked", "alone"]}
    f = features(m)
    for name in ("age", "fare", "pclass"):
        assert f[name]["dtype"] == "number"
        assert f[name]["min"] == float(X[name].min()) and f[name]["max"] == float(X[name].max())
        assert f[name]["nullable"] == bool(X[name].isna().any())
    assert f["age"]["nullable"] and not f["fare"]["nullable"]
    assert f["age"]["pandas_dtype"] == "float64" and f["pclass"]["pandas_dtype"] == "int64"
    assert f["sex"] == {
        "name": "sex",
        "dtype": "category",
        "nullable": False,
        "allowed": ["female", "male"],
        "pandas_dtype": "category",
    }
    # a string column takes the categories of the OneHotEncoder that reads it, in their fitted order
    assert f["embarked"]["dtype"] == "category" and f["embarked"]["nullable"]
    assert f["embarked"]["allowed"] == user_models.PORTS
    assert f["embarked"]["pandas_dtype"] == str(X["embarked"].dtype)
    assert f["alone"] == {
        "name": "alone",
        "dtype": "number",
        "nullable": False,
        "min": 0.0,
        "max": 1.0,
        "pandas_dtype": "bool",
    }
    assert m.task == "classification" and m.classes == ["died", "survived"]
    assert m.estimator == "LogisticRegression"
    assert m.recipe["source"] == "imported" and m.recipe["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert m.recipe["dtypes"] == ["number", "number", "number", "category", "category", "number"]


def test_hgb_from_dtype_schema(registered):
    r = registered["titanic-hgb"]
    f = features(r["manifest"])
    assert f["embarked"]["pandas_dtype"] == "category" and f["embarked"]["nullable"]
    assert f["embarked"]["allowed"] == list(r["X"]["embarked"].cat.categories) == user_models.PORTS
    assert f["sex"]["allowed"] == list(r["X"]["sex"].cat.categories)
    assert "alone" not in f
    assert r["manifest"].estimator == "HistGradientBoostingClassifier"


def test_regressor_schema_and_metrics(registered):
    r = registered["fares"]
    m = r["manifest"]
    assert m.task == "regression" and m.classes is None and m.target == "price"
    assert set(m.metrics) == {"mae", "rmse", "r2", "rows"} and m.metrics["r2"] > 0.8
    golden = load_from_dir(r["dir"]).golden
    assert "probabilities" not in golden and all(isinstance(p, float) for p in golden["predictions"])


def test_multiclass_with_string_labels(registered):
    r = registered["species"]
    m = r["manifest"]
    assert m.classes == ["setosa", "versicolor", "virginica"]
    assert all(f["dtype"] == "number" and not f["nullable"] for f in m.features)
    golden = load_from_dir(r["dir"]).golden
    assert len(golden["probabilities"][0]) == 3
    assert set(golden["predictions"]) <= set(m.classes)


def test_categories_keep_their_fitted_order(local_registry):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    rng = np.random.default_rng(4)
    X = pd.DataFrame(
        {
            "size": rng.choice(["low", "mid", "high"], 200).astype(object),
            "colour": pd.Categorical(rng.choice(["red", "blue", "green"], 200), categories=["red", "green", "blue"]),
            "weight": rng.normal(size=200),
        }
    )
    y = (X["weight"] > 0).map({True: "heavy", False: "light"})
    prepare = ColumnTransformer(
        [
            ("size", OrdinalEncoder(categories=[["low", "mid", "high"]]), ["size"]),
            ("colour", OrdinalEncoder(), ["colour"]),
        ],
        remainder="passthrough",
    )
    model = Pipeline([("prepare", prepare), ("model", LogisticRegression())]).fit(X, y)
    m = modelops.register(model, X, y, name="ordered", registry=local_registry, check=False)
    f = features(m)
    assert f["size"]["allowed"] == ["low", "mid", "high"]  # the encoder's order, not sorted
    assert f["colour"]["allowed"] == ["red", "green", "blue"]  # .cat.categories


# ---- the golden set ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUILDERS))
def test_golden_set_round_trip(registered, name):
    """The downloaded artifact loads, and its golden rows, validated like requests and rebuilt into the model's
    input, get exactly the answers recorded for them."""
    loaded, X = replay(registered[name]["dir"])
    golden = loaded.golden
    assert loaded.estimator.predict(X).tolist() == golden["predictions"]
    if loaded.manifest.task == "classification":
        assert loaded.estimator.predict_proba(X).tolist() == golden["probabilities"]
    # the same answers the user's own DataFrame gets
    rows = registered[name]["X"]
    assert len(golden["instances"]) >= 20 and len(golden["instances"]) <= len(rows)


def test_golden_set_is_json_the_predict_api_accepts(registered):
    r = registered["titanic-ct"]
    text = (r["dir"] / "golden.json").read_bytes()
    assert b"NaN" not in text and b"Infinity" not in text
    golden = read_json(text, False, 10 * 1024 * 1024)
    instances = golden["instances"]
    assert any(row["age"] is None for row in instances), "a missing age travels as null"
    assert any(row["embarked"] is None for row in instances)
    assert all(isinstance(row["pclass"], int) and isinstance(row["alone"], int) for row in instances)
    assert all(type(v) in (int, float, str, type(None)) for row in instances for v in row.values())
    assert all(isinstance(p, str) for p in golden["predictions"])
    matrix = r["manifest"].schema.matrix_from_instances(instances, max_rows=1000)
    assert matrix.shape == (len(instances), 6)


# ---- metrics, training data, registry ------------------------------------------------------------------------------
def test_held_out_metrics_come_from_training_evaluate(registered):
    r = registered["titanic-ct"]
    expected = evaluate("classification", r["model"], r["X"], r["y"].to_numpy(dtype=object))
    assert r["manifest"].metrics == expected
    assert set(expected) == {"accuracy", "f1_macro", "log_loss", "roc_auc", "rows"} and expected["rows"] == 400


def test_training_sample_is_kept_with_the_version(registered, local_registry):
    r = registered["titanic-ct"]
    m = r["manifest"]
    key = local_registry.version_key(m.name, m.version, TRAINING_DATA_FILE)
    body, _ = local_registry.store.get(key)
    assert m.training_data == {
        "uri": local_registry.store.uri(key),
        "sha256": m.recipe["training_data"]["sha256"],
        "rows": 400,
        "file": TRAINING_DATA_FILE,
    }
    assert m.recipe["training_data"]["version"] == m.version
    data = read_csv(body, m.recipe["target"], m.recipe["features"], m.recipe["dtypes"])
    assert data.sha256 == m.training_data["sha256"] and data.rows == 400 and data.target == "outcome"
    expected = to_matrix(r["X"], m.features)
    for j in range(expected.shape[1]):
        got, want = data.X[:, j], expected[:, j]
        assert [("nan" if g != g else g) for g in got] == [("nan" if w != w else w) for w in want]
    assert list(data.y) == list(r["y"])


def test_registered_in_a_local_directory_with_an_alias(local_registry):
    model, X, y = user_models.multiclass_model()
    m = modelops.register(model, X, y, name="iris-like", registry=local_registry.uri, alias=CHAMPION, check=False)
    assert local_registry.list_versions("iris-like") == [m.version]
    assert local_registry.resolve("iris-like", CHAMPION) == m.version
    assert [e["event"] for e in local_registry.history("iris-like")] == ["registered", "alias_set"]
    loaded = local_registry.load("iris-like", CHAMPION)
    assert loaded.manifest.to_json() == m.to_json()


def test_default_registry_is_the_environment_then_a_local_directory(tmp_path, monkeypatch):
    model, X, _ = user_models.multiclass_model(60)
    monkeypatch.chdir(tmp_path)
    m = modelops.register(model, X, name="here", check=False)
    assert Registry(str(tmp_path / DEFAULT_LOCAL_REGISTRY)).list_versions("here") == [m.version]
    monkeypatch.setenv("MODELOPS_REGISTRY", str(tmp_path / "elsewhere"))
    m2 = modelops.register(model, X, name="there", check=False)
    assert Registry(str(tmp_path / "elsewhere")).list_versions("there") == [m2.version]


def test_without_y_nothing_is_kept_for_retraining(local_registry):
    model, X, _ = user_models.regressor_model()
    m = modelops.register(model, X, name="no-labels", registry=local_registry, description="fares", check=False)
    assert m.metrics == {} and m.target == ""
    assert m.training_data["uri"] is None and m.recipe["training_data"] is None
    assert m.description == "fares"
    assert not local_registry.store.exists(local_registry.version_key("no-labels", m.version, TRAINING_DATA_FILE))


# ---- arrays ---------------------------------------------------------------------------------------------------------
def test_array_with_feature_names(local_registry):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, 1, 0)
    model = LogisticRegression().fit(X, y)
    m = modelops.register(model, X, y, name="arr", feature_names=["a", "b"], registry=local_registry, check=False)
    assert [f["name"] for f in m.features] == ["a", "b"] and m.input is None
    assert "pandas_dtype" not in m.features[0] and m.classes == [0, 1]
    unnamed = modelops.register(model, X, y, name="arr", registry=local_registry, check=False)
    assert [f["name"] for f in unnamed.features] == ["x0", "x1"]
    assert "input" not in json.loads(unnamed.to_json())


def test_object_array_with_a_string_column(local_registry, tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(6)
    X = np.empty((120, 2), dtype=object)
    X[:, 0] = rng.normal(size=120)
    X[:, 1] = rng.choice(["b", "a", "c"], 120)
    y = np.where(X[:, 1] == "a", "yes", "no")
    model = Pipeline(
        [
            ("prepare", ColumnTransformer([("cat", OneHotEncoder(), [1])], remainder="passthrough")),
            ("m", LogisticRegression()),
        ]
    ).fit(X, y)
    m = modelops.register(
        model, X, y, name="obj", feature_names=["score", "letter"], registry=local_registry, check=False
    )
    assert [f["dtype"] for f in m.features] == ["number", "category"]
    assert m.features[1]["allowed"] == ["a", "b", "c"]
    local_registry.download("obj", m.version, tmp_path)
    loaded, X_again = replay(tmp_path)
    assert isinstance(X_again, np.ndarray)
    assert loaded.estimator.predict(X_again).tolist() == loaded.golden["predictions"]


def test_array_for_a_dataframe_fitted_model_takes_its_feature_names(local_registry):
    model, X, y = user_models.multiclass_model()
    m = modelops.register(model, X.to_numpy(), y.to_numpy(), name="species-arr", registry=local_registry, check=False)
    assert [f["name"] for f in m.features] == list(X.columns)
    assert m.input["kind"] == "dataframe" and m.target == "target"
    with pytest.raises(ModelOpsError, match="feature_names differ"):
        modelops.register(model, X.to_numpy(), name="x", feature_names=["a", "b", "c"], registry=local_registry)


# ---- manifests ---------------------------------------------------------------------------------------------------
def test_manifests_of_trained_models_load_and_serialise_unchanged(classifier_dir):
    raw = (classifier_dir / "manifest.json").read_bytes()
    m = Manifest.from_json(raw)
    assert m.input is None and m.description == ""
    assert m.to_json() == raw
    old = json.loads(raw)
    old.pop("golden")
    old["added_later"] = {"x": 1}
    assert Manifest.from_json(json.dumps(old)).golden == {}


def test_import_modelops_stays_cheap():
    code = (
        "import sys, modelops; heavy = [m for m in ('sklearn', 'numpy', 'pandas', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy; assert callable(modelops.register); assert 'modelops.registry.registration' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- user errors -----------------------------------------------------------------------------------------------------
def _unfitted():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


@pytest.mark.parametrize(
    "case,expected",
    [
        ("unfitted", "is not fitted"),
        ("not_an_estimator", "not a scikit-learn estimator"),
        ("bad_name", "model name 'two words' is not valid"),
        ("missing_column", "X has no column 'fare'"),
        ("y_missing_values", "y has missing values"),
        ("y_unknown_class", "classes the model does not know: maybe"),
        ("y_length", "y has 3 values for 400 rows"),
        ("wrong_task", "no predict_proba"),
        ("unsupported_dtype", "has dtype datetime64"),
        ("numeric_categories", "category column with int64 categories"),
        ("cannot_score", "the model cannot score X: could not convert string to float"),
    ],
)
def test_user_errors(local_registry, case, expected):
    model, X, y = user_models.column_transformer_model()
    kwargs: dict = {"name": "errors", "registry": local_registry, "check": False}
    if case == "unfitted":
        model = _unfitted()
    elif case == "not_an_estimator":
        model = {"predict": None}
    elif case == "bad_name":
        kwargs["name"] = "two words"
    elif case == "missing_column":
        X = X.drop(columns=["fare"])
    elif case == "y_missing_values":
        y = y.where(y.index > 3)
    elif case == "y_unknown_class":
        y = y.where(y.index > 3, "maybe")
    elif case == "y_length":
        y = y[:3]
    elif case == "wrong_task":
        from sklearn.linear_model import Ridge

        model = Ridge().fit(X[["fare"]], X["age"].fillna(0))
        X, y, kwargs["task"] = X[["fare"]], None, "classification"
    elif case in ("unsupported_dtype", "numeric_categories"):
        from sklearn.ensemble import RandomForestClassifier

        column = (
            pd.Series(pd.date_range("2024-01-01", periods=len(X)))
            if case == "unsupported_dtype"
            else pd.Categorical(X["pclass"])
        )
        X = X[["fare"]].assign(extra=column)
        model = RandomForestClassifier(n_estimators=3).fit(X[["fare"]].assign(extra=X["fare"]), y)
    elif case == "cannot_score":
        model, X, y = user_models.multiclass_model()
        X = X.assign(petal_length="long")
    with pytest.raises(ModelOpsError, match=expected) as raised:
        modelops.register(model, X, y, **kwargs)
    assert "\n" not in str(raised.value)
    assert "errors" not in local_registry.list_models()


def test_registered_into_an_s3_registry(registry):
    """The moto S3 registry of the other tests: the kept sample lands next to the version's other files."""
    model, X, y = user_models.multiclass_model()
    m = modelops.register(model, X, y, name="species", registry=registry, alias=CHAMPION, check=False)
    key = registry.version_key("species", m.version, TRAINING_DATA_FILE)
    assert m.training_data["uri"] == f"s3://modelops-test/{key}"
    assert registry.store.exists(key) and registry.resolve("species", CHAMPION) == m.version
    assert registry.load("species", m.version).golden["predictions"]
