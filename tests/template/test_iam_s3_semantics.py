"""Each function's S3 calls, made by its real code under its own IAM policy from the translated template.

moto enforces no IAM and answers a missing key with 404 to anyone; iam_enforcement.py makes a moto client evaluate
every call against the role's statements and the bucket policy first, and answer a missing key with 403 where S3
would (no s3:ListBucket for it). Existence checks (upstream marker, manifest, previous date, registry aliases, the
retrain lock) must read as "not there", not "access denied", under both readings of that rule (`key_as_prefix`).
"""

from __future__ import annotations

import boto3
import pytest
from modelops.batch.config import BatchConfig
from modelops.batch.run import BatchRunner
from modelops.batch.store import Store
from modelops.capture.feedback import FeedbackStore
from modelops.core.errors import ModelOpsError
from modelops.model.dataset import load_builtin
from modelops.registry import CANDIDATE, CHAMPION, Registry
from modelops.retrain.lock import RetrainLock
from modelops.retrain.run import RetrainConfig, Retrainer
from modelops.rollout import hook
from modelops.rollout.deploy import PinNames
from support.batch import BUCKET, DATE, csv_bytes, features_and_rows, put_input, register_champion
from support.iam import Policy, enforce, role_policy
from support.lifecycle import Clock, FakeDeployer, ListLabelled
from support.paths import ROOT

from devtools.lifecycle_sim import labelled_traffic
from devtools.template import LocalContext

TEMPLATE = ROOT / "template.yaml"
MODEL = "breast-cancer"


@pytest.fixture(params=[False, True], ids=["listbucket-without-prefix", "listbucket-with-key-as-prefix"])
def key_as_prefix(request):
    return request.param


@pytest.fixture
def under(translated, s3, key_as_prefix):
    """under("BatchFunctionRole") -> an S3 client that answers as S3 would to that role."""
    context = LocalContext(
        stack_name="modelops-dev",
        resources={"ModelBucket": BUCKET},
        parameters={"ModelVersion": PinNames("modelops-dev", MODEL).champion},
    )

    def make(role: str) -> tuple[object, Policy]:
        policy = role_policy(translated, role, TEMPLATE, context, key_as_prefix=key_as_prefix)
        return enforce(boto3.client("s3", region_name="us-east-1"), policy, s3), policy

    return make


def batch_runner(client, **overrides) -> BatchRunner:
    env = {
        "MODELOPS_DATA_BUCKET": BUCKET,
        "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
        "MODELOPS_MODEL_NAME": MODEL,
        "MODELOPS_BATCH_UPSTREAM_MARKER": "{date}/_SUCCESS",
    }
    return BatchRunner(BatchConfig.from_env(env, **overrides), store=Store(BUCKET, s3=client))


def test_batch_waits_for_a_missing_marker_and_previous_run_then_scores(under, s3, registry, classifier_dir):
    register_champion(registry, classifier_dir)
    names, X = features_and_rows(50)
    put_input(s3, "part-0.csv", csv_bytes(names, X))
    client, policy = under("BatchFunctionRole")
    waiting = batch_runner(client, require_previous=True).prepare(DATE)
    assert waiting["status"] == "waiting", policy.denied
    assert len(waiting["waiting_for"]) == 2  # the marker and the previous day's manifest, both simply absent
    put_input(s3, "_SUCCESS", b"")
    done = batch_runner(client).run(DATE)  # the manifest check, planning, scoring and the commit
    assert done["status"] == "succeeded" and done["manifest"]["rows"]["scored"] == 50
    assert batch_runner(client).prepare(DATE)["status"] == "skipped"


def test_batch_fan_out_steps_run_under_the_worker_role(under, s3, registry, classifier_dir):
    register_champion(registry, classifier_dir)
    names, X = features_and_rows(40)
    put_input(s3, "part-0.csv", csv_bytes(names, X))
    put_input(s3, "_SUCCESS", b"")
    planner, _ = under("BatchFunctionRole")
    prepared = batch_runner(planner, inline_max_bytes=1).prepare(DATE)
    assert prepared["mode"] == "fanout"
    worker, policy = under("BatchWorkerFunctionRole")
    runner = batch_runner(worker, inline_max_bytes=1)
    for part in runner.parts(prepared["run"]):
        runner.score_part(prepared["run"], part)
    assert runner.commit(prepared["run"])["rows"]["scored"] == 40, policy.denied


