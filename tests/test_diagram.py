"""The architecture picture is drawn from template.yaml: every box stands for something in the template, every
significant resource has a box, arrows follow the template's references, and the committed picture is current."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from devtools import diagram

# A stack with every capability, shaped like template.yaml's sections, so the rules are tested even for
# resources the real template does not have yet.
FULL_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  ModelName: {Type: String, Default: breast-cancer}
  ChampionVersion:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /modelops/breast-cancer/champion
  DeploymentType: {Type: String, Default: Canary10Percent5Minutes}
  PredictMemorySize: {Type: Number, Default: 1024}
Globals:
  Function:
    Runtime: python3.12
Resources:
  ModelBucket:
    Type: AWS::S3::Bucket
  MLRuntimeLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/mlruntime/}
  ModelOpsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/modelops/}
  PredictApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Auth: {ApiKeyRequired: true}
  PredictFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/predict/
      Handler: app.lambda_handler
      MemorySize: !Ref PredictMemorySize
      AutoPublishAlias: live
      Environment:
        Variables:
          MODELOPS_MODEL_VERSION: !Ref ChampionVersion
          MODELOPS_REGISTRY: !Sub "s3://${ModelBucket}/registry"
      DeploymentPreference:
        Type: !Ref DeploymentType
        Alarms: [!Ref PredictErrorsAlarm, !Ref PredictLatencyAlarm, !Ref PredictionShiftAlarm]
        Hooks:
          PreTraffic: !Ref PreTrafficHookFunction
      Events:
        Predict:
          Type: Api
          Properties: {RestApiId: !Ref PredictApi, Path: /predict, Method: post}
  FeedbackFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/feedback/
      Handler: app.lambda_handler
      Policies:
        - S3CrudPolicy: {BucketName: !Ref ModelBucket}
      Events:
        Feedback:
          Type: Api
          Properties: {RestApiId: !Ref PredictApi, Path: /feedback, Method: post}
  PreTrafficHookFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "CodeDeployHook_${AWS::StackName}"
      CodeUri: functions/pretraffic_hook/
      Handler: app.lambda_handler
      Policies:
        - LambdaInvokePolicy: {FunctionName: !Ref PredictFunction}
  PredictErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: Errors}
  PredictLatencyAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: Duration}
  PredictionShiftAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: PositiveRate}
  QualityAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: Accuracy}
  DriftAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: MaxPSI}
  RetrainTopic:
    Type: AWS::SNS::Topic
  RetrainFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/retrain/
      Handler: app.lambda_handler
      Timeout: 900
      Environment:
        Variables:
          MODELOPS_TOPIC_ARN: !Ref RetrainTopic
          MODELOPS_DEPLOYMENT_GROUP: !Ref PredictFunctionDeploymentGroup
          MODELOPS_CHAMPION_PARAMETER: !Sub "/modelops/${ModelName}/champion"
      Policies:
        - SNSPublishMessagePolicy: {TopicName: !GetAtt RetrainTopic.TopicName}
        - S3CrudPolicy: {BucketName: !Ref ModelBucket}
        - Statement:
            - Effect: Allow
              Action: ssm:PutParameter
              Resource: !Sub "arn:aws:ssm:${AWS::Region}:${AWS::AccountId}:parameter/modelops/${ModelName}/champion"
      Events:
        OnAlarm:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.cloudwatch]
              detail-type: [CloudWatch Alarm State Change]
              resources: [!GetAtt QualityAlarm.Arn, !GetAtt DriftAlarm.Arn]
        Weekly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: "cron(0 3 ? * MON *)"}
  MonitorFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/monitor/
      Handler: app.lambda_handler
      Events:
        Hourly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 hour)}
  Dashboard:
    Type: AWS::CloudWatch::Dashboard
    Properties: {DashboardBody: "{}"}
  BatchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/batch/
      MemorySize: 3008
      Policies:
        - Statement:
            - Effect: Allow
              Action: s3:GetObject
              Resource: !Sub "${ModelBucket.Arn}/*"
  BatchWorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/batch_worker/
      MemorySize: 3008
      Policies:
        - Statement:
            - Effect: Allow
              Action: s3:GetObject
              Resource: !Sub "${ModelBucket.Arn}/*"
  BatchStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachine/batch.asl.json
      DefinitionSubstitutions:
        A: !GetAtt BatchFunction.Arn
        B: !GetAtt BatchWorkerFunction.Arn
      Events:
        DailySchedule:
          Type: ScheduleV2
          Properties: {ScheduleExpression: !Ref ModelName, ScheduleExpressionTimezone: Asia/Shanghai}
  BatchRunsFailedAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Dimensions: [{Name: StateMachineArn, Value: !Ref BatchStateMachine}]
"""


