"""Registry behaviour against moto S3 (which implements If-None-Match / If-Match conditional writes)."""

import threading

import numpy as np
import pytest
from modelops.core.errors import ConflictError, ModelOpsError, NotFoundError
from modelops.registry import Registry


def test_register_list_show_and_load_classifier(registry, classifier_dir):
    m = registry.register(classifier_dir)
    assert registry.list_models() == ["breast-cancer"]
    assert registry.list_versions("breast-cancer") == [m.version]
    assert registry.manifest("breast-cancer", m.version).artifact == m.artifact
    loaded = registry.load("breast-cancer", m.version)
    golden = loaded.golden
    X = np.array([[r[n] for n in loaded.manifest.schema.names] for r in golden["instances"]])
    assert list(loaded.estimator.predict(X)) == golden["predictions"]


def test_register_and_load_regressor(registry, regressor_dir):
    m = registry.register(regressor_dir)
    loaded = registry.load("diabetes", m.version)
    assert loaded.manifest.task == "regression" and loaded.manifest.classes is None
    golden = loaded.golden
    X = np.array([[r[n] for n in loaded.manifest.schema.names] for r in golden["instances"]])
    np.testing.assert_allclose(loaded.estimator.predict(X), golden["predictions"], rtol=1e-9)


def test_layout_in_s3(registry, s3, classifier_dir):
    m = registry.register(classifier_dir)
    registry.set_alias(m.name, "champion", m.version)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="modelops-test")["Contents"]}
    base = f"registry/models/breast-cancer/{m.version}/"
    assert {base + "model.joblib", base + "manifest.json", base + "golden.json"} <= keys
    assert "registry/aliases/breast-cancer/champion.json" in keys
    assert any(k.startswith("registry/history/breast-cancer/") for k in keys)


def test_a_registered_version_is_never_overwritten(registry, s3, classifier_dir):
    m = registry.register(classifier_dir)
    before = s3.get_object(Bucket="modelops-test", Key=f"registry/models/breast-cancer/{m.version}/model.joblib")[
        "ETag"
    ]
    with pytest.raises(ConflictError, match="already registered"):
        registry.register(classifier_dir)
    after = s3.get_object(Bucket="modelops-test", Key=f"registry/models/breast-cancer/{m.version}/model.joblib")["ETag"]
    assert before == after


def test_tampered_object_in_registry_is_refused(registry, s3, classifier_dir):
    from modelops.core.errors import ArtifactIntegrityError

    m = registry.register(classifier_dir)
    s3.put_object(Bucket="modelops-test", Key=f"registry/models/breast-cancer/{m.version}/model.joblib", Body=b"evil")
    with pytest.raises(ArtifactIntegrityError):
        registry.load("breast-cancer", m.version)


def test_alias_set_resolve_expected_value_and_history(registry, classifier_dir, classifier_v2_dir):
    v1 = registry.register(classifier_dir).version
    v2 = registry.register(classifier_v2_dir).version
    registry.set_alias("breast-cancer", "champion", v1, expected=None, reason="first", trigger="test")
    assert registry.resolve("breast-cancer", "champion") == v1
    with pytest.raises(ConflictError, match="not .* as expected"):
        registry.set_alias("breast-cancer", "champion", v2, expected=None)
    registry.set_alias("breast-cancer", "champion", v2, expected=v1, reason="better", trigger="test")
    assert registry.resolve("breast-cancer", "champion") == v2
    assert registry.manifest("breast-cancer", "champion").version == v2
    events = [e for e in registry.history("breast-cancer") if e["event"] == "alias_set"]
    assert [(e["from"], e["to"], e["reason"]) for e in events] == [(None, v1, "first"), (v1, v2, "better")]
    assert all(e["trigger"] == "test" and e["at"] for e in events)


def test_alias_to_unknown_version_is_refused(registry, classifier_dir):
    registry.register(classifier_dir)
    with pytest.raises(NotFoundError, match="not found"):
        registry.set_alias("breast-cancer", "champion", "20990101T000000Z-abcdef")


def test_concurrent_promotions_exactly_one_wins(registry, classifier_dir, classifier_v2_dir, s3):
    """Two writers read the same alias state, then both write: the S3 If-Match condition lets one through.

    moto checks the condition and stores the object without a lock, unlike S3, so the two PUTs are
    serialized here; both still carry the same (for one of them stale) ETag."""
    v1 = registry.register(classifier_dir).version
    v2 = registry.register(classifier_v2_dir).version
    registry.set_alias("breast-cancer", "champion", v1)
    barrier = threading.Barrier(2)
    original_get_alias = Registry.get_alias

    def synchronized_get_alias(self, name, alias):
        state = original_get_alias(self, name, alias)
        barrier.wait(timeout=10)  # both writers hold the same ETag before either writes
        return state

    results = []
    put_lock = threading.Lock()

    class SerializedPuts:
        def __getattr__(self, name):
            return getattr(s3, name)

        def put_object(self, **kwargs):
            with put_lock:
                return s3.put_object(**kwargs)

    def promote(target):
        try:
            Registry("s3://modelops-test/registry", s3=SerializedPuts()).set_alias(
                "breast-cancer", "champion", target, expected=v1
            )
            results.append(("won", target))
        except ConflictError:
            results.append(("lost", target))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Registry, "get_alias", synchronized_get_alias)
        threads = [threading.Thread(target=promote, args=(v,)) for v in (v1, v2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert sorted(r[0] for r in results) == ["lost", "won"]
    winner = next(v for r, v in results if r == "won")
    assert registry.resolve("breast-cancer", "champion") == winner


def test_rollback_returns_to_previous_version(registry, classifier_dir, classifier_v2_dir):
    v1 = registry.register(classifier_dir).version
    v2 = registry.register(classifier_v2_dir).version
    registry.set_alias("breast-cancer", "champion", v1)
    registry.set_alias("breast-cancer", "champion", v2)
    state = registry.rollback("breast-cancer", "champion", reason="bad canary")
    assert state.version == v1 and registry.resolve("breast-cancer", "champion") == v1
    assert registry.history("breast-cancer")[-1]["event"] == "rollback"
    with pytest.raises(ModelOpsError, match="no previous version"):
        registry.rollback("breast-cancer", "champion")


def test_unknown_model_version_and_alias(registry, classifier_dir):
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        registry.list_versions("nope")
    registry.register(classifier_dir)
    with pytest.raises(NotFoundError, match="version '20990101T000000Z-abcdef'"):
        registry.manifest("breast-cancer", "20990101T000000Z-abcdef")
    with pytest.raises(NotFoundError, match="no 'champion' alias"):
        registry.resolve("breast-cancer", "champion")


def test_missing_bucket_is_a_clear_error(s3):
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket' does not exist"):
        Registry("s3://no-such-bucket/x", s3=s3).check_bucket()
