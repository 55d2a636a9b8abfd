"""Retrain floors belong to a task: the template's default accuracy floor (RetrainMinAccuracy "0.85") must not
reject every regression retrain, and an MAE ceiling never applies to a classifier. The retrain runs on moto S3
with the fake deployer of lifecycle_fakes (moto's CodeDeploy runs no deployments)."""

from __future__ import annotations

import numpy as np
import pytest
from modelops.capture.labelled import LabelledRow
from modelops.model.dataset import load_builtin
from modelops.model.trusted import rows_csv
from modelops.registry import CHAMPION
from modelops.retrain.decision import floors_for
from modelops.retrain.run import Retrainer
from modelops.wiring import retrain as lifecycle
from support.lifecycle import NOW, Clock, FakeDeployer, ListLabelled, Notes

from devtools import diagram


def template_retrain_env() -> dict[str, str]:
    """The retrain function's MODELOPS_RETRAIN_* variables as a stack with default parameters sets them."""
    template = diagram.load_template(diagram.TEMPLATE)
    params = template["Parameters"]
    variables = template["Resources"]["RetrainFunction"]["Properties"]["Environment"]["Variables"]
    env = {}
    for name, value in variables.items():
        if not name.startswith("MODELOPS_RETRAIN_") or name == "MODELOPS_RETRAIN_TOPIC":
            continue
        ref = value.get("Ref") if isinstance(value, dict) else None
        env[name] = str(params[ref]["Default"]) if ref else str(value)
    return env


def test_the_template_default_sets_an_accuracy_floor_and_no_mae_ceiling():
    env = template_retrain_env()
    assert env["MODELOPS_RETRAIN_MIN_ACCURACY"] == "0.85" and env["MODELOPS_RETRAIN_MAX_MAE"] == ""
    floors = lifecycle.config_from_env(env).floors
    assert floors == {"accuracy": 0.85}
    assert floors_for("regression", floors) == {}
    assert floors_for("classification", floors) == {"accuracy": 0.85}


def test_each_floor_applies_to_its_own_task_only():
    floors = {"accuracy": 0.9, "roc_auc": 0.8, "mae": 40.0, "rmse": 50.0, "custom": 1.0}
    assert floors_for("classification", floors) == {"accuracy": 0.9, "roc_auc": 0.8, "custom": 1.0}
    assert floors_for("regression", floors) == {"mae": 40.0, "rmse": 50.0, "custom": 1.0}


def regression_traffic(champion, n: int = 300) -> list[LabelledRow]:
    """Served diabetes predictions whose true values moved up: a retrained model wins on MAE."""
    data = load_builtin("diabetes")
    rng = np.random.default_rng(3)
    pick = rng.integers(0, data.rows, size=n)
    X, y = data.X[pick], data.y[pick].astype(float) * 1.4 + 30
    predictions = champion.estimator.predict(X)
    start = NOW - n * 60 - 10
    return [
        LabelledRow(
            request_id=f"reg-{i}",
            row=0,
            at=start + i * 60,
            variant="A",
            model_version=champion.manifest.version,
            prediction=float(predictions[i]),
            score=None,
            actual=float(y[i]),
            feedback_at=start + i * 60 + 30,
            features=dict(zip(data.feature_names, X[i].tolist(), strict=True)),
            writer=f"lab-{i % 3}",
        )
        for i in range(n)
    ]


@pytest.fixture
def trusted_uri(tmp_path):
    """Curated rows of the moved world (values confirmed by the data owners)."""
    data = load_builtin("diabetes")
    pick = np.random.default_rng(5).integers(0, data.rows, size=150)
    body = rows_csv(data.feature_names, data.dtypes, data.X[pick], data.y[pick].astype(float) * 1.4 + 30, data.target)
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "moved.csv").write_bytes(body)
    return str(tmp_path / "trusted")


@pytest.fixture
def regression_champion(registry, regressor_dir):
    manifest = registry.register(regressor_dir)
    registry.set_alias(manifest.name, CHAMPION, manifest.version)
    return registry.load(manifest.name, manifest.version)


def test_a_regression_retrain_with_the_template_defaults_can_promote(registry, regression_champion, trusted_uri):
    deployer = FakeDeployer()
    retrainer = Retrainer(
        registry,
        "diabetes",
        labelled=ListLabelled(regression_traffic(regression_champion)),
        deployer=deployer,
        notifier=Notes(),
        config=lifecycle.config_from_env({**template_retrain_env(), "MODELOPS_RETRAIN_TRUSTED_URI": trusted_uri}),
        clock=Clock(),
    )
    result = retrainer.run({"type": "manual", "by": "test"})
    assert result.outcome == "promoted", result.reason
    assert "floors" not in result.reason and result.metrics["metric"] == "mae"
    assert result.metrics["candidate"]["mae"] < result.metrics["champion"]["mae"]
    assert deployer.started == [result.candidate]


def test_an_mae_ceiling_still_rejects_a_regressor(registry, regression_champion, trusted_uri):
    env = {**template_retrain_env(), "MODELOPS_RETRAIN_MAX_MAE": "1", "MODELOPS_RETRAIN_TRUSTED_URI": trusted_uri}
    result = Retrainer(
        registry,
        "diabetes",
        labelled=ListLabelled(regression_traffic(regression_champion)),
        deployer=FakeDeployer(),
        notifier=Notes(),
        config=lifecycle.config_from_env(env),
        clock=Clock(),
    ).run({"type": "manual", "by": "test"})
    assert result.outcome == "rejected" and "mae" in result.reason and "above the limit 1.0" in result.reason
    assert "accuracy" not in result.reason
