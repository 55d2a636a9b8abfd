"""Retraining an imported model end to end (local-directory registry, the lock, history, a fake deployer): the train
stage refits sklearn.base.clone of the champion on its kept training sample plus recent labels; the comparison on
the recent holdout and every gate are the same as for a model `modelops train` made."""

from __future__ import annotations

import modelops
import numpy as np
import pytest
from modelops.capture.labelled import LabelledRow
from modelops.model.artifact import TRAINING_DATA_FILE
from modelops.model.signature import instances, model_input, to_matrix
from modelops.model.trusted import rows_csv
from modelops.registry import CANDIDATE, CHAMPION, PENDING, Registry
from modelops.retrain.run import RetrainConfig, Retrainer
from support import user_models
from support.lifecycle import NOW, Clock, FakeDeployer, ListLabelled, Notes

NAME = "titanic"


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(str(tmp_path / "registry"))


@pytest.fixture
def champion(registry):
    model, X, y = user_models.column_transformer_model()
    manifest = modelops.register(model, X, y, name=NAME, registry=registry, alias=CHAMPION, check=False)
    return registry.load(NAME, manifest.version)


def labelled(manifest, n: int, seed: int, shifted: bool) -> list[LabelledRow]:
    """n served requests joined to their labels; with shifted=True the world changed: fare now decides."""
    X = user_models.passengers(n, seed=seed)
    if shifted:
        score = (X["fare"] - 30) / 10 + np.random.default_rng(seed + 100).normal(0, 0.5, n)
        y = np.where(score > 0, "survived", "died")
    else:
        y = user_models.survived(X, seed=seed + 1).to_numpy()
    rows = instances(to_matrix(X, manifest.features), manifest.features)
    start = NOW - n * 60 - 10
    return [
        LabelledRow(
            request_id=f"r-{seed}-{i}",
            row=0,
            at=start + i * 60,
            variant="A",
            model_version=manifest.version,
            prediction=None,
            score=None,
            actual=y[i],
            feedback_at=start + i * 60 + 30,
            features=rows[i],
            writer=("key-a", "key-b", "key-c")[i % 3],
        )
        for i in range(n)
    ]


@pytest.fixture
def trusted_uri(tmp_path, champion):
    """Rows of the changed world whose labels the data owners confirmed: curated trusted rows."""
    m = champion.manifest
    X = user_models.passengers(150, seed=31)
    score = (X["fare"] - 30) / 10 + np.random.default_rng(131).normal(0, 0.5, 150)
    y = np.where(score > 0, "survived", "died")
    dtypes = [f["dtype"] for f in m.features]
    body = rows_csv([f["name"] for f in m.features], dtypes, to_matrix(X, m.features), y, m.target)
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "fare.csv").write_bytes(body)
    return str(tmp_path / "trusted")


def retrainer(registry, records, deployer=None, **config):
    return Retrainer(
        registry,
        NAME,
        labelled=ListLabelled(records),
        deployer=deployer or FakeDeployer(),
        notifier=Notes(),
        # these rows carry no served prediction, so the disagreement check has nothing to compare: off
        # and 150 curated rows cannot make a 4-point gain pass the sign test (p = 0.11; it has its own tests): off
        config=RetrainConfig(
            **{"margin": 0.01, "floors": {"accuracy": 0.6}, "max_disagreement_jump": 1.0, "significance": 1.0, **config}
        ),
        clock=Clock(),
    )


