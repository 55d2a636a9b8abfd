"""What a real deploy of the translated template creates, as CloudFormation would see it: one API stage only, and no
physical name or SSM path that two stacks of the same template in one account and region would share.

Checked on samtranslator's output (moto cannot deploy SAM templates); names are resolved with the local template
resolver for two stack names. `make deploy-local` deploys the same two stacks into LocalStack."""

from __future__ import annotations

import json
import tomllib

from modelops.rollout.deploy import PinNames
from support.paths import ROOT
from support.template import flatten

from devtools.template import LocalContext, Template

TEMPLATE = ROOT / "template.yaml"

# Properties that set a resource's physical name, which must be unique in an account and region (or, for the
# scoped ones, within their parent). Types not listed get a generated, unique name from CloudFormation.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::AppConfig::Application": "Name",
    "AWS::CodeDeploy::Application": "ApplicationName",
    "AWS::SSM::Parameter": "Name",
}


def test_only_the_configured_stage_exists(translated):
    """Without OpenApiVersion, SAM adds a Deployment with StageName "Stage": a second stage without the throttling,
    method settings and tracing of the configured one, serving the unauthenticated routes openly."""
    stages = {lid: r for lid, r in translated.items() if r["Type"] == "AWS::ApiGateway::Stage"}
    # one stage per REST API (predictions, and labels on their own API)
    assert sorted(stages) == ["FeedbackApiStage", "PredictApiStage"]
    assert all(s["Properties"]["StageName"] == {"Ref": "ApiStageName"} for s in stages.values())
    deployments = [r for r in translated.values() if r["Type"] == "AWS::ApiGateway::Deployment"]
    assert len(deployments) == 2 and all("StageName" not in d["Properties"] for d in deployments)
    for stage in stages.values():
        assert stage["Properties"]["TracingEnabled"] is True and stage["Properties"]["MethodSettings"]
    # each usage plan and its key point at its own API's stage
    for api in ("PredictApi", "FeedbackApi"):
        plan = translated[f"{api}UsagePlan"]
        assert plan["Properties"]["ApiStages"] == [{"ApiId": {"Ref": api}, "Stage": {"Ref": f"{api}Stage"}}]


def physical_names(translated: dict, stack: str) -> dict[str, str]:
    t = Template(TEMPLATE, LocalContext(stack_name=stack, parameters={"ModelVersion": PinNames(stack, "m").champion}))
    t.doc = {**t.doc, "Resources": translated}
    t.resources = translated
    names = {}
    for logical_id, resource in translated.items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        value = (resource.get("Properties") or {}).get(prop) if prop else None
        if value is not None:
            names[f"{resource['Type']} {t.resolve(value)}"] = logical_id
    return names


def test_two_stacks_share_no_physical_name(translated):
    dev, prod = physical_names(translated, "modelops-dev"), physical_names(translated, "modelops-prod")
    shared = sorted(set(dev) & set(prod))
    assert not shared, f"named the same in both stacks: {shared}"
    assert any(k.startswith("AWS::Lambda::LayerVersion modelops-dev-") for k in dev)
    schedule = next(r for r in translated.values() if r["Type"] == "AWS::Scheduler::Schedule")
    assert "Name" not in schedule["Properties"]  # CloudFormation generates a unique one


def _ssm_resources(translated: dict) -> list[str]:
    found = []
    for resource in translated.values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in flatten(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a.startswith("ssm:") for a in actions):
                    found.append(json.dumps(statement["Resource"]))
    return found


def test_every_ssm_path_belongs_to_one_stack(template, translated):
    """A retrain may write only its own stack's pins; the pin each stack reads is its own (samconfig.toml)."""
    resources = _ssm_resources(translated)
    assert resources and all("parameter/modelops/${AWS::StackName}/${ModelName}/" in r for r in resources)
    assert "Default" not in template["Parameters"]["ModelVersion"]
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "prod"):
        stack = config[env]["global"]["parameters"]["stack_name"]
        overrides = dict(
            part.split("=", 1) for part in _split(config[env]["deploy"]["parameters"]["parameter_overrides"])
        )
        assert overrides["ModelVersion"] == PinNames(stack, overrides["ModelName"]).champion, env


def _split(overrides: str) -> list[str]:
    import shlex

    return shlex.split(overrides)
