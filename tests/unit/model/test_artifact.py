import json

import numpy as np
import pytest
from modelops.core.errors import ArtifactIntegrityError, VersionSkewError
from modelops.model import artifact
from modelops.model.artifact import MANIFEST_FILE, MODEL_FILE, load_from_dir


def test_classifier_manifest_records_everything(classifier_dir):
    m = json.loads((classifier_dir / MANIFEST_FILE).read_text())
    assert m["name"] == "breast-cancer" and m["task"] == "classification"
    assert m["classes"] == ["benign", "malignant"]
    assert m["estimator"] == "LogisticRegression"
    assert len(m["features"]) == 30 and m["features"][0] == {
        "name": "mean_radius",
        "dtype": "number",
        "nullable": False,
        "min": m["features"][0]["min"],
        "max": m["features"][0]["max"],
    }
    assert m["features"][0]["min"] < m["features"][0]["max"]
    assert m["target"] == "diagnosis"
    assert 0.9 < m["metrics"]["accuracy"] <= 1.0 and 0.9 < m["metrics"]["roc_auc"] <= 1.0
    assert m["training_data"]["uri"] == "sklearn:breast_cancer" and len(m["training_data"]["sha256"]) == 64
    assert m["artifact"]["sha256"] == artifact.sha256_bytes((classifier_dir / MODEL_FILE).read_bytes())
    assert set(m["runtime"]) == {"python", "scikit_learn", "numpy", "joblib"}
    base = m["baseline"]["mean_radius"]
    assert base["kind"] == "numeric" and len(base["counts"]) == len(base["edges"]) + 1
    assert sum(base["counts"]) == m["training_data"]["rows"] - m["metrics"]["rows"]
    assert m["golden"]["rows"] == 20


def test_version_ids_are_unique_and_sortable():
    from datetime import UTC, datetime, timedelta

    from modelops.model.versioning import is_version, new_version

    t = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_version(t + timedelta(seconds=i)) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5 and all(is_version(i) for i in ids)
    assert new_version(t) != new_version(t)


def test_load_round_trip_predicts_like_the_original(classifier_dir):
    loaded = load_from_dir(classifier_dir)
    golden = loaded.golden
    names = loaded.manifest.schema.names
    X = np.array([[row[n] for n in names] for row in golden["instances"]])
    assert list(loaded.estimator.predict(X)) == golden["predictions"]
    np.testing.assert_allclose(loaded.estimator.predict_proba(X), golden["probabilities"], atol=1e-9)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_tampered_or_truncated_model_is_refused_before_unpickling(classifier_dir, copy_dir, monkeypatch, damage):
    d = copy_dir(classifier_dir)
    data = (d / MODEL_FILE).read_bytes()
    damaged = {
        "flip": data[:100] + bytes([data[100] ^ 1]) + data[101:],
        "truncate": data[: len(data) // 2],
        "empty": b"",
    }[damage]
    (d / MODEL_FILE).write_bytes(damaged)
    import joblib

    def must_not_run(*a, **k):
        raise AssertionError("joblib.load was called on an unverified artifact")

    monkeypatch.setattr(joblib, "load", must_not_run)
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        load_from_dir(d)


def test_version_skew_is_refused_naming_both_versions(classifier_dir, copy_dir, monkeypatch):
    d = copy_dir(classifier_dir)
    m = json.loads((d / MANIFEST_FILE).read_text())
    m["runtime"]["scikit_learn"] = "1.2.2"
    (d / MANIFEST_FILE).write_text(json.dumps(m))
    import joblib

    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled a skewed model"))
    import sklearn

    with pytest.raises(VersionSkewError) as err:
        load_from_dir(d)
    assert "1.2.2" in str(err.value) and sklearn.__version__ in str(err.value)


def test_same_major_minor_loads(classifier_dir, copy_dir):
    d = copy_dir(classifier_dir)
    m = json.loads((d / MANIFEST_FILE).read_text())
    mm = ".".join(m["runtime"]["scikit_learn"].split(".")[:2])
    m["runtime"]["scikit_learn"] = mm + ".99"
    (d / MANIFEST_FILE).write_text(json.dumps(m))
    assert load_from_dir(d).manifest.runtime["scikit_learn"] == mm + ".99"


def test_malicious_pickle_never_runs(tmp_path, classifier_dir, copy_dir):
    """A pickle whose loading would create a file: with a wrong checksum it must never be unpickled."""
    import pickle

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    d = copy_dir(classifier_dir)
    (d / MODEL_FILE).write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ArtifactIntegrityError):
        load_from_dir(d)
    assert not marker.exists()


def test_incomplete_directory_is_a_clear_error(tmp_path):
    from modelops.core.errors import ModelOpsError

    with pytest.raises(ModelOpsError, match="manifest.json is missing"):
        load_from_dir(tmp_path)
