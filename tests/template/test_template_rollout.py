"""The canary and A/B parts of template.yaml: DeploymentPreference, rollback alarms scoped to the new
version, the PreTraffic hook's wiring and IAM, the A/B split store and POST /feedback. Checked on the
YAML itself and on samtranslator's output (what CloudFormation receives); moto cannot deploy SAM
templates, and cfn-lint / `sam validate --lint` run in `make lint`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from modelops.experiments import assignment as experiment
from samtranslator.yaml_helper import yaml_parse
from support.paths import ROOT
from support.template import conditions_of, decide, flatten

TEMPLATE = Path(os.environ.get("MODELOPS_TEMPLATE", ROOT / "template.yaml"))
ALARMS = [
    "PredictNewVersionErrorsAlarm",
    "PredictNewVersionServerErrorsAlarm",
    "PredictNewVersionLatencyAlarm",
    "PredictNewVersionScoreShiftAlarm",
]


@pytest.fixture(scope="module")
def raw():
    return yaml_parse(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def translated(raw):
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    managed = {
        k: f"arn:aws:iam::aws:policy/service-role/{k}"
        for k in (
            "AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSLambdaRole",
            "AWSCodeDeployRoleForLambda",
            "AWSCodeDeployRoleForLambdaLimited",
        )
    }
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    packaged = json.loads(json.dumps(raw))
    for resource in packaged["Resources"].values():  # what `sam package` does to local paths
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(resource.get("Properties", {}).get(key), str):
                resource["Properties"][key] = f"s3://artifacts/{key}"
    return Translator(managed, Parser(), boto_session=session).translate(
        packaged, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    )


def new_version_id(translated) -> str:
    (version,) = [
        k
        for k, v in translated["Resources"].items()
        if v["Type"] == "AWS::Lambda::Version" and k.startswith("PredictFunctionVersion")
    ]
    return version


def test_deployment_type_parameter(raw):
    p = raw["Parameters"]["DeploymentType"]
    assert p["Default"] == "Canary10Percent5Minutes"
    assert "AllAtOnce" in p["AllowedValues"] and any(v.startswith("Linear") for v in p["AllowedValues"])
    pref = raw["Resources"]["PredictFunction"]["Properties"]["DeploymentPreference"]
    assert pref["Type"] == {"Ref": "DeploymentType"}
    assert decide(pref["Alarms"], conditions_of(raw)) == [{"Ref": a} for a in ALARMS]
    assert pref["Hooks"] == {"PreTraffic": {"Ref": "PreTrafficHookFunction"}}
    assert raw["Resources"]["PredictFunction"]["Properties"]["AutoPublishAlias"] == "live"


def test_translated_deployment_group_rolls_back_on_alarms(translated):
    r = translated["Resources"]
    group = decide(r["PredictFunctionDeploymentGroup"]["Properties"], conditions_of(translated))
    assert group["DeploymentConfigName"]["Fn::Sub"][1]["ConfigName"] == "Canary10Percent5Minutes"
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert [a["Name"] for a in group["AlarmConfiguration"]["Alarms"]] == [{"Ref": a} for a in ALARMS]
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    assert group["ServiceRoleArn"] == {"Fn::GetAtt": ["PredictDeploymentRole", "Arn"]}
    update = r["PredictFunctionAliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}


def test_alarms_are_scoped_to_the_new_version(translated):
    r = translated["Resources"]
    version = new_version_id(translated)
    executed = {"Fn::GetAtt": [version, "Version"]}
    for name in ("PredictNewVersionErrorsAlarm", "PredictNewVersionLatencyAlarm"):
        props = r[name]["Properties"]
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert props["Namespace"] == "AWS/Lambda"
        assert dims == {
            "FunctionName": {"Ref": "PredictFunction"},
            "Resource": {"Fn::Sub": "${PredictFunction}:live"},
            "ExecutedVersion": executed,
        }, name
    assert r["PredictNewVersionErrorsAlarm"]["Properties"]["MetricName"] == "Errors"
    latency = r["PredictNewVersionLatencyAlarm"]["Properties"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Duration", "p99")
    assert latency["Threshold"] == {"Ref": "RollbackLatencyP99Ms"}
    five = r["PredictNewVersionServerErrorsAlarm"]["Properties"]
    assert five["MetricName"] == "ServerErrors"
    assert {d["Name"]: d["Value"] for d in five["Dimensions"]} == {
        "ModelName": {"Ref": "ModelName"},
        "FunctionVersion": executed,
    }


def test_score_shift_alarm_compares_new_version_with_the_rest(translated, raw):
    from modelops.serving.metrics import DIMENSION_SETS, SCORE_METRIC

    props = translated["Resources"]["PredictNewVersionScoreShiftAlarm"]["Properties"]
    by_id = {m["Id"]: m for m in props["Metrics"]}
    executed = {"Fn::GetAtt": [new_version_id(translated), "Version"]}
    for mid in ("snew", "nnew"):
        dims = by_id[mid]["MetricStat"]["Metric"]["Dimensions"]
        assert {d["Name"]: d["Value"] for d in dims} == {"ModelName": {"Ref": "ModelName"}, "FunctionVersion": executed}
        assert sorted(d["Name"] for d in dims) in [sorted(s) for s in DIMENSION_SETS]  # a set the predict path emits
    for mid in ("sall", "nall"):
        assert [d["Name"] for d in by_id[mid]["MetricStat"]["Metric"]["Dimensions"]] == ["ModelName"]
    assert all(
        m["MetricStat"]["Metric"]["MetricName"] == SCORE_METRIC["Name"] for m in props["Metrics"] if "MetricStat" in m
    )
    namespace = raw["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert all(m["MetricStat"]["Metric"]["Namespace"] == namespace for m in props["Metrics"] if "MetricStat" in m)
    assert by_id["shift"]["Expression"] == "ABS(snew / nnew - (sall - snew) / (nall - nnew))"
    assert props["Threshold"] == {"Ref": "RollbackScoreShift"}


def _statements(translated, role):
    out = []
    for policy in translated["Resources"][role]["Properties"].get("Policies", []):
        out.extend(flatten(policy["PolicyDocument"]["Statement"]))
    return out


def test_hook_wiring_and_least_privilege(translated, raw):
    hook = raw["Resources"]["PreTrafficHookFunction"]["Properties"]
    assert hook["CodeUri"] == "functions/pretraffic_hook/" and hook["Handler"] == "app.lambda_handler"
    assert (ROOT / "functions" / "pretraffic_hook" / "app.py").exists()
    env = translated["Resources"]["PreTrafficHookFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MODELOPS_PREDICT_FUNCTION"] == {"Ref": "PredictFunction"}
    assert env["MODELOPS_STACK_NAME"] == {"Ref": "AWS::StackName"}
    statements = _statements(translated, "PreTrafficHookFunctionRole")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "lambda:InvokeFunction",
        "lambda:GetFunctionConfiguration",
        "codedeploy:GetDeployment",
        "codedeploy:GetApplicationRevision",
        "codedeploy:PutLifecycleEventHookExecutionStatus",
        "cloudformation:DescribeStacks",
        "s3:GetObject",
        "s3:ListBucket",
        "kms:Decrypt",  # only with KmsKeyArn: the bucket's customer key
        "kms:GenerateDataKey",
    }
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ValidateNewPredictVersion"]["Resource"] == {"Fn::Sub": "${PredictFunction.Arn}:*"}
    assert (
        ":deploymentgroup:${ServerlessDeploymentApplication}/*" in by_sid["ReportToCodeDeploy"]["Resource"]["Fn::Sub"]
    )
    # GetDeployment may carry only the AppSpec's sha256: the content is read with GetApplicationRevision, whose
    # resource is the application (CodeDeploy's permissions reference)
    assert by_sid["ReadAppSpec"]["Resource"]["Fn::Sub"].endswith(":application:${ServerlessDeploymentApplication}")
    assert by_sid["ReadWhichPinThisStackResolves"]["Resource"]["Fn::Sub"].endswith(":stack/${AWS::StackName}/*")
    resources = json.dumps(by_sid["ReadGoldenSetsAndAliases"]["Resource"])
    assert "/models/${ModelName}/*" in resources and "/aliases/${ModelName}/*" in resources
    # CodeDeploy's role may invoke exactly this hook (it is not named CodeDeployHook_*)
    role = translated["Resources"]["PredictDeploymentRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "codedeploy.amazonaws.com"}
    (invoke,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == {"Fn::GetAtt": ["PreTrafficHookFunction", "Arn"]}
    assert any("AWSCodeDeployRoleForLambdaLimited" in json.dumps(a) for a in role["ManagedPolicyArns"])


def test_predict_function_has_the_ab_split_and_challenger(raw):
    props = raw["Resources"]["PredictFunction"]["Properties"]
    env = props["Environment"]["Variables"]
    assert env["MODELOPS_CHALLENGER_VERSION"] == {"Ref": "ChallengerVersion"}
    assert raw["Parameters"]["ChallengerVersion"]["Default"] == ""  # no experiment unless asked for
    assert {env[f"MODELOPS_APPCONFIG_{k}"]["Ref"] for k in ("APPLICATION", "ENVIRONMENT", "PROFILE")} == {
        "ABTestApplication",
        "ABTestEnvironment",
        "ABTestProfile",
    }
    assert "${ChallengerVersion}" in props["VersionDescription"]["Fn::Sub"]  # a new challenger publishes a new version
    statements = [s for p in props["Policies"] for s in p.get("Statement", [])]
    appconfig = next(s for s in statements if s.get("Sid") == "ReadABSplit")
    assert set(appconfig["Action"]) == {"appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"}
    initial = json.loads(raw["Resources"]["ABTestInitialSplit"]["Properties"]["Content"])
    assert initial == experiment.flag_document(0)  # everyone on A until `modelops ab start`
    from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

    SchemaValidator(initial).validate()


def test_feedback_route_on_the_feedback_api(translated, raw):
    fn = raw["Resources"]["FeedbackFunction"]["Properties"]
    event = fn["Events"]["Feedback"]["Properties"]
    assert event == {"RestApiId": {"Ref": "FeedbackApi"}, "Path": "/feedback", "Method": "POST"}
    assert fn["Environment"]["Variables"]["MODELOPS_DATA_URI"] == {"Fn::Sub": "s3://${ModelBucket}/${DataPrefix}"}
    statements = _statements(translated, "FeedbackFunctionRole")
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["AppendFeedback"]["Action"] == "s3:PutObject"
    assert by_sid["AppendFeedback"]["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/${DataPrefix}/feedback/*"}
    assert "/feedback" in translated["Resources"]["FeedbackApi"]["Properties"]["Body"]["paths"]
    assert "/feedback" not in translated["Resources"]["PredictApi"]["Properties"]["Body"]["paths"]


def test_outputs_for_the_rollout_and_ab_commands(raw):
    from modelops.rollout.status import STACK_OUTPUTS

    for name in STACK_OUTPUTS.values():
        assert name in raw["Outputs"], name
    assert raw["Outputs"]["PredictDeploymentGroup"]["Value"] == {"Ref": "PredictFunctionDeploymentGroup"}
