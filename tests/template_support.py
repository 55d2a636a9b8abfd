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


def evaluate_conditions(template: dict[str, Any], **parameters: str) -> dict[str, bool]:
    """Every condition of a (translated) template for these parameter values (template defaults otherwise), as
    CloudFormation evaluates Fn::Equals / Not / And / Or / Condition over Refs to parameters."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(parameters)
    conditions = template.get("Conditions", {})
    done: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        return node

    def truth(node: Any) -> bool:
        (fn, args), *_ = node.items()
        if fn == "Condition":
            return named(args)
        if fn == "Fn::Equals":
            return str(value(args[0])) == str(value(args[1]))
        if fn == "Fn::Not":
            return not truth(args[0])
        if fn == "Fn::And":
            return all(truth(a) for a in args)
        if fn == "Fn::Or":
            return any(truth(a) for a in args)
        raise ValueError(f"unsupported condition function {fn}")

    def named(name: str) -> bool:
        if name not in done:
            done[name] = truth(conditions[name])
        return done[name]

    return {name: named(name) for name in conditions}


def resolve_ifs(node: Any, conditions: dict[str, bool]) -> Any:
    """node with every Fn::If replaced by its branch under conditions, and AWS::NoValue dropped."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return resolve_ifs(yes if conditions[name] else no, conditions)
        out = {k: resolve_ifs(v, conditions) for k, v in node.items()}
        return {k: v for k, v in out.items() if v != NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve_ifs(v, conditions) for v in node) if item != NO_VALUE]
    return node


def deployed_resources(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The resources CloudFormation would create for these parameters, their Fn::Ifs resolved."""
    conditions = evaluate_conditions(template, **parameters)
    return {
        name: resolve_ifs(resource, conditions)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }
