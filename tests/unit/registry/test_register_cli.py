"""`modelops models import`: a joblib model and a sample CSV, read into the dtypes the fitted model expects, registered
into a local-directory registry; every user error is one line and a non-zero exit."""

from __future__ import annotations

import json
import sys

import joblib
import pytest
from modelops.model.artifact import load_from_dir
from modelops.model.signature import model_input
from modelops.model.training import evaluate
from modelops.registry import CHAMPION, Registry
from support import user_models
from support.cli import one_line_error, run


@pytest.fixture
def files(tmp_path):
    """Two fitted models saved with joblib, and their samples written by pandas (categories become plain text)."""
    out = {"dir": tmp_path, "registry": str(tmp_path / "registry")}
    for key, build in (("hgb", user_models.hgb_from_dtype_model), ("ct", user_models.column_transformer_model)):
        model, X, y = build()
        joblib.dump(model, tmp_path / f"{key}.joblib")
        X.assign(outcome=y).to_csv(tmp_path / f"{key}.csv", index=False)
        out[key] = (model, X, y)
    return out


def test_import_hgb_from_dtype_model_reads_category_columns_as_fitted(files, capsys, tmp_path):
    d = files["dir"]
    code, out, err = run(
        capsys,
        "--json",
        "models",
        "import",
        "--registry",
        files["registry"],
        "--model",
        str(d / "hgb.joblib"),
        "--data",
        str(d / "hgb.csv"),
        "--target",
        "outcome",
        "--model-name",
        "titanic",
        "--alias",
        "champion",
        "--description",
        "from a notebook",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["input"] == "dataframe" and result["estimator"] == "HistGradientBoostingClassifier"
    registry = Registry(files["registry"])
    assert registry.resolve("titanic", CHAMPION) == result["version"]
    manifest = registry.manifest("titanic", result["version"])
    f = {x["name"]: x for x in manifest.features}
    assert f["embarked"]["pandas_dtype"] == "category" and f["embarked"]["allowed"] == user_models.PORTS
    assert f["sex"]["pandas_dtype"] == "category"
    assert manifest.description == "from a notebook"
    assert manifest.recipe["target"] == "outcome"
    # the CSV read back into category columns scores exactly like the DataFrame the model was fitted on
    model, X, y = files["hgb"]
    assert manifest.metrics == evaluate("classification", model, X, y.to_numpy(dtype=object))
    registry.download("titanic", result["version"], tmp_path / "artifact")
    loaded = load_from_dir(tmp_path / "artifact")
    matrix = manifest.schema.matrix_from_instances(loaded.golden["instances"], max_rows=1000)
    assert (
        loaded.estimator.predict(model_input(manifest.features, manifest.input, matrix)).tolist()
        == (loaded.golden["predictions"])
    )
    code, out, _ = run(capsys, "--registry", files["registry"], "models", "show", "titanic")
    assert code == 0 and "imported" in out and "dataframe" in out and "from a notebook" in out


def test_import_column_transformer_model(files, capsys):
    d = files["dir"]
    code, out, err = run(
        capsys,
        "--json",
        "--registry",
        files["registry"],
        "models",
        "import",
        "--model",
        str(d / "ct.joblib"),
        "--data",
        str(d / "ct.csv"),
        "--target",
        "outcome",
        "--model-name",
        "titanic-ct",
        "--no-runtime-check",
    )
    assert code == 0, err
    manifest = Registry(files["registry"]).manifest("titanic-ct", json.loads(out)["version"])
    f = {x["name"]: x for x in manifest.features}
    assert [x["name"] for x in manifest.features] == ["age", "fare", "pclass", "sex", "embarked", "alone"]
    assert f["embarked"]["allowed"] == user_models.PORTS and f["embarked"]["nullable"]
    assert f["alone"]["pandas_dtype"] == "bool" and f["pclass"]["pandas_dtype"] == "int64"
    assert manifest.metrics["rows"] == 400


def test_import_without_target_keeps_no_training_data(files, capsys):
    d = files["dir"]
    model, X, _ = files["hgb"]
    X.to_csv(d / "no-target.csv", index=False)
    code, out, err = run(
        capsys,
        "--json",
        "--registry",
        files["registry"],
        "models",
        "import",
        "--model",
        str(d / "hgb.joblib"),
        "--data",
        str(d / "no-target.csv"),
        "--model-name",
        "titanic",
    )
    assert code == 0, err
    manifest = Registry(files["registry"]).manifest("titanic", json.loads(out)["version"])
    assert manifest.metrics == {} and manifest.training_data["uri"] is None


@pytest.mark.parametrize(
    "case,expected",
    [
        ("missing_model", "model file not found"),
        ("not_joblib", "is not a joblib file"),
        ("not_fitted", "is not fitted"),
        ("not_an_estimator", "is not a scikit-learn estimator"),
        ("missing_data", "data file not found"),
        ("empty_data", "is empty"),
        ("missing_column", "has no column 'fare', which the model was fitted on"),
        ("missing_target", "target column 'survived' not found"),
        ("bad_name", "model name 'no/slashes' is not valid"),
        ("unknown_class", "classes the model does not know: maybe"),
        ("module_not_here", "needs module 'gone_steps' to load"),
    ],
)
def test_import_user_errors(files, capsys, tmp_path, monkeypatch, case, expected):
    d = files["dir"]
    model_file, data_file, target, name = d / "hgb.joblib", d / "hgb.csv", "outcome", "titanic"
    _, X, y = files["hgb"]
    if case == "missing_model":
        model_file = d / "nope.joblib"
    elif case == "not_joblib":
        model_file = d / "text.joblib"
        model_file.write_text("not a pickle at all\n")
    elif case == "not_fitted":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model_file = d / "unfitted.joblib"
        joblib.dump(HistGradientBoostingClassifier(), model_file)
    elif case == "not_an_estimator":
        model_file = d / "dict.joblib"
        joblib.dump({"weights": [1, 2]}, model_file)
    elif case == "missing_data":
        data_file = d / "nope.csv"
    elif case == "empty_data":
        data_file = d / "empty.csv"
        data_file.write_text("")
    elif case == "missing_column":
        data_file = d / "less.csv"
        X.drop(columns=["fare"]).assign(outcome=y).to_csv(data_file, index=False)
    elif case == "missing_target":
        target = "survived"
    elif case == "bad_name":
        name = "no/slashes"
    elif case == "unknown_class":
        data_file = d / "odd.csv"
        X.assign(outcome=y.where(y.index > 0, "maybe")).to_csv(data_file, index=False)
    elif case == "module_not_here":
        (tmp_path / "gone_steps.py").write_text(
            "from sklearn.base import BaseEstimator, TransformerMixin\n"
            "class Same(TransformerMixin, BaseEstimator):\n"
            "    def fit(self, X, y=None):\n        return self\n"
            "    def transform(self, X):\n        return X\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        import gone_steps
        from sklearn.pipeline import Pipeline

        model_file = d / "custom.joblib"
        joblib.dump(Pipeline([("same", gone_steps.Same()), ("model", files["hgb"][0])]), model_file)
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
        del sys.modules["gone_steps"]
    args = ["models", "import", "--registry", files["registry"], "--model", str(model_file), "--data", str(data_file)]
    code, _, err = run(capsys, *args, "--target", target, "--model-name", name, "--no-runtime-check")
    assert code == 1
    assert expected in one_line_error(err)
    assert Registry(files["registry"]).list_models() == []


def test_import_refused_by_the_runtime_check_is_one_line(files, capsys, tmp_path, monkeypatch):
    """A pickle that needs a module the layers lack: the import fails before anything reaches the registry."""
    (tmp_path / "local_steps.py").write_text(
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Same(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import local_steps
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    _, X, y = user_models.multiclass_model()
    model = Pipeline([("same", local_steps.Same()), ("model", RandomForestClassifier(n_estimators=5))]).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    X.assign(species=y).to_csv(tmp_path / "m.csv", index=False)
    code, _, err = run(
        capsys,
        "models",
        "import",
        "--registry",
        files["registry"],
        "--model",
        str(tmp_path / "m.joblib"),
        "--data",
        str(tmp_path / "m.csv"),
        "--target",
        "species",
        "--model-name",
        "species",
    )
    sys.modules.pop("local_steps", None)
    assert code == 1
    assert "needs module 'local_steps', which the runtime's layers do not have" in one_line_error(err)
    assert Registry(files["registry"]).list_models() == []