def test_imported_champion_is_refitted_and_a_better_candidate_rolls_out(registry, champion, trusted_uri):
    deployer = FakeDeployer()
    records = labelled(champion.manifest, 400, 11, shifted=True)
    result = retrainer(registry, records, deployer, trusted_uri=trusted_uri).run({"source": "test"})
    assert result.outcome == "promoted", result.reason
    assert deployer.started == [result.candidate]
    assert registry.resolve(NAME, CHAMPION) == champion.manifest.version
    assert registry.resolve(NAME, CANDIDATE) == result.candidate
    m = result.metrics
    assert m["candidate"]["rows"] == m["champion"]["rows"] == result.data["holdout_rows"] == 120
    assert m["candidate"]["accuracy"] >= m["champion"]["accuracy"] + 0.01
    key = registry.version_key(NAME, champion.manifest.version, TRAINING_DATA_FILE)
    assert result.data["original"] == {
        "uri": registry.store.uri(key),
        "sha256": champion.manifest.training_data["sha256"],
        "rows": 400,
    }
    # trained on the kept sample less its trusted fifth (80 rows) plus the recent labels outside the holdout (280)
    assert result.data["train_rows"] == 400 - 80 + 280
    assert result.data["trusted"]["rows"] == 80 + 150
    # the candidate is a refitted clone of the user's pipeline, described like the champion
    candidate = registry.load(NAME, result.candidate)
    assert type(candidate.estimator) is type(champion.estimator)
    assert [s for s, _ in candidate.estimator.steps] == [s for s, _ in champion.estimator.steps]
    assert candidate.estimator is not champion.estimator
    cm = candidate.manifest
    assert cm.recipe["source"] == "imported"
    assert cm.recipe["training_data"] == champion.manifest.recipe["training_data"]
    assert cm.input == champion.manifest.input
    assert [f["name"] for f in cm.features] == [f["name"] for f in champion.manifest.features]
    assert cm.training_data["parts"]["train_rows"] == 600
    assert cm.evaluation["sha256"] == champion.manifest.evaluation["sha256"]
    # its golden set replays exactly through its own schema
    matrix = cm.schema.matrix_from_instances(candidate.golden["instances"], max_rows=1000)
    X = model_input(cm.features, cm.input, matrix)
    assert candidate.estimator.predict(X).tolist() == candidate.golden["predictions"]
    decision = [e for e in registry.history(NAME) if e["event"] == "retrain_decision"][-1]
    assert decision["outcome"] == "promoted" and decision["candidate"] == result.candidate


def test_a_candidate_that_is_not_better_is_not_registered(registry, champion):
    deployer = FakeDeployer()
    # the trusted set is 80 rows, so one row is 0.0125 of accuracy: a margin under two rows would be noise
    records = labelled(champion.manifest, 400, 21, shifted=False)
    result = retrainer(registry, records, deployer, margin=0.03).run({"source": "test"})
    assert result.outcome == "rejected", result.reason
    assert "does not beat the champion by the margin" in result.reason
    assert deployer.started == [] and registry.list_versions(NAME) == [champion.manifest.version]


def test_floors_still_apply(registry, champion, trusted_uri):
    records = labelled(champion.manifest, 400, 11, shifted=True)
    result = retrainer(registry, records, floors={"accuracy": 0.99}, trusted_uri=trusted_uri).run({"source": "test"})
    assert result.outcome == "rejected" and "fails the floors" in result.reason


def test_changed_training_sample_stops_the_retrain_at_the_data_stage(registry, champion):
    key = registry.version_key(NAME, champion.manifest.version, TRAINING_DATA_FILE)
    body, _ = registry.store.get(key)
    registry.store.put(key, body.replace(b"survived", b"died", 5))
    result = retrainer(registry, labelled(champion.manifest, 400, 11, shifted=True)).run({"source": "test"})
    assert result.outcome == "failed" and result.stage == "data"
    assert "changed since" in result.reason and "refusing to retrain" in result.reason
    assert registry.resolve(NAME, CHAMPION) == champion.manifest.version


def test_imported_without_labels_retrains_on_recent_data_only(registry):
    model, X, _ = user_models.column_transformer_model()
    manifest = modelops.register(model, X, name=NAME, registry=registry, alias=CHAMPION, check=False)
    records = labelled(manifest, 400, 11, shifted=True)
    failed = retrainer(registry, records).run({"source": "test"})
    assert failed.outcome == "failed" and failed.stage == "data" and "no training data" in failed.reason
    deployer = FakeDeployer()
    result = retrainer(registry, records, deployer, include_original=False, cooldown_seconds=0).run({"source": "x"})
    # without labels there is no trusted set: the winner, judged on client labels only, waits for approval
    assert result.outcome == "pending", result.reason
    assert "no trusted evaluation set" in result.reason and deployer.started == []
    assert registry.resolve(NAME, PENDING) == result.candidate
    assert result.data["train_rows"] == 280