@pytest.fixture(scope="module")
def real_template() -> dict:
    return diagram.load_template(diagram.TEMPLATE)


@pytest.fixture
def full_template() -> dict:
    return yaml.load(FULL_TEMPLATE, Loader=diagram._CfnLoader)


def _exists(template: dict, path: str) -> bool:
    """Whether a box's template path names something that is really in the template."""
    resources = template.get("Resources") or {}
    if path.startswith("Parameters/"):
        return path.split("/", 1)[1] in (template.get("Parameters") or {})
    if path.startswith("resolve:ssm:"):
        return "{{" + path in json.dumps(template)
    logical_id, _, rest = path.partition("/")
    if logical_id not in resources:
        return False
    node = resources[logical_id].get("Properties") or {}
    for part in rest.split("/") if rest else []:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _significant(template: dict) -> set[str]:
    paths = set()
    for logical_id, res in (template.get("Resources") or {}).items():
        if res.get("Type") in diagram.SIGNIFICANT_TYPES:
            paths.add(logical_id)
        for name, event in ((res.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") in diagram.SCHEDULE_EVENTS | diagram.RULE_EVENTS:
                paths.add(f"{logical_id}/Events/{name}")
    return paths


def _edge_kinds(model: diagram.Model) -> set[tuple[str, str, str]]:
    kinds = {n.id: n.kind for n in model.nodes}
    return {(kinds[e["from"]], kinds[e["to"]], e["label"]) for e in model.edges}


@pytest.mark.parametrize("which", ["real", "full"])
def test_every_box_stands_for_something_in_the_template(which, real_template, full_template):
    template = real_template if which == "real" else full_template
    model = diagram.build_model(template)
    assert model.nodes
    for node in model.nodes:
        assert node.resources, f"box {node.id} stands for nothing"
        for path in node.resources:
            assert _exists(template, path), f"box {node.id} draws {path}, which is not in the template"
    ids = {n.id for n in model.nodes}
    for edge in model.edges:
        assert edge["from"] in ids and edge["to"] in ids


@pytest.mark.parametrize("which", ["real", "full"])
def test_every_significant_resource_is_drawn(which, real_template, full_template):
    template = real_template if which == "real" else full_template
    drawn = {path for node in diagram.build_model(template).nodes for path in node.resources}
    missing = _significant(template) - drawn
    assert not missing, f"resources with no box: {sorted(missing)}"


def test_the_committed_picture_matches_template_yaml():
    reason = diagram.stale_reason()
    assert reason is None, f"docs/architecture.png is out of date ({reason}): run `make diagram` and commit it"


def test_full_stack_boxes_and_arrows(full_template):
    model = diagram.build_model(full_template)
    by_kind: dict[str, list[str]] = {}
    for node in model.nodes:
        by_kind.setdefault(node.kind, []).append(node.id)
    # Alarms are grouped by what they feed; SAM-derived parts get their own boxes.
    assert by_kind["alarms_rollout"] == ["alarms_rollout"] and by_kind["alarms_lifecycle"] == ["alarms_lifecycle"]
    assert {"versions", "codedeploy", "schedule", "rule", "ssm"} <= set(by_kind)
    rollout = next(n for n in model.nodes if n.kind == "alarms_rollout")
    assert sorted(rollout.resources) == ["PredictErrorsAlarm", "PredictLatencyAlarm", "PredictionShiftAlarm"]
    assert rollout.title == "Rollback alarms (3)"
    edges = {(a, b) for a, b, _ in _edge_kinds(model)}
    assert {
        ("api", "predict"),
        ("api", "feedback"),
        ("predict", "versions"),
        ("codedeploy", "predict"),
        ("codedeploy", "hook"),
        ("alarms_rollout", "codedeploy"),
        ("hook", "predict"),
        ("alarms_lifecycle", "rule"),
        ("rule", "retrain"),
        ("schedule", "retrain"),
        ("retrain", "topic"),
        ("retrain", "ssm"),
        ("retrain", "bucket"),
        ("retrain", "codedeploy"),
        ("schedule", "statemachine"),
        ("statemachine", "batch"),
        ("batch", "bucket"),
        ("ssm", "versions"),
        ("bucket", "versions"),
        ("feedback", "bucket"),
    } <= edges
    # Event sources sit in their target's lane: the weekly retrain schedule is not drawn with batch scoring.
    weekly = next(n for n in model.nodes if n.id == "RetrainFunction:Weekly")
    assert weekly.lane == "lifecycle"


def test_a_resource_removed_from_the_template_disappears(full_template):
    before = diagram.build_model(full_template)
    trimmed = copy.deepcopy(full_template)
    del trimmed["Resources"]["RetrainTopic"]
    trimmed["Resources"]["RetrainFunction"]["Properties"]["Policies"] = []
    trimmed["Resources"]["RetrainFunction"]["Properties"]["Environment"]["Variables"].pop("MODELOPS_TOPIC_ARN")
    after = diagram.build_model(trimmed)
    assert "topic" in {n.kind for n in before.nodes} and "topic" not in {n.kind for n in after.nodes}
    assert ("retrain", "topic", "decision") in _edge_kinds(before)
    assert not any(b == "topic" for _, b, _ in _edge_kinds(after))
    assert before.digest() != after.digest()


def test_references_read_every_intrinsic_form():
    props = {
        "A": {"Ref": "Bucket"},
        "B": {"Fn::GetAtt": ["Topic", "TopicName"]},
        "C": {"Fn::GetAtt": "Queue.Arn"},
        "D": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Data}/x/${Fn.Arn}"},
        "E": {"Fn::Sub": ["${Local}-${Other}", {"Local": {"Ref": "Named"}}]},
        "F": {"Ref": "PredictFunction.Alias"},
        "G": [{"Ref": "AWS::Region"}],
    }
    assert diagram.references(props) == {"Bucket", "Topic", "Queue", "Data", "Fn", "Other", "Named", "PredictFunction"}


def test_short_tags_load_as_intrinsics():
    template = yaml.load(
        "A: !Ref X\nB: !GetAtt Y.Arn\nC: !Sub '${Z}'\nD: !If [Cond, !Ref P, !Ref Q]\n", Loader=diagram._CfnLoader
    )
    assert template == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Y", "Arn"]},
        "C": {"Fn::Sub": "${Z}"},
        "D": {"Fn::If": ["Cond", {"Ref": "P"}, {"Ref": "Q"}]},
    }


def test_write_and_staleness_check(tmp_path: Path):
    template = tmp_path / "template.yaml"
    template.write_text(FULL_TEMPLATE)
    png, record = tmp_path / "architecture.png", tmp_path / "architecture.json"
    model = diagram.write(template, png, record)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(record.read_text())
    assert saved["model_sha256"] == model.digest() and len(saved["model"]["nodes"]) == len(model.nodes)
    assert diagram.stale_reason(template, png, record) is None

    template.write_text(FULL_TEMPLATE.replace("MemorySize: 3008", "MemorySize: 4096"))
    assert "changed" in diagram.stale_reason(template, png, record)
    template.write_text(FULL_TEMPLATE)
    png.write_bytes(png.read_bytes() + b"edited")
    assert "by hand" in diagram.stale_reason(template, png, record)


def test_check_command_tells_how_to_fix(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setattr(diagram, "MODEL_JSON", tmp_path / "missing.json")
    monkeypatch.setattr(diagram, "PNG", tmp_path / "missing.png")
    assert diagram.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "make diagram" in err
