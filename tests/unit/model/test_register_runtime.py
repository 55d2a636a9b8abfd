"""Registration refuses what the runtime cannot serve: the artifact's golden set is scored in a fresh interpreter that
sees only the runtime layers' packages (modelops.model.runtimecheck), before anything is written to the registry."""

from __future__ import annotations

import sys
from pathlib import Path

import modelops
import pytest
from modelops.core.errors import ModelOpsError
from modelops.model.runtimecheck import (
    LAYER_PATH_ENV,
    RuntimeCheckError,
    check_serves,
    pinned_versions,
    runtime_environment,
)
from modelops.registry import Registry
from support import user_models

pytestmark = pytest.mark.slow

USER_MODULE = '''
from sklearn.base import BaseEstimator, TransformerMixin


class Clip(TransformerMixin, BaseEstimator):
    """A user's own step: the runtime's layers do not have this module."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.clip(-1e6, 1e6)
'''


@pytest.fixture
def user_step(tmp_path, monkeypatch):
    """A transformer class from a module that exists only in the user's environment."""
    (tmp_path / "house_steps.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import house_steps

    yield house_steps.Clip
    sys.modules.pop("house_steps", None)


def test_a_model_needing_a_module_the_layers_lack_is_refused_before_anything_is_written(tmp_path, user_step):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    _, X, y = user_models.multiclass_model()
    model = Pipeline([("clip", user_step()), ("model", LogisticRegression(max_iter=500))]).fit(X, y)
    root = tmp_path / "registry"
    with pytest.raises(RuntimeCheckError) as raised:
        modelops.register(model, X, y, name="clipped", registry=str(root), alias="champion")
    message = str(raised.value)
    assert raised.value.missing_module == "house_steps"
    assert "needs module 'house_steps'" in message and "nothing was registered" in message
    assert "\n" not in message
    assert not (root / "models").exists() and not (root / "aliases").exists() and not (root / "history").exists()
    # the same model registers when the check is skipped
    manifest = modelops.register(model, X, y, name="clipped", registry=str(root), check=False)
    assert Registry(str(root)).list_versions("clipped") == [manifest.version]


def test_a_model_the_runtime_serves_is_registered(tmp_path):
    model, X, y = user_models.multiclass_model()
    manifest = modelops.register(model, X, y, name="species", registry=str(tmp_path))
    assert Registry(str(tmp_path)).resolve_version("species", manifest.version) == manifest.version


def test_the_check_scores_the_golden_set_through_the_predict_api(tmp_path):
    model, X, y = user_models.multiclass_model()
    registry = Registry(str(tmp_path / "reg"))
    manifest = modelops.register(model, X, y, name="species", registry=registry, check=False)
    artifact = tmp_path / "artifact"
    registry.download("species", manifest.version, artifact)
    assert check_serves(artifact) == manifest.golden["rows"]
    # a golden answer the model does not give is reported, in one line
    import json

    golden = json.loads((artifact / "golden.json").read_text())
    golden["predictions"][0] = "not-a-species"
    from modelops.model.artifact import sha256_bytes

    body = json.dumps(golden).encode()
    (artifact / "golden.json").write_bytes(body)
    stored = json.loads((artifact / "manifest.json").read_text())
    stored["golden"]["sha256"] = sha256_bytes(body)
    (artifact / "manifest.json").write_text(json.dumps(stored))
    with pytest.raises(RuntimeCheckError, match="answers its golden set differently in the runtime: row 0"):
        check_serves(artifact, "model species")


def test_the_clean_interpreter_sees_the_layers_packages_only():
    python, paths = runtime_environment()
    assert python == sys.executable and len(paths) == 1
    view = Path(paths[0])
    names = {p.name for p in view.iterdir()}
    for present in ("sklearn", "numpy", "scipy", "joblib", "orjson", "aws_lambda_powertools", "boto3", "modelops"):
        assert present in names, present
    for absent in ("pytest", "moto", "matplotlib", "user_models"):
        assert absent not in names, absent
    # pandas is there exactly when a layer ships it
    assert ("pandas" in names) == ("pandas" in pinned_versions())
    assert (view / "modelops").resolve() == Path(modelops.__file__).resolve().parent


def test_built_layers_can_be_named(monkeypatch, tmp_path):
    monkeypatch.setenv(LAYER_PATH_ENV, str(tmp_path / "missing"))
    with pytest.raises(ModelOpsError, match="is not a directory"):
        runtime_environment()
    monkeypatch.setenv(LAYER_PATH_ENV, str(tmp_path))
    assert runtime_environment()[1] == [str(tmp_path)]


def test_a_model_saved_by_another_scikit_learn_than_the_layers_pin_is_refused(tmp_path, monkeypatch):
    from modelops.model import runtimecheck

    monkeypatch.setattr(runtimecheck, "pinned_versions", lambda: {"scikit-learn": "1.2.2"})
    model, X, y = user_models.multiclass_model()
    with pytest.raises(RuntimeCheckError, match=r"the runtime's layers pin scikit-learn 1\.2\.2"):
        modelops.register(model, X, y, name="species", registry=str(tmp_path))
    assert Registry(str(tmp_path)).list_models() == []
