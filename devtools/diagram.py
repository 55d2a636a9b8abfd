"""Architecture diagram drawn from template.yaml: docs/architecture.png plus docs/architecture.json.

The picture is data-driven. `classify` turns template resources (and the resources SAM derives from them:
event sources, the published alias and versions, the CodeDeploy deployment) into boxes using the RULES
below; arrows come from the references between resources (Ref, GetAtt, Sub, events, deployment hooks)
filtered through the EDGES table. A resource that is not in the template is not drawn.

docs/architecture.json stores the model the picture was drawn from and its sha256, so a test can tell when
the committed picture no longer matches the template. Regenerate with `make diagram`.

    python -m devtools.diagram            # write docs/architecture.png and docs/architecture.json
    python -m devtools.diagram --check    # exit 1 if they are out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
PNG = ROOT / "docs" / "architecture.png"
MODEL_JSON = ROOT / "docs" / "architecture.json"

# ---- the tables ------------------------------------------------------------------------------------------

# Swim lanes, top to bottom, and the shared state column on the right.
LANES = {
    "online": "Online prediction",
    "rollout": "Canary release & A/B",
    "lifecycle": "Monitoring & retraining",
    "batch": "Batch scoring",
    "other": "Other",
    "state": "Registry & state",
}

# kind -> (lane, column, service shown in the box header, colour family)
KINDS: dict[str, tuple[str, int, str, str]] = {
    "api": ("online", 0, "API Gateway", "network"),
    "predict": ("online", 1, "Lambda", "compute"),
    "feedback": ("online", 0, "Lambda", "compute"),
    "versions": ("online", 2, "Lambda versions", "compute"),
    "capture": ("online", 3, "Data capture", "integration"),
    "alarms_rollout": ("rollout", 0, "CloudWatch alarms", "monitor"),
    "codedeploy": ("rollout", 1, "CodeDeploy", "devtools"),
    "hook": ("rollout", 2, "Lambda", "compute"),
    "flags": ("rollout", 3, "AppConfig", "monitor"),
    "alarms_lifecycle": ("lifecycle", 0, "CloudWatch alarms", "monitor"),
    "dashboard": ("lifecycle", 0, "CloudWatch", "monitor"),
    "rule": ("lifecycle", 1, "EventBridge", "integration"),
    "monitor": ("lifecycle", 1, "Lambda", "compute"),
    "retrain": ("lifecycle", 2, "Lambda", "compute"),
    "topic": ("lifecycle", 3, "SNS", "integration"),
    "schedule": ("batch", 0, "EventBridge Scheduler", "integration"),
    "statemachine": ("batch", 1, "Step Functions", "integration"),
    "batch": ("batch", 2, "Lambda", "compute"),
    "alarms_ops": ("batch", 1, "CloudWatch alarms", "monitor"),
    "function": ("other", 1, "Lambda", "compute"),
    "ssm": ("state", 0, "SSM Parameter Store", "monitor"),
    "bucket": ("state", 1, "S3", "storage"),
    "layers": ("state", 2, "Lambda layers", "compute"),
}

# Functions are told apart by their code folder (functions/<name>/), first match wins.
FUNCTION_RULES = [
    (r"hook", "hook"),
    (r"predict", "predict"),
    (r"feedback", "feedback"),
    (r"batch", "batch"),
    (r"retrain", "retrain"),
    (r"monitor|capture|drift|quality", "monitor"),
]

# Plain resource types -> kind. Alarms are grouped by what they feed (see _alarm_kind).
TYPE_RULES = {
    "AWS::Serverless::Api": "api",
    "AWS::ApiGateway::RestApi": "api",
    "AWS::Serverless::HttpApi": "api",
    "AWS::Serverless::StateMachine": "statemachine",
    "AWS::StepFunctions::StateMachine": "statemachine",
    "AWS::Scheduler::Schedule": "schedule",
    "AWS::Events::Rule": "rule",
    "AWS::SNS::Topic": "topic",
    "AWS::SSM::Parameter": "ssm",
    "AWS::S3::Bucket": "bucket",
    "AWS::CloudWatch::Dashboard": "dashboard",
    "AWS::AppConfig::Application": "flags",
    "AWS::AppConfig::Environment": "flags",
    "AWS::AppConfig::ConfigurationProfile": "flags",
    "AWS::AppConfig::HostedConfigurationVersion": "flags",
    "AWS::AppConfig::Deployment": "flags",
    "AWS::KinesisFirehose::DeliveryStream": "capture",
    "AWS::Logs::SubscriptionFilter": "capture",
    "AWS::Serverless::LayerVersion": "layers",
}

# Order of boxes that share a column, top to bottom.
STACK_ORDER = ["api", "alarms_lifecycle", "rule", "schedule", "predict", "feedback", "statemachine", "batch", "monitor"]

# Kinds whose resources share one box (one box per kind and lane).
GROUPED = {"alarms_rollout", "alarms_lifecycle", "alarms_ops", "flags", "capture", "layers", "dashboard", "ssm"}

# When a resource of kind A refers to one of kind B, draw an arrow with this label.
# (A, B) -> (label, reversed): reversed draws B -> A (for example the API refers to nothing, but the predict
# function's Api event refers to the API, and requests flow API -> function).
EDGES: dict[tuple[str, str], tuple[str, bool]] = {
    ("predict", "api"): ("", True),  # the function box already names its routes
    ("feedback", "api"): ("", True),
    ("predict", "versions"): ("alias live", False),
    ("predict", "ssm"): ("champion version", True),
    ("predict", "flags"): ("A/B split", True),
    ("predict", "capture"): ("requests", False),
    ("codedeploy", "predict"): ("shifts alias weights", False),
    ("codedeploy", "hook"): ("PreTraffic", False),
    ("codedeploy", "alarms_rollout"): ("rollback", True),
    ("hook", "predict"): ("golden requests", False),
    ("hook", "versions"): ("golden requests", False),
    ("schedule", "statemachine"): ("cron + time zone", False),
    ("schedule", "batch"): ("cron + time zone", False),
    ("schedule", "retrain"): ("scheduled retrain", False),
    ("schedule", "monitor"): ("on schedule", False),
    ("statemachine", "batch"): ("invokes", False),
    ("batch", "bucket"): ("input → predictions", False),
    ("alarms_ops", "statemachine"): ("failed runs", True),
    ("alarms_ops", "batch"): ("errors", True),
    ("alarms_ops", "predict"): ("errors", True),
    ("alarms_ops", "api"): ("errors", True),
    ("alarms_ops", "retrain"): ("errors", True),
    ("rule", "alarms_lifecycle"): ("ALARM", True),
    ("rule", "retrain"): ("events", False),
    ("rule", "monitor"): ("triggers", False),
    ("monitor", "alarms_lifecycle"): ("metrics", False),
    ("retrain", "topic"): ("decision", False),
    ("retrain", "ssm"): ("promotes champion", False),
    ("retrain", "bucket"): ("registers candidate", False),
    ("retrain", "codedeploy"): ("canary deploy", False),
    ("feedback", "bucket"): ("labels", False),
    ("capture", "predict"): ("log lines", True),
    ("monitor", "bucket"): ("captures + labels", True),
    ("capture", "bucket"): ("captured requests", False),
    ("bucket", "versions"): ("model at init", False),
}

# Arrows between the shared column and a function with published versions attach to the versions box:
# the model a version serves is fixed when the version is published.
ATTACH_TO_VERSIONS = {"ssm", "bucket"}

# Resources the test requires to be represented somewhere.
SIGNIFICANT_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Lambda::Function",
    "AWS::Serverless::Api",
    "AWS::ApiGateway::RestApi",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::StateMachine",
    "AWS::StepFunctions::StateMachine",
    "AWS::Scheduler::Schedule",
    "AWS::Events::Rule",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::CloudWatch::Alarm",
    "AWS::SSM::Parameter",
    "AWS::CloudWatch::Dashboard",
}
SCHEDULE_EVENTS = {"Schedule", "ScheduleV2"}
RULE_EVENTS = {"EventBridgeRule", "CloudWatchEvent"}
API_EVENTS = {"Api", "HttpApi"}
LIFECYCLE_WORDS = re.compile(r"drift|psi|quality|accuracy|auc|mae|rmse", re.I)


# ---- reading the template ----------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !GetAtt, !Sub ...) into their long form."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def references(obj: Any) -> set[str]:
    """Logical ids that `obj` refers to through Ref, GetAtt or Sub (pseudo parameters excluded)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value.split(".", 1)[0])  # `!Ref Fn.Alias` / `Fn.Version` name the function
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                names = {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text))}
                found |= names - set(variables)
                found |= references(variables)
            else:
                found |= references(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= references(item)
    return {f for f in found if not f.startswith("AWS::")}


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


# ---- the model ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    id: str
    kind: str
    lane: str
    column: int
    service: str
    family: str
    title: str
    detail: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)  # template paths this box stands for


