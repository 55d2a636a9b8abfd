"""template.yaml for the template tests: decoding and translating it, reading IAM statements out of it, and
deciding its conditions. The `template` and `translated` fixtures (module-scoped) are registered in conftest.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

NO_VALUE = {"Ref": "AWS::NoValue"}
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def load_template() -> dict[str, Any]:
    """template.yaml decoded as cfn-lint reads it (short-form intrinsics expanded), as plain JSON values."""
    from cfnlint.decode import decode

    data, errors = decode(str(TEMPLATE))
    assert not errors, errors
    return json.loads(json.dumps(data, default=str))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    """The resources of samtranslator's output for the template."""
    return sam_translate(template)["Resources"]


def flatten(statements: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every statement, a conditional one (Fn::If) counting with each of its branches that is a statement."""
    for statement in statements:
        if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
            _, yes, no = statement["Fn::If"]
            yield from flatten(branch for branch in (yes, no) if branch != NO_VALUE)
        else:
            yield statement


def policy_statements(policies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for policy in policies for s in flatten(policy["PolicyDocument"]["Statement"])]


def sam_translate(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """samtranslator's output for a decoded template, as `sam package` hands it over (code at S3 locations)."""
    import copy

    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    tpl = copy.deepcopy(template)
    for name, resource in tpl["Resources"].items():
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(resource.get("Properties", {}).get(key), str):
                resource["Properties"][key] = f"s3://artifacts/{name}-{resource['Properties'][key].strip('/')}.zip"
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    return translator.translate(tpl, dict(parameters))


def conditions_of(template: dict[str, Any], **parameters: str) -> dict[str, bool]:
    """Every condition of a (translated) template for these parameter values (defaults for the others)."""
    from devtools.cfn_eval import Evaluator

    values = Evaluator.parameter_values(template, {"ModelVersion": "1", **parameters})
    evaluator = Evaluator(template, values, {"AWS::Region": "us-east-1", "AWS::Partition": "aws"})
    return {name: evaluator.condition(name) for name in template.get("Conditions", {})}


def decide(value: Any, conditions: dict[str, bool]) -> Any:
    """The value with every Fn::If decided by `conditions` and AWS::NoValue dropped; other intrinsics stay as
    they are, so assertions can still name the resources they refer to."""
    if isinstance(value, list):
        items = [decide(v, conditions) for v in value]
        return [v for v in items if v != NO_VALUE]
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, yes, no = value["Fn::If"]
            return decide(yes if conditions[name] else no, conditions)
        items = {k: decide(v, conditions) for k, v in value.items()}
        return {k: v for k, v in items.items() if v != NO_VALUE}
    return value


def deployed_resources(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The resources CloudFormation would create for these parameters, their Fn::Ifs decided."""
    conditions = conditions_of(template, **parameters)
    return {
        name: decide(resource, conditions)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }
