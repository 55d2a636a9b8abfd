"""The architecture diagram is drawn from template.yaml: every box stands for something in the template, every
significant resource has a box, arrows follow the template's references, and the README's Mermaid block is current."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

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
    return yaml_parse(FULL_TEMPLATE)


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


def test_the_committed_diagram_matches_template_yaml():
    reason = diagram.stale_reason()
    assert reason is None, f"the README's architecture diagram is out of date ({reason}): run `make diagram`"


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
    template = diagram.load_template_text(
        "A: !Ref X\nB: !GetAtt Y.Arn\nC: !Sub '${Z}'\nD: !If [Cond, !Ref P, !Ref Q]\n"
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
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{diagram.BEGIN}\n{diagram.END}\n\nText after.\n")
    assert "changed" in diagram.stale_reason(template, readme)
    model = diagram.write(template, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n") and text.endswith(f"{diagram.END}\n\nText after.\n")
    assert diagram.stale_reason(template, readme) is None
    block = text[text.index("```mermaid") : text.rindex("```") + 3]
    assert block == diagram.mermaid(model)
    # A box per node inside its lane's subgraph, and an arrow per edge.
    for node in model.nodes:
        assert f"    {diagram._mermaid_id(node.id)}[" in block
    assert block.count(" --> ") + block.count(" -->|") == len(model.edges)
    assert 'RetrainFunction -->|"decision"| RetrainTopic' in block

    template.write_text(FULL_TEMPLATE.replace("MemorySize: 3008", "MemorySize: 4096"))
    assert "changed" in diagram.stale_reason(template, readme)
    template.write_text(FULL_TEMPLATE)
    readme.write_text(text.replace("3008 MB", "2048 MB"))
    assert "by hand" in diagram.stale_reason(template, readme)


def test_labels_cannot_break_out_of_their_quotes():
    node = diagram.Node("X:1", "function", "other", 1, "Lambda", "compute", 'say "hi"', ["a|b"])
    text = diagram.mermaid(diagram.Model([node], [{"from": "X:1", "to": "X:1", "label": 'q"'}]))
    assert 'X_1["<b>Lambda</b><br/>say #quot;hi#quot;<br/>a|b"]:::compute' in text
    assert 'X_1 -->|"q#quot;"| X_1' in text


def test_check_command_tells_how_to_fix(monkeypatch, tmp_path: Path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no diagram here\n")
    monkeypatch.setattr(diagram, "README", readme)
    assert diagram.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "no diagram block" in err and "make diagram" in err
