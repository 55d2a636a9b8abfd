"""The [lifecycle] part of template.yaml: alarms with parameter thresholds, the EventBridge rules that drive
the retrain function, its least-privilege IAM, the capture pipeline behind a condition, and the dashboard.
CloudFormation cannot be deployed offline (moto skips alarms, CodeDeploy and aliases), so the template is
checked through samtranslator's output; EventBridge pattern matching uses moto's TestEventPattern."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from modelops.capture.records import MARKER
from modelops.monitoring import quality as monitoring
from samtranslator.yaml_helper import yaml_parse
from support.paths import ROOT
from support.template import flatten

TEMPLATE = Path(os.environ.get("MODELOPS_TEMPLATE", ROOT / "template.yaml"))


@pytest.fixture(scope="module")
def raw():
    return yaml_parse(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def translated(raw):
    """samtranslator's output (what CloudFormation would receive), without AWS: pseudo parameters and the
    managed policy ARNs are given."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    managed = {
        "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "AWSLambdaRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
        "AWSCodeDeployRoleForLambda": "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda",
        "AWSCodeDeployRoleForLambdaLimited": "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited",
    }
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    translator = Translator(managed, Parser(), boto_session=session)
    params = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    packaged = json.loads(json.dumps(raw))
    for resource in packaged["Resources"].values():  # what `sam package` does: local paths become S3 objects
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(resource.get("Properties", {}).get(key), str):
                resource["Properties"][key] = f"s3://artifacts/{key}"
    return translator.translate(packaged, params)


