"""The scheduled shadow test in template.yaml: off by default, a second schedule on the monitor function (no new
function) with the shadow event, the candidate from ShadowVersion or ChallengerVersion, and least privilege: the
one write is the shadow report prefix, only while the schedule is on. The IAM part runs the real shadow code on
moto S3 under the monitor role's translated policy (iam_enforcement.py evaluates each call as S3 would)."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from modelops.adapters.objectstore import open_location
from modelops.experiments import shadow
from modelops.registry import Registry
from samtranslator.yaml_helper import yaml_parse
from support import shadow_models
from support.aws import BUCKET
from support.context import LambdaContext
from support.handlers import load_handler
from support.iam import enforce, role_policy
from support.paths import ROOT
from support.shadow import DATA, MODEL, REGISTRY, serve_and_capture

from devtools.template import LocalContext

TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def raw():
    return yaml_parse(TEMPLATE.read_text())


def test_shadow_schedule_is_off_by_default_and_runs_the_monitor_function_with_the_shadow_event(raw, translated):
    params = raw["Parameters"]
    assert params["ShadowScheduleState"]["Default"] == "DISABLED"
    assert set(params["ShadowScheduleState"]["AllowedValues"]) == {"ENABLED", "DISABLED"}
    assert params["ShadowVersion"]["Default"] == ""
    monitor = raw["Resources"]["MonitorFunction"]["Properties"]
    event = monitor["Events"]["ShadowTest"]
    assert event["Type"] == "Schedule"
    assert event["Properties"]["State"] == {"Ref": "ShadowScheduleState"}
    assert event["Properties"]["Schedule"] == {"Ref": "ShadowSchedule"}
    assert json.loads(event["Properties"]["Input"]) == {"action": shadow.EVENT_ACTION}
    assert monitor["Environment"]["Variables"]["MODELOPS_SHADOW_VERSION"] == {
        "Fn::If": ["ShadowVersionGiven", {"Ref": "ShadowVersion"}, {"Ref": "ChallengerVersion"}]
    }
    assert raw["Conditions"]["ShadowOn"] == {"Fn::Equals": [{"Ref": "ShadowScheduleState"}, "ENABLED"]}
    # translated: an EventBridge rule whose state follows the parameter, targeting the monitor function
    rules = [r for r in translated.values() if r["Type"] == "AWS::Events::Rule"]
    shadow_rules = [r for r in rules if r["Properties"].get("State") == {"Ref": "ShadowScheduleState"}]
    assert len(shadow_rules) == 1
    (target,) = shadow_rules[0]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["MonitorFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"action": "shadow"}
    # the predict function gets nothing of it
    predict = json.dumps(raw["Resources"]["PredictFunction"])
    assert "Shadow" not in predict and "shadow" not in predict


def test_the_monitor_role_writes_only_shadow_reports_and_only_while_the_schedule_is_on(raw):
    statements = raw["Resources"]["MonitorFunction"]["Properties"]["Policies"][0]["Statement"]
    writes = [
        s
        for s in statements
        if isinstance(s, dict) and "Fn::If" in s and s["Fn::If"][1].get("Action") == "s3:PutObject"
    ]
    assert (
        len(writes) == 1 and writes[0]["Fn::If"][0] == "ShadowOn" and writes[0]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    )
    assert writes[0]["Fn::If"][1]["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/${DataPrefix}/shadow/${ModelName}/*"}


@pytest.fixture
def versions(registry):
    return shadow_models.register_pair(registry, MODEL)


def _under(translated, s3, state: str):
    context = LocalContext(
        stack_name="modelops-dev",
        resources={"ModelBucket": BUCKET},
        parameters={"ModelName": MODEL, "ShadowScheduleState": state},
    )
    policy = role_policy(translated, "MonitorFunctionRole", TEMPLATE, context)
    return enforce(boto3.client("s3", region_name="us-east-1"), policy, s3), policy


def test_scheduled_shadow_runs_under_the_monitor_role(translated, registry, s3, tmp_path, capsys, versions):
    champion_version, candidate_version, _ = versions
    serve_and_capture(registry, s3, tmp_path, capsys, champion_version, requests=6, rows=3)
    client, policy = _under(translated, s3, "ENABLED")
    store, prefix = open_location(DATA, client)
    now = time.time()
    out = shadow.scheduled(
        Registry(REGISTRY, s3=client), MODEL, store, prefix, candidate_version, since=now - 3600, until=now + 60
    )
    assert out["outcome"] == "stored" and out["rows"] == 18, policy.denied
    assert not policy.denied
    key = out["json"][len(f"s3://{BUCKET}/") :]
    assert key.startswith(f"data/shadow/{MODEL}/{candidate_version}/")
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["rows"]["compared"] == 18
    # anything else stays read-only: a write next to the captures is refused
    with pytest.raises(Exception, match="AccessDenied|403|Forbidden"):
        client.put_object(Bucket=BUCKET, Key="data/captures/forged.jsonl", Body=b"{}")


def test_with_the_schedule_off_the_monitor_role_cannot_write_reports(
    translated, registry, s3, tmp_path, capsys, versions
):
    champion_version, candidate_version, _ = versions
    serve_and_capture(registry, s3, tmp_path, capsys, champion_version, requests=2, rows=2)
    client, policy = _under(translated, s3, "DISABLED")
    store, prefix = open_location(DATA, client)
    now = time.time()
    with pytest.raises(Exception):  # noqa: B017  (the store's own error for a refused write)
        shadow.scheduled(
            Registry(REGISTRY, s3=client), MODEL, store, prefix, candidate_version, since=now - 3600, until=now + 60
        )
    assert any("shadow" in d and "s3:PutObject" in d for d in policy.denied)


def test_monitor_handler_runs_the_shadow_test_on_the_shadow_event(
    registry, s3, tmp_path, capsys, versions, monkeypatch
):
    champion_version, candidate_version, _ = versions
    serve_and_capture(registry, s3, tmp_path, capsys, champion_version, requests=4, rows=2)
    env = {
        "MODELOPS_REGISTRY": REGISTRY,
        "MODELOPS_MODEL_NAME": MODEL,
        "MODELOPS_DATA_URI": DATA,
        "MODELOPS_SHADOW_VERSION": candidate_version,
    }
    app = load_handler("monitor", env=env, monkeypatch=monkeypatch)
    context = LambdaContext(memory_limit_in_mb=1024, aws_request_id="r")
    out = app.lambda_handler({"action": "shadow"}, context)
    assert out["outcome"] == "stored" and out["rows"] == 8 and out["candidate"] == candidate_version
    monkeypatch.setenv("MODELOPS_SHADOW_VERSION", "")
    assert app.lambda_handler({"action": "shadow"}, context)["outcome"] == "skipped"
