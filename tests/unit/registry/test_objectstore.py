"""The object-store contract, run against both adapters: S3 (moto) and a local directory. Then the registry, the
retrain lock and a batch run on a local directory, with no AWS and no emulator."""

from __future__ import annotations

import threading

import pytest
from modelops.adapters.objectstore import INTERNAL, LocalObjectStore, S3ObjectStore, open_bucket, open_location
from modelops.core.errors import ConflictError, ModelOpsError, NotFoundError

BUCKET = "modelops-test"


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path):
    if request.param == "s3":
        return S3ObjectStore(BUCKET, request.getfixturevalue("s3"))
    root = tmp_path / "store"
    root.mkdir()
    return LocalObjectStore(root)


def test_put_get_head_and_missing_keys(store):
    etag = store.put("a/b.json", b'{"x": 1}', content_type="application/json")
    body, read_etag = store.get("a/b.json")
    assert body == b'{"x": 1}' and read_etag == etag
    head = store.head("a/b.json")
    assert head.size == 8 and head.etag == etag and store.exists("a/b.json")
    assert store.head("a/missing") is None and not store.exists("a/missing")
    with pytest.raises(NotFoundError):
        store.get("a/missing")


def test_conditional_writes(store):
    first = store.put("alias.json", b"1", if_none_match=True)
    with pytest.raises(ConflictError):
        store.put("alias.json", b"2", if_none_match=True)  # never overwritten
    second = store.put("alias.json", b"2", if_match=first)
    with pytest.raises(ConflictError):
        store.put("alias.json", b"3", if_match=first)  # the ETag read is stale
    assert store.get("alias.json") == (b"2", second)


def test_list_is_ordered_and_starts_after(store):
    for key in ("p/date=2026-01-02/b", "p/date=2026-01-01/a", "p/date=2026-01-03/c", "q/x"):
        store.put(key, key.encode())
    assert [o.key for o in store.list("p/")] == ["p/date=2026-01-01/a", "p/date=2026-01-02/b", "p/date=2026-01-03/c"]
    assert [o.key for o in store.list("p/", start_after="p/date=2026-01-01/~")] == [
        "p/date=2026-01-02/b",
        "p/date=2026-01-03/c",
    ]
    assert store.folders("p/") == ["date=2026-01-01", "date=2026-01-02", "date=2026-01-03"]
    assert list(store.list("nothing/")) == []


def test_ranges_are_read_from_the_object_as_planned(store):
    etag = store.put("in/data.csv", b"0123456789")
    with store.open_range("in/data.csv", etag, 3, 7) as body:
        assert body.read() == b"3456"
    with store.open_range("in/data.csv", etag, 8) as body:
        assert body.read() == b"89"
    store.put("in/data.csv", b"changed")
    with pytest.raises(ConflictError, match="changed after the run was planned"):
        store.open_range("in/data.csv", etag, 0).read()


def test_uploads_are_invisible_until_completed(store):
    upload = store.create_upload("out/big.csv", "text/csv")
    parts = [
        {"PartNumber": 1, "ETag": store.upload_part("out/big.csv", upload, 1, b"a" * (5 * 1024 * 1024))},
        {"PartNumber": 2, "ETag": store.upload_part("out/big.csv", upload, 2, b"tail")},
    ]
    assert store.head("out/big.csv") is None
    assert store.open_uploads("out/") == [("out/big.csv", upload)]
    store.complete_upload("out/big.csv", upload, parts)
    body, _ = store.get("out/big.csv")
    assert len(body) == 5 * 1024 * 1024 + 4 and body.endswith(b"tail")
    assert store.open_uploads("out/") == []
    aborted = store.create_upload("out/other.csv", "text/csv")
    store.upload_part("out/other.csv", aborted, 1, b"x")
    store.abort_upload("out/other.csv", aborted)
    assert store.open_uploads("out/") == [] and store.head("out/other.csv") is None


def test_delete(store):
    store.put("d/1", b"1")
    store.put("d/2", b"2")
    store.delete(["d/1", "d/2", "d/never-existed"])
    assert list(store.list("d/")) == []


