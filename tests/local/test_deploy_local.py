"""The parts of `make deploy-local` that need no LocalStack: the LocalStack changes to the translated template,
the intrinsic evaluator, the deploy checks on fake read-backs, the cross-stack name comparison, and the
launcher's outbound-network guard."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse
from support.paths import ROOT

from devtools import deploy_local, stack_checks
from devtools.cfn_eval import NO_VALUE, Evaluator, Unresolvable
from devtools.localstack_patches import (
    UNSUPPORTED_TYPES,
    adapt_template,
    placeholder,
    references,
)

PSEUDO = {
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
}


def packaged_template() -> dict[str, Any]:
    """template.yaml as `sam package` leaves it: local paths replaced by S3 locations."""
    raw = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in raw["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://artifacts/{key}"
    return raw


@pytest.fixture(scope="module")
def environments():
    return {name: deploy_local.environment(name) for name in deploy_local.ENVIRONMENTS}


@pytest.fixture(scope="module")
def translated(environments):
    packaged = packaged_template()
    return {n: deploy_local.translate(packaged, e["stack"], e["overrides"]) for n, e in environments.items()}


@pytest.fixture(scope="module")
def adapted(translated, environments):
    return {n: adapt_template(t, environments[n]["stack"]) for n, t in translated.items()}


# ---- template changes -------------------------------------------------------------------------------------------
def test_samconfig_gives_two_stacks_with_their_own_pins(environments):
    dev, prod = environments["default"], environments["prod"]
    assert dev["stack"] != prod["stack"]
    assert dev["overrides"]["ModelVersion"] != prod["overrides"]["ModelVersion"]


def test_only_unsupported_resources_are_removed(translated, adapted):
    for name, (template, dropped) in adapted.items():
        original = translated[name]["Resources"]
        removed = {d.logical_id for d in dropped if d.what == "resource"}
        assert removed == {k for k, v in original.items() if v["Type"] in UNSUPPORTED_TYPES}
        assert removed and set(template["Resources"]) == set(original) - removed
        for lid, body in template["Resources"].items():  # everything kept is deployed unchanged but for the alias
            if body["Type"] != "AWS::Lambda::Alias":
                assert references(body) <= set(template["Resources"]) | set(template["Parameters"]) | PSEUDO, lid


def test_no_reference_to_a_removed_resource_is_left(adapted, environments):
    for name, (template, dropped) in adapted.items():
        removed = {d.logical_id for d in dropped if d.what == "resource"}
        for section in ("Resources", "Outputs"):
            for key, body in template.get(section, {}).items():
                assert not references(body) & removed, f"{section}.{key}"
        stack = environments[name]["stack"]
        output = template["Outputs"]["PredictDeploymentApplication"]["Value"]
        assert output == placeholder(stack, "ServerlessDeploymentApplication")


def test_alias_loses_only_what_localstack_cannot_do(adapted):
    for _, (template, dropped) in adapted.items():
        (alias,) = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Alias"]
        body = template["Resources"][alias]
        assert "UpdatePolicy" not in body and "ProvisionedConcurrencyConfig" not in body["Properties"]
        assert {d.what for d in dropped if d.logical_id == alias} == {
            "UpdatePolicy.CodeDeployLambdaAliasUpdate",
            "Properties.ProvisionedConcurrencyConfig",
        }


def test_dropped_provisioned_concurrency_is_the_parameter(adapted, environments):
    """What the prod stack would get in AWS: PredictInstanceCount warm instances; dev gets none."""
    for name, (template, dropped) in adapted.items():
        (pc,) = [d for d in dropped if d.what == "Properties.ProvisionedConcurrencyConfig"]
        params = Evaluator.parameter_values(template, {**environments[name]["overrides"], "ModelVersion": "1"})
        value = Evaluator(template, params, {}).resolve(pc.value)
        if environments[name]["overrides"].get("PredictScalingMode") == "Provisioned":
            assert value == {"ProvisionedConcurrentExecutions": params["PredictInstanceCount"]}
        else:
            assert value is NO_VALUE


# ---- evaluator --------------------------------------------------------------------------------------------------
def test_evaluator_resolves_intrinsics():
    template = {
        "Parameters": {"Mode": {"Type": "String", "Default": "a"}, "N": {"Type": "Number"}},
        "Conditions": {"IsB": {"Fn::Equals": [{"Ref": "Mode"}, "b"]}, "NotB": {"Fn::Not": [{"Condition": "IsB"}]}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function"}, "Opt": {"Type": "X", "Condition": "IsB"}},
    }
    ev = Evaluator(
        template,
        Evaluator.parameter_values(template, {"N": "3"}),
        {"AWS::StackName": "s1"},
        ref=lambda lid: f"{lid}-physical",
        getatt=lambda lid, att: f"{lid}.{att}-value",
    )
    value = {
        "sub": {"Fn::Sub": "${AWS::StackName}/${Fn}/${Fn.Arn}/${!Literal}/${x}", "x": 1},
        "sub2": {"Fn::Sub": ["${AWS::StackName}-${x}", {"x": {"Ref": "N"}}]},
        "if": {"Fn::If": ["IsB", "b", {"Ref": "AWS::NoValue"}]},
        "join": {"Fn::Join": ["-", [{"Ref": "Mode"}, {"Fn::Select": [1, {"Fn::Split": [",", "p,q"]}]}]]},
        "list": [1, {"Fn::If": ["NotB", 2, {"Ref": "AWS::NoValue"}]}],
    }
    out = ev.resolve({k: v for k, v in value.items() if k != "sub"})
    assert out == {"sub2": "s1-3", "join": "a-q", "list": [1, 2]}
    assert (
        ev.resolve({"Fn::Sub": "${AWS::StackName}/${Fn}/${Fn.Arn}/${!Literal}"})
        == "s1/Fn-physical/Fn.Arn-value/${Literal}"
    )
    assert not ev.resource_exists("Opt") and ev.resource_exists("Fn")
    with pytest.raises(Unresolvable):
        ev.resolve({"Ref": "Nope"})
    with pytest.raises(Unresolvable):
        Evaluator.parameter_values(template, {})  # N has no default


# ---- checks on fake read-backs ----------------------------------------------------------------------------------
def deployed(adapted, translated, environments, name: str) -> stack_checks.DeployedStack:
    template, dropped = adapted[name]
    env = environments[name]
    params = Evaluator.parameter_values(template, env["overrides"])
    params["ModelVersion"] = "none"
    physical = {}
    for lid, body in template["Resources"].items():
        if body["Type"] == "AWS::Lambda::LayerVersion":
            physical[lid] = f"arn:aws:lambda:us-east-1:000000000000:layer:{body['Properties']['LayerName']}:1"
        else:
            physical[lid] = f"{env['stack']}-{lid}"
    return stack_checks.DeployedStack(
        name=env["stack"],
        template=template,
        parameters=params,
        pin_name=env["overrides"]["ModelVersion"],
        physical=physical,
        statuses={lid: "CREATE_COMPLETE" for lid in template["Resources"]},
        region="us-east-1",
        account="000000000000",
        dropped=dropped,
        original=translated[name],
    )


def test_resources_check_reports_what_is_missing_or_not_complete(adapted, translated, environments):
    st = deployed(adapted, translated, environments, "default")
    # a stack holds only the resources whose conditions hold (ModelSigningKey needs ModelSigning=kms)
    st.statuses = {lid: s for lid, s in st.statuses.items() if st.evaluator.resource_exists(lid)}
    (ok, *not_deployed) = stack_checks.check_resources(st)
    assert ok.ok and all(r.ok is None for r in not_deployed) and len(not_deployed) == len(st.dropped)
    st.statuses["PredictApi"] = "CREATE_FAILED"
    del st.statuses["ModelBucket"]
    (bad, *_) = stack_checks.check_resources(st)
    assert bad.ok is False and "ModelBucket" in bad.detail and "PredictApi=CREATE_FAILED" in bad.detail


def test_a_false_condition_resource_localstack_creates_is_reported_not_failed(adapted, translated, environments):
    # LocalStack 2026.3 creates ModelSigningKey (Condition SigningOn, false here) because MODELOPS_SIGNING_KEY
    # names it in an Fn::If branch; CloudFormation would not. A resource the template lacks still fails.
    st = deployed(adapted, translated, environments, "default")
    assert not st.evaluator.resource_exists("ModelSigningKey")
    (ok, *rest) = stack_checks.check_resources(st)
    assert ok.ok, ok.detail
    assert sorted(r.detail.split(":")[0] for r in rest if r.check == "created anyway") == sorted(
        lid for lid in st.template["Resources"] if not st.evaluator.resource_exists(lid)
    )
    st.statuses["SomethingElse"] = "CREATE_COMPLETE"
    (bad, *_) = stack_checks.check_resources(st)
    assert bad.ok is False and "not in the template: SomethingElse" in bad.detail


class FakeApiGateway:
    def __init__(self, stages: list[str]):
        self.stages = stages

    def get_stages(self, restApiId: str) -> dict[str, Any]:
        return {"item": [{"stageName": s} for s in self.stages]}


def test_api_stage_check_names_sams_implicit_stage(adapted, translated, environments):
    st = deployed(adapted, translated, environments, "default")
    stage = st.parameters["ApiStageName"]
    good = stack_checks.check_api_stages(st, lambda service: FakeApiGateway([stage]))
    assert len(good) == 2 and all(r.ok for r in good), [r.detail for r in good]  # the prediction and label APIs
    bad = stack_checks.check_api_stages(st, lambda service: FakeApiGateway(["Stage", stage]))
    assert len(bad) == 2 and all(r.ok is False and "'Stage'" in r.detail for r in bad)


def test_iam_allows_matches_wildcards():
    statements = [
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:PutParameter"],
            "Resource": "arn:aws:ssm:*:1:parameter/modelops/s/m/*",
        },
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "arn:f", "Condition": {"Bool": {"x": "y"}}},
    ]
    assert stack_checks.allows(
        statements, "ssm:PutParameter", "arn:aws:ssm:us-east-1:1:parameter/modelops/s/m/champion"
    )
    assert not stack_checks.allows(
        statements, "ssm:PutParameter", "arn:aws:ssm:us-east-1:1:parameter/modelops/t/m/champion"
    )
    assert not stack_checks.allows(statements, "lambda:InvokeFunction", "arn:f")  # conditional: not counted


def test_two_stacks_from_samconfig_share_no_name(adapted, translated, environments):
    dev = deployed(adapted, translated, environments, "default")
    prod = deployed(adapted, translated, environments, "prod")
    names, pins = stack_checks.collisions(dev, prod)
    assert names.ok, names.detail
    assert pins.ok, pins.detail
    # A name fixed in the template (as SAM gives a schedule or a layer without one) is caught.
    for st in (dev, prod):
        st.physical["MLRuntimeLayerShared"] = "arn:aws:lambda:us-east-1:000000000000:layer:MLRuntimeLayer:1"
        st.template["Resources"]["MLRuntimeLayerShared"] = {"Type": "AWS::Lambda::LayerVersion"}
    names, _ = stack_checks.collisions(dev, prod)
    assert names.ok is False and "'MLRuntimeLayer'" in names.detail


# ---- launcher ---------------------------------------------------------------------------------------------------
def test_outbound_guard_allows_loopback_only(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        code = f"""
import socket
from devtools import localstack_patches as p
p.patch_outbound_network()
socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
for target in (("192.0.2.1", 443), ("example.invalid", 443)):
    try:
        socket.create_connection(target, timeout=5)
    except OSError as e:
        assert "disabled for deploy-local" in str(e), e
    else:
        raise SystemExit("connected to " + str(target))
print(len(p.BLOCKED_OUTBOUND))
"""
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