def test_batch_lease_calls_run_under_both_batch_roles(under, s3, registry, classifier_dir):
    """The date's lease: created with If-None-Match, renewed, taken over and released with If-Match, read back
    (a missing lease reads as none, not as access denied), by the planner's role and the worker's role."""
    register_champion(registry, classifier_dir)
    names, X = features_and_rows(40)
    put_input(s3, "part-0.csv", csv_bytes(names, X))
    put_input(s3, "_SUCCESS", b"")
    planner_client, planner_policy = under("BatchFunctionRole")
    worker_client, worker_policy = under("BatchWorkerFunctionRole")
    planner = batch_runner(planner_client, inline_max_bytes=1, lease_seconds=60)
    clock = [1_800_000_000.0]
    planner.clock = lambda: clock[0]
    first = planner.prepare(DATE)  # If-None-Match: the lease does not exist yet
    assert first["status"] == "ready", planner_policy.denied
    assert planner.prepare(DATE)["status"] == "waiting", planner_policy.denied  # read back: held
    clock[0] += 61
    taken = planner.prepare(DATE)  # If-Match on the expired lease's ETag
    assert taken["status"] == "ready", planner_policy.denied
    worker = batch_runner(worker_client, inline_max_bytes=1, lease_seconds=60)
    worker.clock = planner.clock
    with pytest.raises(ModelOpsError, match="lost its lease"):
        worker.score_part(first["run"], worker.parts(first["run"])[0])
    assert not worker.release(first["run"])
    for part in worker.parts(taken["run"]):
        worker.score_part(taken["run"], part)  # renewals under the worker role
    assert worker.commit(taken["run"])["attempt"] == taken["run"]["attempt"], worker_policy.denied
    assert planner.lease(DATE).read()[0]["released_by"] == taken["run"]["attempt"]


def test_monitor_reads_a_registry_without_a_champion_as_no_champion(under):
    client, policy = under("MonitorFunctionRole")
    registry = Registry(f"s3://{BUCKET}/registry", s3=client)
    assert registry.get_alias(MODEL, CHAMPION).version is None, policy.denied
    assert FeedbackStore(BUCKET, "data", client).read() == []


def test_retrain_takes_a_lock_that_does_not_exist_yet_and_registers(under, registry, classifier_dir):
    champion = register_champion(registry, classifier_dir)
    client, policy = under("RetrainFunctionRole")
    own = Registry(f"s3://{BUCKET}/registry", s3=client)
    lock = RetrainLock.for_registry(own, MODEL)
    assert lock.read() == ({}, None), policy.denied
    estimator = registry.load(MODEL, champion).estimator
    records = labelled_traffic(load_builtin("breast_cancer"), estimator, champion, 300, 1.3, 1_800_000_000.0)
    result = Retrainer(
        own,
        MODEL,
        labelled=ListLabelled(records),
        deployer=FakeDeployer(),
        config=RetrainConfig(margin=0.0),
        clock=Clock(1_800_000_000.0 + 300 * 60 + 60),
    ).run({"type": "test"})
    assert result.outcome in ("promoted", "rejected"), (result.reason, policy.denied)
    assert not lock.status()["locked"]


def test_hook_reads_missing_aliases_as_unset(under, registry, classifier_dir):
    version = registry.register(classifier_dir).version
    client, policy = under("PreTrafficHookFunctionRole")
    own = Registry(f"s3://{BUCKET}/registry", s3=client)
    allowed = hook.registry_allowed_models(own, MODEL)
    assert allowed() == set(), policy.denied  # neither alias exists yet
    registry.set_alias(MODEL, CHAMPION, version)
    assert allowed() == {version}
    golden, classes = hook.registry_golden_loader(own, MODEL)(version)
    assert golden["instances"] and classes
    assert own.get_alias(MODEL, CANDIDATE).version is None


def test_predict_and_feedback_read_only_their_model(under, registry, classifier_dir, tmp_path):
    from modelops.serving.model_holder import RegistrySource

    version = registry.register(classifier_dir).version
    client, policy = under("PredictFunctionRole")
    loaded = RegistrySource(f"s3://{BUCKET}/registry", MODEL, version, tmp_path, s3=client).load()
    assert loaded.manifest.version == version, policy.denied
    with pytest.raises(ModelOpsError, match="access denied"):  # nothing outside its model's prefix
        Registry(f"s3://{BUCKET}/registry", s3=client).get_alias(MODEL, CHAMPION)
    feedback_client, feedback_policy = under("FeedbackFunctionRole")
    assert Registry(f"s3://{BUCKET}/registry", s3=feedback_client).manifest(MODEL, version).classes
    FeedbackStore(BUCKET, "data", feedback_client).append("benign", request_id="r1")
    assert feedback_policy.denied == []


def test_the_enforcement_refuses_what_the_policy_does_not_grant(under, s3):
    """The helper itself: a 403 for a key outside the role's prefixes, and S3's 403 for a missing key without
    s3:ListBucket."""
    client, policy = under("FeedbackFunctionRole")
    s3.put_object(Bucket=BUCKET, Key="batch/input/x.csv", Body=b"x")
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.get_object(Bucket=BUCKET, Key="batch/input/x.csv")
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.get_object(Bucket=BUCKET, Key="registry/models/breast-cancer/nope/manifest.json")
    assert len(policy.denied) == 2 and "no s3:ListBucket" in policy.denied[1]