def resources(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_quality_and_drift_alarms_use_parameter_thresholds_and_published_metrics(raw):
    r = raw["Resources"]
    quality = r["QualityAlarm"]["Properties"]
    assert quality["MetricName"] == {"Ref": "QualityMetric"}
    assert quality["Threshold"] == {"Ref": "QualityThreshold"}
    assert (
        quality["Namespace"] == raw["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    )
    assert quality["Dimensions"] == [{"Name": "ModelName", "Value": {"Ref": "ModelName"}}]
    assert quality["TreatMissingData"] == "notBreaching"
    allowed = raw["Parameters"]["QualityMetric"]["AllowedValues"]
    assert set(allowed) == set(monitoring.QUALITY_METRICS.values())  # every choice is a metric the monitor publishes
    drift = r["DriftAlarm"]["Properties"]
    assert drift["Threshold"] == {"Ref": "DriftThreshold"}
    query = drift["Metrics"][0]["Expression"]["Fn::Sub"]
    assert f"MAX({monitoring.DRIFT_PSI})" in query and "Feature, ModelName" in query
    prediction = r["PredictionDriftAlarm"]["Properties"]
    assert prediction["MetricName"] == monitoring.PREDICTION_PSI
    assert prediction["Threshold"] == {"Ref": "PredictionDriftThreshold"}


def test_batch_runs_publish_the_metric_the_drift_alarm_reads():
    from modelops.batch import metrics as batch_metrics

    docs = batch_metrics.run_documents(
        {
            "model": {"name": "m", "version": "v1"},
            "rows": {"read": 1, "scored": 1, "rejected": 0},
            "timings": {"seconds": 1},
            "drift": {"feature_psi": {"x": 0.3}},
        }
    )
    psi_docs = [d for d in docs if monitoring.DRIFT_PSI in d]
    dimension_sets = [sorted(d) for d in psi_docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]]
    assert ["Feature", "ModelName"] in dimension_sets  # exactly the SCHEMA(modelops, Feature, ModelName) of the alarm


def _rule(translated, fragment):
    rules = {k: v for k, v in resources(translated, "AWS::Events::Rule").items() if k.startswith("RetrainFunction")}
    matches = [v for k, v in rules.items() if fragment in k]
    assert len(matches) == 1, sorted(rules)
    return matches[0]["Properties"]


def test_alarm_rule_sends_alarm_state_changes_of_the_lifecycle_alarms_to_the_retrain_function(translated, moto_aws):
    props = _rule(translated, "QualityOrDriftAlarm")
    assert props["Targets"][0]["Arn"] == {"Fn::GetAtt": ["RetrainFunction", "Arn"]}
    assert "DeadLetterConfig" in props["Targets"][0]
    pattern = props["EventPattern"]
    assert [a["Fn::GetAtt"][0] for a in pattern["resources"]] == ["QualityAlarm", "DriftAlarm", "PredictionDriftAlarm"]
    event = json.loads((ROOT / "events" / "alarm-state-change.json").read_text())
    assert _delivered({**pattern, "resources": event["resources"]}, event)
    event["detail"]["state"]["value"] = "OK"
    assert not _delivered({**pattern, "resources": event["resources"]}, event)


def _delivered(pattern, event) -> bool:
    """Does EventBridge (moto, with an SQS target standing in for the function) route this event?"""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"target-{event['detail']['state']['value']}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="alarm-rule", EventPattern=json.dumps(pattern))
    events.remove_targets(Rule="alarm-rule", Ids=["retrain"])
    events.put_targets(Rule="alarm-rule", Targets=[{"Id": "retrain", "Arn": arn}])
    events.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Resources": event["resources"],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )
    return bool(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages"))


def test_stack_update_rule_only_covers_this_stack(translated):
    """The event shape is CloudFormation's "Stack Status Change" event (CloudFormation user guide, events detail
    reference): detail.stack-id and detail.status-details.status."""
    from modelops.retrain.events import FAILED_STATES, SUCCEEDED_STATES

    pattern = _rule(translated, "StackUpdateFinished")["EventPattern"]
    assert pattern["source"] == ["aws.cloudformation"]
    assert pattern["detail-type"] == ["CloudFormation Stack Status Change"]
    assert pattern["detail"]["stack-id"] == [{"Ref": "AWS::StackId"}]
    assert set(pattern["detail"]["status-details"]["status"]) == {*SUCCEEDED_STATES, *FAILED_STATES}


def test_weekly_retrain_schedule_is_a_parameter_and_off_by_default(raw, translated):
    props = _rule(translated, "WeeklyRetrain")
    assert props["ScheduleExpression"] == {"Ref": "RetrainSchedule"}
    assert props["State"] == {"Ref": "RetrainScheduleState"}
    assert raw["Parameters"]["RetrainScheduleState"]["Default"] == "DISABLED"


def test_retrain_function_environment_wires_the_rollout_path(raw):
    env = raw["Resources"]["RetrainFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MODELOPS_PREDICT_FUNCTION"] == {"Ref": "PredictFunction"}
    assert env["MODELOPS_STACK_NAME"] == {"Ref": "AWS::StackName"}  # a rollout is an update of this stack
    assert env["MODELOPS_PREDICT_ALIAS"] == "live"
    assert env["MODELOPS_RETRAIN_TOPIC"] == {"Ref": "LifecycleTopic"}
    assert env["MODELOPS_RETRAIN_MARGIN"] == {"Ref": "RetrainMargin"}
    assert not any(var.startswith("MODELOPS_CODEDEPLOY_") for var in env)  # it never starts deployments itself
    from modelops.wiring.retrain import FLOOR_VARS

    for var in env:
        if var.startswith("MODELOPS_RETRAIN_") and var not in ("MODELOPS_RETRAIN_TOPIC",):
            assert var in FLOOR_VARS or var.removeprefix("MODELOPS_RETRAIN_") in {
                "RECENT_DAYS",
                "HOLDOUT_FRACTION",
                "MIN_ROWS",
                "MARGIN",
                "METRIC",
                "COOLDOWN_HOURS",
                "RECENT_TOLERANCE",
                "TRUSTED_URI",
                "MAX_WRITER_SHARE",
                "MAX_DISAGREEMENT_JUMP",
            }, var
    assert env["MODELOPS_APPROVAL_MODE"] == {"Ref": "ApprovalMode"}
    assert env["MODELOPS_RETRAIN_TRUSTED_URI"] == {"Fn::Sub": "s3://${ModelBucket}/${TrainingDataPrefix}/trusted"}


def _statements(translated, role):
    out = []
    for policy in translated["Resources"][role]["Properties"].get("Policies", []):
        out.extend(flatten(policy["PolicyDocument"]["Statement"]))
    return out


def test_retrain_role_is_least_privilege(translated):
    statements = _statements(translated, "RetrainFunctionRole")
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    by_sid = {s.get("Sid"): s for s in statements}
    # pins: only this stack's own, never another stack's (two stacks in one account)
    assert by_sid["ThisStacksPins"]["Action"] == ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"]
    assert by_sid["ThisStacksPins"]["Resource"]["Fn::Sub"].endswith(
        ":parameter/modelops/${AWS::StackName}/${ModelName}/*"
    )
    # rollouts are change sets on this stack only, with the rollout name prefix
    change_sets = by_sid["RolloutChangeSets"]
    assert change_sets["Resource"]["Fn::Sub"].endswith(":stack/${AWS::StackName}/*")
    assert change_sets["Condition"] == {"StringLike": {"cloudformation:ChangeSetName": "modelops-rollout-*"}}
    # CloudFormation runs the change set with this role: only the resources that follow the model version
    lam = by_sid["RolloutUpdatesPredictAndFeedbackFunctions"]
    assert {"lambda:PublishVersion", "lambda:UpdateFunctionConfiguration", "lambda:UpdateAlias"} <= set(lam["Action"])
    assert (
        json.dumps(lam["Resource"]).count("PredictFunction") == 2
        and json.dumps(lam["Resource"]).count("FeedbackFunction") == 2
    )
    assert by_sid["RolloutPassesTheFunctionsOwnRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}
    }
    assert by_sid["RolloutAlarmsWatchTheNewVersion"]["Resource"]["Fn::Sub"].endswith(
        ":alarm:${AWS::StackName}-predict-new-version-*"
    )
    assert (
        "deploymentgroup:${ServerlessDeploymentApplication}/${PredictFunctionDeploymentGroup}"
        in by_sid["RolloutCanary"]["Resource"]["Fn::Sub"]
    )
    # every listing is limited to these prefixes (the bucket check before registering lists under the model's own)
    listing = by_sid["ListRegistryDataAndTrainingSets"]["Condition"]["StringLike"]["s3:prefix"]
    assert [p["Fn::Sub"] for p in listing] == [
        "${RegistryPrefix}/models/${ModelName}/*",
        "${RegistryPrefix}/aliases/${ModelName}/*",
        "${RegistryPrefix}/history/${ModelName}/*",
        "${RegistryPrefix}/locks/${ModelName}/*",
        "${DataPrefix}/captures/*",
        "${DataPrefix}/feedback/*",
        "${TrainingDataPrefix}/*",
    ]
    s3_resources = json.dumps(by_sid["ThisModelsRegistryReadWrite"]["Resource"])
    assert "${RegistryPrefix}/models/${ModelName}/*" in s3_resources and '${RegistryPrefix}/*"' not in s3_resources
    monitor = _statements(translated, "MonitorFunctionRole")
    assert {a for s in monitor for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} <= {
        "s3:ListBucket",
        "s3:GetObject",
        "kms:Decrypt",  # only with KmsKeyArn: the bucket's customer key
        "kms:GenerateDataKey",
        "s3:PutObject",  # only with ShadowScheduleState=ENABLED, only the shadow reports (test_template_shadow.py)
        "kms:Verify",  # the shadow candidate's signature, only with ModelSigning=kms and the shadow schedule on
        "sqs:SendMessage",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_capture_pipeline_is_switchable_and_filters_the_capture_lines(raw):
    assert raw["Conditions"]["CaptureOn"] == {
        "Fn::Equals": [{"Ref": "OnlineCapture"}, "on"]
    }  # the same switch as the lines
    assert raw["Resources"]["PredictFunction"]["Properties"]["Environment"]["Variables"]["MODELOPS_CAPTURE"] == {
        "Ref": "OnlineCapture"
    }
    r = raw["Resources"]
    for name in (
        "CaptureDeliveryStream",
        "CaptureDeliveryRole",
        "CaptureSubscriptionRole",
        "CaptureSubscriptionFilter",
    ):
        assert r[name]["Condition"] == "CaptureOn", name
    assert r["CaptureSubscriptionFilter"]["Properties"]["FilterPattern"] == f"{{ $.{MARKER} IS TRUE }}"
    prefix = r["CaptureDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"]
    from modelops.capture.records import CAPTURE_DIR

    assert f"/{CAPTURE_DIR}/date=!{{timestamp:yyyy-MM-dd}}/" in json.dumps(prefix)  # where PredictionLog reads


def test_dashboard_shows_traffic_latency_errors_drift_quality_and_deployments(raw):
    body = raw["Resources"]["LifecycleDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text = re.sub(r"\$\{[^}]+\}", "0", body)  # any substitution still leaves valid JSON
    widgets = json.loads(text)["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets).lower()
    for word in ("traffic", "latency", "errors", "drift", "quality", "deployments", "alarms"):
        assert word in titles, word
    for metric in (
        "Invocations",
        "Duration",
        "Errors",
        monitoring.DRIFT_PSI,
        monitoring.DRIFT_PSI_MAX,
        monitoring.PREDICTION_PSI,
        "ExecutedVersion",
        "ModelVersion",
    ):
        assert metric in body, metric


LIFECYCLE_RESOURCES = {
    "LifecycleTopic",
    "LifecycleDeadLetterQueue",
    "LifecycleDeadLetterQueuePolicy",
    "MonitorFunction",
    "RetrainFunction",
    "MonitorFunctionLogGroup",
    "RetrainFunctionLogGroup",
    "QualityAlarm",
    "DriftAlarm",
    "PredictionDriftAlarm",
    "CaptureDeliveryRole",
    "CaptureDeliveryStream",
    "CaptureSubscriptionRole",
    "CaptureSubscriptionFilter",
    "LifecycleDashboard",
}


@pytest.mark.slow
def test_template_passes_cfn_lint_and_sam_validate(raw):
    """cfn-lint (with the serverless rules) finds nothing in the lifecycle resources; sam validate --lint
    accepts the whole template."""
    assert set(raw["Resources"]) >= LIFECYCLE_RESOURCES
    bin_dir = Path(sys.executable).parent
    lint = subprocess.run(
        [str(bin_dir / "cfn-lint"), str(TEMPLATE), "-a", "cfn_lint_serverless.rules", "--format", "json"],
        capture_output=True,
        text=True,
    )
    findings = json.loads(lint.stdout or "[]")
    ours = [
        f"{f['Rule']['Id']} {f['Location']['Path']}: {f['Message']}"
        for f in findings
        if len(f["Location"].get("Path") or []) > 1
        and f["Location"]["Path"][0] in ("Resources", "Parameters", "Conditions")
        and (
            f["Location"]["Path"][1] in LIFECYCLE_RESOURCES
            or str(f["Location"]["Path"][1]).startswith(
                ("Quality", "Drift", "PredictionDrift", "Monitor", "Retrain", "TrainingData", "Capture")
            )
        )
    ]
    assert lint.returncode in (0, 2, 4, 6, 8) and not ours, ours
    validate = subprocess.run(
        [str(bin_dir / "sam"), "validate", "--lint", "--template", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
