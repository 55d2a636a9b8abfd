"""SnapStart runtime hooks of the predict function (modelops.serving.snapstart).

The Lambda Python runtime provides `snapshot_restore_py` and calls the registered hooks itself; here a fake
module stands in for it (injected in sys.modules before the handler is imported), and the tests call the
hooks the way the runtime would: before-snapshot hooks in reverse order of registration, after-restore hooks
in order. A restore is simulated by putting back the random generators' state taken "at the snapshot".
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import types
import uuid

import boto3
import numpy as np
import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from modelops.serving import snapstart
from support.api import invoke, proxy_event
from support.handlers import load_handler


class FakeHooks(types.ModuleType):
    """Stands in for the runtime's snapshot_restore_py: records what is registered."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list = []
        self.after: list = []

    def register_before_snapshot(self, func, *args, **kwargs):
        self.before.append((func, args, kwargs))
        return func

    def register_after_restore(self, func, *args, **kwargs):
        self.after.append((func, args, kwargs))
        return func

    def snapshot(self) -> list:
        return [func(*args, **kwargs) for func, args, kwargs in reversed(self.before)]

    def restore(self) -> list:
        return [func(*args, **kwargs) for func, args, kwargs in self.after]


def _fresh_app():
    """Import functions/predict/app.py anew (as the runtime does at init), under a module name of its own."""
    return load_handler("predict", module_name=f"modelops_predict_app_snapstart_{uuid.uuid4().hex}")


@pytest.fixture
def hooks(monkeypatch):
    fake = FakeHooks()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    return fake


@pytest.fixture
def serving_env(monkeypatch, classifier_dir):
    for var in ("MODELOPS_MODEL_NAME", "MODELOPS_MODEL_VERSION", "MODELOPS_CHALLENGER_VERSION", "MODELOPS_CORS_ORIGIN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELOPS_MODEL_DIR", str(classifier_dir))
    monkeypatch.setenv("MODELOPS_CAPTURE", "on")
    monkeypatch.delenv("MODELOPS_LABEL_TOKEN_SECRET", raising=False)
    DEFAULT_PROVIDERS.clear()
    yield
    DEFAULT_PROVIDERS.clear()


def _golden_body(classifier_dir):
    return {"instances": json.loads((classifier_dir / "golden.json").read_text())["instances"][:1]}