def test_local_keys_stay_inside_the_directory(tmp_path):
    store = LocalObjectStore(tmp_path)
    for bad in ("../escape", "/abs", "a//b", "a/./b", f"{INTERNAL}/lock"):
        with pytest.raises(ModelOpsError, match="not a valid object key"):
            store.put(bad, b"x")
    store.put("ok", b"x")
    assert [o.key for o in store.list("")] == ["ok"]  # the store's own bookkeeping is never listed
    with pytest.raises(NotFoundError, match="does not exist"):
        LocalObjectStore(tmp_path / "absent").check()


def test_local_conditional_writes_are_atomic_across_threads(tmp_path):
    store = LocalObjectStore(tmp_path)
    barrier, won, lost = threading.Barrier(8), [], []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.put("lock.json", str(i).encode(), if_none_match=True)
            won.append(i)
        except ConflictError:
            lost.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7 and store.get("lock.json")[0] == str(won[0]).encode()


def test_locations_open_the_right_adapter(tmp_path, moto_aws):
    s3_store, prefix = open_location("s3://bucket/reg/istry")
    assert isinstance(s3_store, S3ObjectStore) and s3_store.bucket == "bucket" and prefix == "reg/istry"
    for location in (str(tmp_path), f"file://{tmp_path}", "./relative/dir"):
        local, prefix = open_location(location)
        assert isinstance(local, LocalObjectStore) and prefix == ""
    assert isinstance(open_bucket("my-bucket"), S3ObjectStore)
    assert isinstance(open_bucket(str(tmp_path)), LocalObjectStore)


def test_a_local_registry_without_aws(tmp_path, classifier_dir, classifier_v2_dir, monkeypatch):
    """No credentials, no endpoint: every registry operation works on a directory."""
    from modelops.registry import CHAMPION, Registry

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "registry").mkdir()
    registry = Registry(str(tmp_path / "registry"))
    v1 = registry.register(classifier_dir).version
    v2 = registry.register(classifier_v2_dir).version
    with pytest.raises(ConflictError, match="never overwritten"):
        registry.register(classifier_dir)
    registry.set_alias("breast-cancer", CHAMPION, v1)
    registry.set_alias("breast-cancer", CHAMPION, v2, expected=v1)
    with pytest.raises(ConflictError):
        registry.set_alias("breast-cancer", CHAMPION, v1, expected=v1)
    assert registry.list_models() == ["breast-cancer"] and registry.list_versions("breast-cancer") == sorted([v1, v2])
    assert registry.load("breast-cancer", CHAMPION).manifest.version == v2
    assert registry.rollback("breast-cancer", CHAMPION).version == v1
    events = [e["event"] for e in registry.history("breast-cancer")]
    assert events == ["registered", "registered", "alias_set", "alias_set", "rollback"]
    assert Registry(f"file://{tmp_path / 'registry'}").resolve("breast-cancer", CHAMPION) == v1


def test_a_batch_run_on_local_directories(tmp_path, classifier_dir, monkeypatch):
    from modelops.batch.config import BatchConfig
    from modelops.batch.run import BatchRunner
    from modelops.registry import CHAMPION, Registry
    from support.batch import csv_bytes, features_and_rows

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "registry").mkdir()
    registry = Registry(str(tmp_path / "registry"))
    version = registry.register(classifier_dir).version
    registry.set_alias("breast-cancer", CHAMPION, version)
    data = tmp_path / "data"
    names, X = features_and_rows(300)
    (data / "batch" / "input" / "2026-03-14").mkdir(parents=True)
    (data / "batch" / "input" / "2026-03-14" / "part-0.csv").write_bytes(csv_bytes(names, X))
    env = {"MODELOPS_DATA_BUCKET": str(data), "MODELOPS_REGISTRY": str(tmp_path / "registry")}
    config = BatchConfig.from_env({**env, "MODELOPS_MODEL_NAME": "breast-cancer", "MODELOPS_BATCH_UPSTREAM_MARKER": ""})
    result = BatchRunner(config, **{}).run("2026-03-14")
    assert result["status"] == "succeeded" and result["manifest"]["rows"]["scored"] == 300
    outputs = sorted(p.name for p in (data / "batch" / "output" / "2026-03-14" / "predictions").iterdir())
    assert outputs == ["part-00000.csv"]
    lines = (data / "batch" / "output" / "2026-03-14" / "predictions" / "part-00000.csv").read_text().splitlines()
    assert len(lines) == 301 and lines[0].startswith("id,prediction")
    assert BatchRunner(config).run("2026-03-14")["status"] == "skipped"
