"""Reading IAM statements out of a (translated) template for the template tests, and translating one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

NO_VALUE = {"Ref": "AWS::NoValue"}


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