def _traffic_lines(text: str) -> list[dict]:
    """The EMF metrics and capture records among stdout lines."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and ("_aws" in record or record.get("capture") is True):
            records.append(record)
    return records


def test_the_handler_registers_one_hook_of_each_kind(hooks, serving_env):
    _fresh_app()
    assert len(hooks.before) == 1 and len(hooks.after) == 1


def test_before_snapshot_predicts_once_through_the_handler_without_a_metrics_or_capture_line(
    hooks, serving_env, classifier_dir, monkeypatch, capsys
):
    app = _fresh_app()
    model = app.gateway.holder.model
    assert model is not None
    calls = []
    # the final step: the serving fast path calls the pipeline's steps itself (idle imputers skipped)
    final = model.estimator.steps[-1][1] if hasattr(model.estimator, "steps") else model.estimator
    original = final.predict_proba

    def spy(X):
        calls.append(len(X))
        return original(X)

    monkeypatch.setattr(final, "predict_proba", spy)
    capsys.readouterr()

    assert hooks.snapshot() == [200]
    assert calls == [1]  # one prediction on one row, through the real estimator
    assert _traffic_lines(capsys.readouterr().out) == []  # nothing counted as a request, nothing captured
    assert app.gateway._resolver is not None  # the Powertools routes were built before the snapshot too

    # a real request afterwards does write both lines, so the check above can fail
    status, _, _ = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 200 and calls == [1, 1]
    lines = _traffic_lines(capsys.readouterr().out)
    assert {("_aws" in r, r.get("capture") is True) for r in lines} == {(True, False), (False, True)}


def test_before_snapshot_fetches_no_secret_into_the_snapshot(hooks, serving_env, monkeypatch):
    monkeypatch.setenv("MODELOPS_LABEL_TOKEN_SECRET", "modelops/label-token")
    app = _fresh_app()
    label_secret = app.gateway.label_secret
    assert hooks.snapshot() == [200]
    assert "secrets" not in DEFAULT_PROVIDERS  # no Secrets Manager provider (client, cached value) was built
    assert app.gateway.label_secret is label_secret  # what the warm-up swapped is back


def test_after_restore_rebuilds_the_secrets_client_and_drops_the_cached_secret(
    hooks, serving_env, classifier_dir, monkeypatch, moto_aws
):
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="modelops/label-token", SecretString="first-secret")
    monkeypatch.setenv("MODELOPS_LABEL_TOKEN_SECRET", "modelops/label-token")
    app = _fresh_app()
    hooks.snapshot()
    status, _, body = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 200 and body["label_token"]
    provider = DEFAULT_PROVIDERS["secrets"]
    old_client = provider.client
    boto3.setup_default_session()
    old_session = boto3.DEFAULT_SESSION
    sm.put_secret_value(SecretId="modelops/label-token", SecretString="rotated-secret")
    assert app.gateway.label_secret() == b"first-secret"  # cached for an hour without a restore

    hooks.restore()

    assert "secrets" not in DEFAULT_PROVIDERS
    assert boto3.DEFAULT_SESSION is None and old_session is not None
    assert app.gateway.label_secret() == b"rotated-secret"  # read again, with a new client
    assert DEFAULT_PROVIDERS["secrets"] is not provider
    assert DEFAULT_PROVIDERS["secrets"].client is not old_client


def test_after_restore_reseeds_the_random_generators(hooks, serving_env):
    _fresh_app()
    hooks.snapshot()
    at_snapshot = random.getstate(), np.random.get_state()

    def restored_copy():
        random.setstate(at_snapshot[0])
        np.random.set_state(at_snapshot[1])
        hooks.restore()
        return random.getrandbits(64), int(np.random.randint(0, 2**62))

    first, second = restored_copy(), restored_copy()
    assert first[0] != second[0] and first[1] != second[1]

    # without the hook, two copies of one snapshot draw the same numbers (what the test above rules out)
    random.setstate(at_snapshot[0])
    np.random.set_state(at_snapshot[1])
    same = random.getrandbits(64)
    random.setstate(at_snapshot[0])
    assert random.getrandbits(64) == same


def test_after_restore_rebuilds_the_ab_flag_store_and_its_client(hooks, serving_env):
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore
    from modelops.experiments.assignment import Experiment

    app = _fresh_app()
    store = AppConfigStore(environment="live", application="modelops", name="ab", max_age=30)
    app.gateway.experiment = Experiment(store, "1", "2")
    old_client = store._conf_store.client

    hooks.restore()

    fresh = app.gateway.experiment.flags.store
    assert isinstance(fresh, AppConfigStore) and fresh is not store
    assert (fresh.environment, fresh.application, fresh.name, fresh.cache_seconds) == ("live", "modelops", "ab", 30)
    assert fresh._conf_store.client is not old_client
    assert app.gateway.experiment.salt == "2"  # the assignment salt is the challenger version, not random


def test_a_snapshot_without_its_model_loads_it_on_the_first_request_after_restore(
    hooks, serving_env, classifier_dir, tmp_path, monkeypatch
):
    missing = tmp_path / "model"
    monkeypatch.setenv("MODELOPS_MODEL_DIR", str(missing))
    monkeypatch.setenv("MODELOPS_LOAD_RETRY_SECONDS", "3600")
    app = _fresh_app()
    assert hooks.snapshot() == [None]  # no model: the publish goes on, the error is logged
    shutil.copytree(classifier_dir, missing)
    status, _, _ = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 503  # within the retry pause, as before

    hooks.restore()  # the pause was timed on the machine that took the snapshot: forgotten

    status, _, _ = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 200


def test_without_the_hooks_module_the_handler_imports_and_serves_as_before(serving_env, classifier_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import snapshot_restore_py: ImportError
    assert snapstart.register(lambda: None) is False  # type: ignore[arg-type, return-value]
    app = _fresh_app()
    status, _, body = invoke(app, proxy_event("POST", "/predict", _golden_body(classifier_dir)))
    assert status == 200 and body["predictions"]