@dataclass
class Model:
    nodes: list[Node]
    edges: list[dict]

    def to_dict(self) -> dict:
        return {"nodes": [asdict(n) for n in self.nodes], "edges": self.edges}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _function_kind(logical_id: str, props: dict) -> str:
    code = str(props.get("CodeUri", "")).rstrip("/").rsplit("/", 1)[-1] or logical_id
    for pattern, kind in FUNCTION_RULES:
        if re.search(pattern, code, re.I) or re.search(pattern, logical_id, re.I):
            return kind
    return "function"


def _deployment_alarm_ids(resources: dict) -> set[str]:
    ids: set[str] = set()
    for res in resources.values():
        pref = (res.get("Properties") or {}).get("DeploymentPreference") or {}
        ids |= references(pref.get("Alarms", []))
    return ids


def _rule_alarm_ids(resources: dict) -> set[str]:
    ids: set[str] = set()
    for res in resources.values():
        props = res.get("Properties") or {}
        patterns = (
            [props.get("EventPattern")]
            if res.get("Type") == "AWS::Events::Rule"
            else [
                (ev.get("Properties") or {}).get("Pattern")
                for ev in (props.get("Events") or {}).values()
                if ev.get("Type") in RULE_EVENTS
            ]
        )
        for pattern in patterns:
            ids |= {r for r in references(pattern) if resources.get(r, {}).get("Type") == "AWS::CloudWatch::Alarm"}
    return ids


