"""Sticky A/B assignment through Powertools Feature Flags (flag document in a local file store;
in AWS the same document lives in AppConfig and is read by Powertools' AppConfigStore)."""

from __future__ import annotations

import json
import random

import pytest
from modelops.core.errors import InputError, ModelOpsError
from modelops.experiments import assignment as experiment


def make(tmp_path, percent: float, **kwargs) -> experiment.Experiment:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(experiment.flag_document(percent)))
    env = {
        "MODELOPS_CHALLENGER_VERSION": "v-b",
        "MODELOPS_MODEL_VERSION": "v-a",
        "MODELOPS_AB_CONFIG_FILE": str(path),
        **kwargs,
    }
    exp = experiment.Experiment.from_env(env)
    assert exp is not None
    return exp


def test_no_challenger_means_no_experiment():
    assert experiment.Experiment.from_env({"MODELOPS_MODEL_VERSION": "v-a"}) is None
    assert experiment.Experiment.from_env({"MODELOPS_MODEL_VERSION": "v-a", "MODELOPS_CHALLENGER_VERSION": " "}) is None


def test_same_id_always_gets_same_variant(tmp_path):
    exp = make(tmp_path, 50)
    ids = [f"user-{i}" for i in range(500)]
    first = [exp.variant_for(i) for i in ids]
    again = [exp.variant_for(i) for i in reversed(ids)][::-1]
    assert first == again
    # and across processes: the bucket is a pure function of (salt, id)
    assert experiment.entity_bucket("user-1", "v-b") == experiment.entity_bucket("user-1", "v-b")
    assert experiment.entity_bucket("user-1", "v-b") != experiment.entity_bucket("user-1", "v-c")
    assert {"A", "B"} == set(first)


@pytest.mark.parametrize("percent", [10.0, 50.0, 2.5])
def test_split_within_one_point_over_100k_ids(tmp_path, percent):
    exp = make(tmp_path, percent)
    n = 100_000
    in_b = sum(exp.variant_for(f"customer-{i:06d}") == "B" for i in range(n))
    assert abs(in_b / n * 100 - percent) <= 1.0, in_b / n


def test_requests_without_id_are_random_with_the_same_share(tmp_path):
    exp = make(tmp_path, 20)
    rng = random.Random(7)
    exp._rand = lambda: rng.getrandbits(64)
    n = 20_000
    share = sum(exp.assign({}, {}).variant == "B" for _ in range(n)) / n
    assert abs(share - 0.20) < 0.015


def test_assignment_reports_variant_and_version_from_header_or_field(tmp_path):
    exp = make(tmp_path, 100, MODELOPS_AB_ID_HEADER="X-Customer", MODELOPS_AB_ID_FIELD="customer")
    a = exp.assign({"x-customer": "c1"}, None)
    assert (a.variant, a.model_version, a.entity_id) == ("B", "v-b", "c1")
    assert exp.assign({}, {"customer": 42}).entity_id == "42"
    exp0 = make(tmp_path, 0)
    assert exp0.assign({"X-Entity-Id": "c1"}).model_version == "v-a"


def test_split_changes_without_new_experiment_object(tmp_path):
    exp = make(tmp_path, 0)
    assert exp.variant_for("u1") == "A"
    (tmp_path / "flags.json").write_text(json.dumps(experiment.flag_document(100)))
    import os

    st = os.stat(tmp_path / "flags.json")
    os.utime(tmp_path / "flags.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert exp.variant_for("u1") == "B"


def test_bad_entity_id_is_a_clear_input_error(tmp_path):
    exp = make(tmp_path, 50)
    with pytest.raises(InputError) as err:
        exp.assign({}, {"entity_id": {"nested": 1}})
    assert err.value.field == "entity_id"
    with pytest.raises(InputError):
        exp.assign({}, {"entity_id": "x" * 300})


def test_unreadable_flag_document_serves_champion(tmp_path):
    exp = make(tmp_path, 100)
    (tmp_path / "flags.json").write_text("{not json")
    import os

    st = os.stat(tmp_path / "flags.json")
    os.utime(tmp_path / "flags.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert exp.variant_for("u1") == "A"


def test_flag_document_roundtrip_and_validation():
    for p in (0, 0.5, 10, 33.3, 100):
        assert experiment.challenger_percent(experiment.flag_document(p)) == pytest.approx(p, abs=0.01)
    with pytest.raises(InputError):
        experiment.flag_document(120)
    from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

    SchemaValidator(experiment.flag_document(10)).validate()


def test_challenger_without_store_configuration_is_a_clear_error():
    with pytest.raises(ModelOpsError, match="MODELOPS_APPCONFIG_APPLICATION"):
        experiment.Experiment.from_env({"MODELOPS_CHALLENGER_VERSION": "v-b"})


def test_appconfig_store_is_used_in_aws():
    exp = experiment.Experiment.from_env(
        {
            "MODELOPS_CHALLENGER_VERSION": "v-b",
            "MODELOPS_MODEL_VERSION": "v-a",
            "MODELOPS_APPCONFIG_APPLICATION": "app",
            "MODELOPS_APPCONFIG_ENVIRONMENT": "live",
            "MODELOPS_APPCONFIG_PROFILE": "ab",
            "MODELOPS_AB_CACHE_SECONDS": "45",
        }
    )
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore

    assert isinstance(exp.flags.store, AppConfigStore)
    assert (exp.flags.store.application, exp.flags.store.environment, exp.flags.store.name) == ("app", "live", "ab")
    assert exp.flags.store.cache_seconds == 45