def _alarm_kind(logical_id: str, props: dict, deployment: set[str], rule_targets: set[str]) -> str:
    if logical_id in deployment:
        return "alarms_rollout"
    text = " ".join([logical_id, *_strings(props.get("MetricName", "")), *_strings(props.get("AlarmDescription", ""))])
    if logical_id in rule_targets or LIFECYCLE_WORDS.search(text):
        return "alarms_lifecycle"
    return "alarms_ops"


def _short(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def build_model(template: dict) -> Model:
    resources: dict = template.get("Resources") or {}
    parameters: dict = template.get("Parameters") or {}
    deployment_alarms = _deployment_alarm_ids(resources)
    rule_alarms = _rule_alarm_ids(resources)

    nodes: dict[str, Node] = {}
    owner: dict[str, str] = {}  # template path -> node id
    refs: dict[str, set[str]] = defaultdict(set)  # node id -> template paths it refers to
    synthetic: list[tuple[str, str]] = []  # (from node, to node) relations SAM implies

    def add(node_id: str, kind: str, title: str, detail: list[str], path: str, lane: str | None = None) -> Node:
        default_lane, column, service, family = KINDS[kind]
        lane = lane or default_lane
        if kind in GROUPED:
            node_id = kind if lane == default_lane else f"{kind}:{lane}"
        node = nodes.get(node_id)
        if node is None:
            node = nodes[node_id] = Node(node_id, kind, lane, column, service, family, title, list(detail))
        elif kind in GROUPED:
            node.detail.extend(detail)
        node.resources.append(path)
        owner[path] = node_id
        return node

    for logical_id, res in resources.items():
        rtype = res.get("Type", "")
        props = res.get("Properties") or {}
        if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            kind = _function_kind(logical_id, props)
            memory = props.get("MemorySize", (template.get("Globals") or {}).get("Function", {}).get("MemorySize", 128))
            detail = [f"{_literal(memory, parameters)} MB"]
            node = add(logical_id, kind, logical_id, detail, logical_id)
            refs[node.id] |= references(props)
            alias = props.get("AutoPublishAlias")
            if alias:
                alias_name = alias if isinstance(alias, str) else "alias"
                node.detail = [f"alias: {alias_name}", *node.detail]
                versions = add(
                    f"{logical_id}:versions",
                    "versions",
                    f"{logical_id} versions",
                    ["one per model version", "immutable once published"],
                    f"{logical_id}/AutoPublishAlias",
                )
                synthetic.append((node.id, versions.id))
                owner[f"{logical_id}Alias{alias_name}"] = versions.id  # resources SAM generates
                owner[f"{logical_id}Version"] = versions.id
            pref = props.get("DeploymentPreference")
            if pref:
                type_text = _literal(pref.get("Type"), parameters)
                deploy = add(
                    f"{logical_id}:codedeploy",
                    "codedeploy",
                    "Deployment group",
                    [type_text],
                    f"{logical_id}/DeploymentPreference",
                )
                synthetic.append((deploy.id, node.id))
                owner[f"{logical_id}DeploymentGroup"] = deploy.id
                owner["ServerlessDeploymentApplication"] = deploy.id
                for hook in references(pref.get("Hooks", {})):
                    synthetic.append((deploy.id, f"@{hook}"))
                for alarm in references(pref.get("Alarms", [])):
                    synthetic.append((deploy.id, f"@{alarm}"))
            for event_name, event in (props.get("Events") or {}).items():
                _add_event(add, synthetic, refs, node, logical_id, event_name, event, parameters)
        elif rtype == "AWS::CloudWatch::Alarm":
            continue  # after the resources they watch, whose lane they join
        elif rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            node = add(logical_id, "statemachine", logical_id, _state_machine_detail(props), logical_id)
            refs[node.id] |= references(props)
            for event_name, event in (props.get("Events") or {}).items():
                _add_event(add, synthetic, refs, node, logical_id, event_name, event, parameters)
        elif rtype in TYPE_RULES:
            kind = TYPE_RULES[rtype]
            title = {
                "bucket": f"{logical_id}",
                "layers": "Layers",
                "flags": "Feature flags",
                "capture": "Request capture",
                "dashboard": "Dashboard",
            }.get(kind, logical_id)
            detail = _detail(kind, logical_id, props, parameters)
            node = add(logical_id, kind, title, detail, logical_id)
            refs[node.id] |= references(props)

    for logical_id, res in resources.items():
        if res.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = res.get("Properties") or {}
        kind = _alarm_kind(logical_id, props, deployment_alarms, rule_alarms)
        watched = [nodes[owner[r]].lane for r in sorted(references(props)) if r in owner]
        lane = watched[0] if kind == "alarms_ops" and watched and watched[0] != "state" else None
        node = add(logical_id, kind, "Alarms", [_short(logical_id)], logical_id, lane=lane)
        if lane:
            node.column = KINDS[kind][1]
        refs[node.id] |= references(props)

    # The champion pin: an SSM parameter resolved by the template (a parameter of SSM type or {{resolve:ssm:}}).
    for name, param in parameters.items():
        if str(param.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            path = str(param.get("Default", name))
            add("ssm", "ssm", "Champion pin", [_short(path)], f"Parameters/{name}")
            for node_id, targets in refs.items():
                if name in targets:
                    refs[node_id].add(f"Parameters/{name}")
    for logical_id, res in resources.items():
        for text in _strings(res.get("Properties") or {}):
            for path in re.findall(r"\{\{resolve:ssm:([^}:]+)", text):
                add("ssm", "ssm", "Champion pin", [_short(path)], f"resolve:ssm:{path}")
                if logical_id in owner:
                    refs[owner[logical_id]].add(f"resolve:ssm:{path}")
    if "ssm" in nodes:
        nodes["ssm"].detail = sorted(set(nodes["ssm"].detail))
        nodes["ssm"].title = "Champion pin" if "champion" in " ".join(nodes["ssm"].detail) else "Parameters"
    for node_id, targets in refs.items():  # IAM statements naming a champion path count as a reference to it
        texts = " ".join(_strings([resources.get(p, {}).get("Properties") for p in nodes[node_id].resources]))
        if "ssm" in nodes and re.search(r"parameter/modelops|ssm:PutParameter|SSMParameter", texts):
            targets.add(nodes["ssm"].resources[0])

    for node in nodes.values():  # a function's API routes share one line
        routes = [d for d in node.detail if re.match(r"^([A-Z]+ )?/", d)]
        if len(routes) > 1:
            node.detail = [d for d in node.detail if d not in routes] + [" ".join(routes)]
    edges = _edges(nodes, owner, refs, synthetic)
    ordered = sorted(nodes.values(), key=lambda n: (list(LANES).index(n.lane), n.column, n.id))
    for node in ordered:
        if node.kind in GROUPED:
            node.detail = sorted(set(node.detail))
            node.title = {
                "alarms_rollout": "Rollback alarms",
                "alarms_lifecycle": "Drift & quality alarms",
                "alarms_ops": "Operational alarms",
            }.get(node.kind, node.title)
            if node.kind.startswith("alarms"):
                node.title = f"{node.title} ({len(node.resources)})"
    return Model(ordered, edges)


def _add_event(
    add, synthetic, refs, node: Node, logical_id: str, event_name: str, event: dict, parameters: dict
) -> None:
    etype = event.get("Type")
    eprops = event.get("Properties") or {}
    path = f"{logical_id}/Events/{event_name}"
    if etype in SCHEDULE_EVENTS:
        detail = [_literal(eprops.get("ScheduleExpression", eprops.get("Schedule")), parameters)]
        if eprops.get("ScheduleExpressionTimezone") is not None:
            detail.append(_literal(eprops["ScheduleExpressionTimezone"], parameters))
        if "State" in eprops and _literal(eprops["State"], parameters).upper() == "DISABLED":
            detail.append("disabled unless enabled")
        elif eprops.get("Enabled") is False:
            detail.append("disabled")
        sched = add(f"{logical_id}:{event_name}", "schedule", event_name, detail, path)
        if etype == "Schedule":
            sched.service = "EventBridge rule (UTC)"  # ScheduleV2 is EventBridge Scheduler, with time zones
        _beside(sched, node)
        synthetic.append((sched.id, node.id))
    elif etype in RULE_EVENTS:
        rule = add(f"{logical_id}:{event_name}", "rule", event_name, _pattern_detail(eprops.get("Pattern")), path)
        _beside(rule, node)
        synthetic.append((rule.id, node.id))
        refs[rule.id] |= references(eprops.get("Pattern"))
    elif etype in API_EVENTS:
        api_refs = references(eprops.get("RestApiId") or eprops.get("ApiId"))
        method = str(eprops.get("Method", "")).upper()
        route = str(eprops.get("Path", "")) if method in ("ANY", "") else f"{method} {eprops.get('Path', '')}"
        if api_refs:
            refs[node.id] |= api_refs
            node.detail.append(route)
        else:
            api = add("ServerlessRestApi", "api", "Implicit REST API", [], path)
            api.detail.append(route)
            synthetic.append((api.id, node.id))


def _literal(value: Any, parameters: dict) -> str:
    """A property as text: literals as they are, a parameter reference as its default."""
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        default = (parameters.get(value["Ref"]) or {}).get("Default")
        return f"{default}" if default is not None else f"parameter {value['Ref']}"
    if isinstance(value, dict):
        return "set by a condition" if "Fn::If" in value else "computed"
    return str(value)


def _beside(source: Node, target: Node) -> None:
    """An event source sits in its target's lane, one column to the left."""
    source.lane, source.column = target.lane, max(target.column - 1, 0)


def _state_machine_detail(props: dict) -> list[str]:
    text = json.dumps(props.get("Definition") or {})
    uri = props.get("DefinitionUri")
    if isinstance(uri, str) and (ROOT / uri).is_file():
        text += (ROOT / uri).read_text()
    detail = [str(props.get("Type", "STANDARD")).lower() + " workflow"]
    if '"DISTRIBUTED"' in text:
        detail.append("Distributed Map fan-out")
    return detail


def _pattern_detail(pattern: Any) -> list[str]:
    text = json.dumps(pattern or {})
    if "CloudWatch Alarm State Change" in text:
        return ["alarm state → ALARM"]
    if "aws.codedeploy" in text:
        return ["CodeDeploy deployment result"]
    return ["event pattern"]


def _detail(kind: str, logical_id: str, props: dict, parameters: dict) -> list[str]:
    if kind == "bucket":
        return ["model registry", "batch data, feedback"]
    if kind == "api":
        auth = props.get("Auth") or {}
        text = json.dumps(auth)
        if auth.get("ApiKeyRequired") is not None or "UsagePlan" in auth:
            return ["REST, API key + usage plan"]
        return ["REST, IAM auth"] if "AWS_IAM" in text else ["REST"]
    if kind == "rule":
        return _pattern_detail(props.get("EventPattern"))
    if kind == "schedule":
        return [str(props.get("ScheduleExpression", "schedule"))]
    if kind == "layers":
        return [logical_id]
    if kind in ("flags", "capture", "dashboard"):
        return [_short(logical_id)]
    if kind == "ssm":
        name = props.get("Name")
        return [_short(name if isinstance(name, str) else logical_id)]
    return []


def _edges(
    nodes: dict[str, Node], owner: dict[str, str], refs: dict[str, set[str]], synthetic: list[tuple[str, str]]
) -> list[dict]:
    relations: set[tuple[str, str]] = set()
    for node_id, targets in refs.items():
        for target in targets:
            if target in owner and owner[target] != node_id:
                relations.add((node_id, owner[target]))
    for src, dst in synthetic:
        dst = owner.get(dst[1:], "") if dst.startswith("@") else dst
        if dst in nodes and src in nodes:
            relations.add((src, dst))
    edges: dict[tuple[str, str], str] = {}
    for src, dst in sorted(relations):
        rule = EDGES.get((nodes[src].kind, nodes[dst].kind))
        if rule is None:
            continue
        label, flip = rule
        a, b = (dst, src) if flip else (src, dst)
        if nodes[a].kind in ATTACH_TO_VERSIONS and f"{b}:versions" in nodes:
            b = f"{b}:versions"
        edges[(a, b)] = label
    # The model reaches a version through the alias: draw S3 -> versions once a function with an alias exists.
    for node in nodes.values():
        if node.kind == "versions" and "bucket" in {n.kind for n in nodes.values()}:
            bucket = next(n for n in nodes.values() if n.kind == "bucket")
            edges[(bucket.id, node.id)] = EDGES[("bucket", "versions")][0]
    return [{"from": a, "to": b, "label": label} for (a, b), label in sorted(edges.items())]


# ---- drawing ------------------------------------------------------------------------------------------------

COLOURS = {
    "compute": "#ED7100",
    "network": "#8C4FFF",
    "integration": "#E7157B",
    "monitor": "#0F8C7A",
    "devtools": "#3B48CC",
    "storage": "#5B8E0E",
}
BOX_W, BOX_H, COL_W, ROW_H, LANE_PAD, LANE_GAP = 3.0, 1.35, 3.9, 1.9, 0.6, 0.3
TRACK = 0.28  # spacing of the vertical arrow tracks between the lanes and the shared column


def _order_by_neighbours(model: Model, stacks: dict[tuple[str, int], list[Node]], columns: int) -> None:
    """Put each box level with the boxes it connects to in the neighbouring column (barycentre ordering),
    so arrows run straight instead of crossing other boxes."""
    by_id = {n.id: n for n in model.nodes}
    links: dict[str, set[str]] = defaultdict(set)
    for edge in model.edges:
        links[edge["from"]].add(edge["to"])
        links[edge["to"]].add(edge["from"])

    def reorder(lane: str, column: int, neighbour_column: int) -> None:
        stack = stacks[(lane, column)]
        rows = {n.id: i for i, n in enumerate(stacks[(lane, neighbour_column)])}

        def key(item: tuple[int, Node]) -> float:
            index, node = item
            linked = [rows[other] for other in links[node.id] if other in rows and by_id[other].lane == lane]
            return sum(linked) / len(linked) if linked else index + 0.5

        stack[:] = [n for _, n in sorted(enumerate(stack), key=key)]

    for lane in {n.lane for n in model.nodes if n.lane != "state"}:
        for _ in range(2):
            for column in range(1, columns):
                reorder(lane, column, column - 1)
            reorder(lane, 0, 1)


def layout(model: Model) -> tuple[dict[str, tuple[float, float]], list[tuple[str, float, float]], float, float]:
    """Box centres, lane bands (lane, y_bottom, y_top), figure width and height in layout units."""
    lanes = [lane for lane in LANES if lane != "state" and any(n.lane == lane for n in model.nodes)]
    columns = max([n.column for n in model.nodes if n.lane != "state"] + [0]) + 1
    state_x = _gutter_x(columns) + (len(_state_edges(model)) + 1) * TRACK + 0.3
    stacks: dict[tuple[str, int], list[Node]] = defaultdict(list)
    for node in model.nodes:
        stacks[(node.lane, node.column)].append(node)
    for stack in stacks.values():  # within a column: the main flow first, side boxes (dashboards) last
        stack.sort(key=lambda n: (STACK_ORDER.index(n.kind) if n.kind in STACK_ORDER else len(STACK_ORDER), n.id))
    _order_by_neighbours(model, stacks, columns)
    centres: dict[str, tuple[float, float]] = {}
    bands = []
    y = 0.0
    for lane in reversed(lanes):
        rows = max(len(stacks[(lane, c)]) for c in range(columns))
        height = rows * ROW_H + 2 * LANE_PAD
        for c in range(columns):
            stack = stacks[(lane, c)]
            top = y + height - LANE_PAD  # short columns hang from the top row, where the main flow runs
            for i, node in enumerate(stack):
                centres[node.id] = (0.9 + c * COL_W + BOX_W / 2, top - ROW_H * (i + 0.5) - 0.12)
        bands.append((lane, y, y + height))
        y += height + LANE_GAP
    total_h = max(y - LANE_GAP, 1.0)
    state_nodes = sorted((n for n in model.nodes if n.lane == "state"), key=lambda n: n.column)
    if state_nodes:
        # Each shared box sits level with the boxes it talks to, then boxes are pushed apart to not overlap.
        wanted = {}
        bottom_limit, top_limit, gap = BOX_H / 2 + 0.3, total_h - 0.6 - BOX_H / 2, BOX_H + 0.35
        for i, node in enumerate(state_nodes):
            ys = [
                centres[e["to"] if e["from"] == node.id else e["from"]][1]
                for e in model.edges
                if node.id in (e["from"], e["to"]) and (e["to"] if e["from"] == node.id else e["from"]) in centres
            ]
            wanted[node.id] = sum(ys) / len(ys) if ys else bottom_limit - i  # unconnected boxes go to the bottom
        order = sorted(state_nodes, key=lambda n: -wanted[n.id])
        ys_placed: list[float] = []
        for node in order:
            y_wanted = min(wanted[node.id], top_limit)
            ys_placed.append(min(y_wanted, ys_placed[-1] - gap) if ys_placed else y_wanted)
        if ys_placed[-1] < bottom_limit:  # pushed below the bottom: move up, spread evenly if it no longer fits
            ys_placed = [y + bottom_limit - ys_placed[-1] for y in ys_placed]
            if ys_placed[0] > top_limit:
                step = (top_limit - bottom_limit) / max(len(ys_placed) - 1, 1)
                ys_placed = [top_limit - step * k for k in range(len(ys_placed))]
        for node, y_node in zip(order, ys_placed, strict=True):
            centres[node.id] = (state_x + BOX_W / 2, y_node)
        bands.append(("state", 0.0, total_h))
    width = state_x + (BOX_W + 0.6 if state_nodes else 0)
    return centres, bands, width, total_h


def _gutter_x(columns: int) -> float:
    return 0.7 + columns * COL_W


def _state_edges(model: Model) -> list[dict]:
    """Arrows between a lane box and a shared-column box; they are routed along their own vertical tracks."""
    state = {n.id for n in model.nodes if n.lane == "state"}
    return [e for e in model.edges if (e["from"] in state) != (e["to"] in state)]


def _routes(model: Model, centres: dict[str, tuple[float, float]], columns: int) -> dict[int, tuple[list, tuple]]:
    """Polyline and label point of every lane <-> shared-column arrow: up out of the lane box, right along the
    gap above it, down or up its own track, into the side of the shared box."""
    state = {n.id for n in model.nodes if n.lane == "state"}
    edges = _state_edges(model)

    def lane_end(e: dict) -> str:
        return e["to"] if e["from"] in state else e["from"]

    def state_end(e: dict) -> str:
        return e["from"] if e["from"] in state else e["to"]

    by_height = sorted(edges, key=lambda e: (-centres[lane_end(e)][1], centres[lane_end(e)][0]))
    track = {id(e): i for i, e in enumerate(by_height)}
    per_lane_box: dict[str, list[dict]] = defaultdict(list)
    per_state_box: dict[str, list[dict]] = defaultdict(list)
    for e in by_height:
        per_lane_box[lane_end(e)].append(e)
        per_state_box[state_end(e)].append(e)
    routes = {}
    for e in edges:
        (mx, my), (sx, sy) = centres[lane_end(e)], centres[state_end(e)]
        j = per_lane_box[lane_end(e)].index(e)
        siblings = per_state_box[state_end(e)]
        i = siblings.index(e)
        entry_y = sy if len(siblings) == 1 else sy + 0.4 - 0.8 * i / (len(siblings) - 1)
        px = mx + BOX_W / 2 - 0.4 - 0.55 * j
        lane_y = my + BOX_H / 2 + 0.14 + 0.24 * j
        gx = _gutter_x(columns) + TRACK * (track[id(e)] + 1)
        points = [(px, my + BOX_H / 2), (px, lane_y), (gx, lane_y), (gx, entry_y), (sx - BOX_W / 2, entry_y)]
        if e["from"] in state:
            points.reverse()
        routes[id(e)] = (points, ((px + gx) / 2, lane_y + 0.12))
    return routes


def _label_point(
    p1: tuple[float, float], p2: tuple[float, float], rad: float, c1: tuple[float, float], c2: tuple[float, float]
) -> tuple[float, float]:
    """Middle of the part of the arrow that is visible between the two boxes."""
    (x1, y1), (x2, y2) = p1, p2
    cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)  # arc3 control point

    def inside(x: float, y: float, c: tuple[float, float]) -> bool:
        return abs(x - c[0]) < BOX_W / 2 + 0.05 and abs(y - c[1]) < BOX_H / 2 + 0.05

    visible = []
    for i in range(201):
        t = i / 200
        x = (1 - t) ** 2 * x1 + 2 * (1 - t) * t * cx + t**2 * x2
        y = (1 - t) ** 2 * y1 + 2 * (1 - t) * t * cy + t**2 * y2
        if not inside(x, y, c1) and not inside(x, y, c2):
            visible.append((x, y))
    if not visible:
        return (x1 + x2) / 2, (y1 + y2) / 2
    return visible[len(visible) // 2]


def render(model: Model, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    centres, bands, width, height = layout(model)
    columns = max([n.column for n in model.nodes if n.lane != "state"] + [0]) + 1
    scale = 0.78
    fig = plt.figure(figsize=(width * scale, (height + 1.3) * scale), dpi=130)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-0.25, height + 1.05)
    ax.axis("off")
    ax.text(0.25, height + 0.62, "modelops on AWS", fontsize=17, fontweight="bold", color="#232F3E", va="center")
    ax.text(
        0.25,
        height + 0.2,
        "generated from template.yaml by devtools/diagram.py",
        fontsize=9,
        color="#687078",
        va="center",
    )

    for lane, y0, y1 in bands:
        if lane == "state":
            x0, w = width - BOX_W - 0.9, BOX_W + 0.6
        else:
            x0, w = 0.15, columns * COL_W + 0.55
        ax.add_patch(
            FancyBboxPatch(
                (x0, y0),
                w,
                y1 - y0,
                boxstyle="round,pad=0,rounding_size=0.18",
                facecolor="#F2F3F3" if lane != "state" else "#EEF4E6",
                edgecolor="#D5DBDB",
                linewidth=1,
                zorder=0,
            )
        )
        if lane == "state":
            ax.text(
                x0 + w / 2,
                y1 - 0.28,
                LANES[lane],
                fontsize=10.5,
                fontweight="bold",
                color="#232F3E",
                ha="center",
                va="center",
            )
        else:
            ax.text(
                0.42,
                (y0 + y1) / 2,
                LANES[lane],
                rotation=90,
                fontsize=10.5,
                fontweight="bold",
                color="#232F3E",
                ha="center",
                va="center",
            )

    boxes = {}
    for node in model.nodes:
        cx, cy = centres[node.id]
        x0, y0 = cx - BOX_W / 2, cy - BOX_H / 2
        colour = COLOURS[node.family]
        box = FancyBboxPatch(
            (x0, y0),
            BOX_W,
            BOX_H,
            boxstyle="round,pad=0,rounding_size=0.1",
            facecolor="white",
            edgecolor=colour,
            linewidth=1.6,
            zorder=3,
        )
        ax.add_patch(box)
        boxes[node.id] = box
        ax.add_patch(
            FancyBboxPatch(
                (x0, y0 + BOX_H - 0.32),
                BOX_W,
                0.32,
                boxstyle="round,pad=0,rounding_size=0.1",
                facecolor=colour,
                edgecolor=colour,
                linewidth=1.6,
                zorder=4,
            )
        )
        ax.add_patch(plt.Rectangle((x0, y0 + BOX_H - 0.32), BOX_W, 0.12, facecolor=colour, edgecolor="none", zorder=4))
        ax.text(
            x0 + 0.12,
            y0 + BOX_H - 0.16,
            node.service,
            fontsize=8.5,
            color="white",
            fontweight="bold",
            va="center",
            zorder=5,
        )
        ax.text(
            cx,
            y0 + BOX_H - 0.52,
            _short(node.title, 30),
            fontsize=9.5,
            fontweight="bold",
            color="#232F3E",
            ha="center",
            va="center",
            zorder=5,
        )
        lines = node.detail[:3] if len(node.detail) <= 3 else [*node.detail[:2], f"+ {len(node.detail) - 2} more"]
        for i, line in enumerate(lines):
            ax.text(
                cx,
                y0 + BOX_H - 0.76 - 0.18 * i,
                _short(line, 38),
                fontsize=7.6,
                color="#545B64",
                ha="center",
                va="center",
                zorder=5,
            )

    labelled: set[tuple[str, str]] = set()
    label_style = {
        "fontsize": 7.4,
        "color": "#232F3E",
        "ha": "center",
        "va": "center",
        "zorder": 6,
        "bbox": {"boxstyle": "round,pad=0.18", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
    }
    routes = _routes(model, centres, columns)
    for edge in model.edges:
        if id(edge) in routes:
            points, (lx, ly) = routes[id(edge)]
            ax.add_patch(
                FancyArrowPatch(
                    path=MplPath(points),
                    arrowstyle="-|>",
                    mutation_scale=13,
                    linewidth=1.3,
                    color="#545B64",
                    shrinkA=0,
                    shrinkB=0,
                    zorder=2,
                    joinstyle="round",
                    capstyle="round",
                )
            )
            ax.text(lx, ly, edge["label"], **label_style)
            continue
        (x1, y1), (x2, y2) = centres[edge["from"]], centres[edge["to"]]
        same_row = abs(y1 - y2) < 0.01
        rad = 0.0 if same_row or abs(x1 - x2) < 0.01 else (0.12 if x2 > x1 else -0.12)
        if same_row and abs(x2 - x1) > COL_W * 1.5:
            rad = -0.18  # hop over the box in between
        arrow = FancyArrowPatch(
            (x1, y1),
            (x2, y2),
            patchA=boxes[edge["from"]],
            patchB=boxes[edge["to"]],
            arrowstyle="-|>",
            mutation_scale=13,
            linewidth=1.3,
            color="#545B64",
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=3,
            shrinkB=3,
            zorder=2,
        )
        ax.add_patch(arrow)
        if not edge["label"] or {(edge["to"], edge["label"]), (edge["from"], edge["label"])} & labelled:
            continue  # several arrows into or out of one box with the same meaning: label it once
        labelled |= {(edge["to"], edge["label"]), (edge["from"], edge["label"])}
        mx, my = _label_point((x1, y1), (x2, y2), rad, centres[edge["from"]], centres[edge["to"]])
        if same_row and abs(x2 - x1) < COL_W * 1.5:
            my += 0.17  # short arrow between neighbours: label above it
        ax.text(mx, my, edge["label"], **label_style)

    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, facecolor="white", metadata={"Software": None})
    plt.close(fig)
    tmp.replace(png)


def write(template_path: Path | None = None, png: Path | None = None, model_json: Path | None = None) -> Model:
    template_path, png, model_json = template_path or TEMPLATE, png or PNG, model_json or MODEL_JSON
    model = build_model(load_template(template_path))
    render(model, png)
    record = {
        "template": template_path.name,
        "model_sha256": model.digest(),
        "png_sha256": hashlib.sha256(png.read_bytes()).hexdigest(),
        "model": model.to_dict(),
    }
    tmp = model_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    tmp.replace(model_json)
    return model


def stale_reason(
    template_path: Path | None = None, png: Path | None = None, model_json: Path | None = None
) -> str | None:
    """Why the committed picture does not match the template, or None when it does."""
    template_path, png, model_json = template_path or TEMPLATE, png or PNG, model_json or MODEL_JSON
    if not model_json.exists() or not png.exists():
        return f"{png.name} or {model_json.name} is missing"
    record = json.loads(model_json.read_text())
    if record.get("model_sha256") != build_model(load_template(template_path)).digest():
        return f"{template_path.name} changed since the diagram was drawn"
    if record.get("png_sha256") != hashlib.sha256(png.read_bytes()).hexdigest():
        return f"{png.name} was changed by hand"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.diagram", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed diagram is out of date")
    args = parser.parse_args(argv)
    if args.check:
        reason = stale_reason()
        if reason:
            print(f"architecture diagram is out of date: {reason}; run `make diagram`", file=sys.stderr)
            return 1
        print("architecture diagram is up to date")
        return 0
    model = write()
    print(f"wrote {PNG.relative_to(ROOT)} ({len(model.nodes)} boxes, {len(model.edges)} arrows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
