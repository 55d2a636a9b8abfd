"""Architecture diagram drawn from template.yaml: a Mermaid flowchart in README.md, which GitHub renders.

The picture is data-driven. `build_model` turns template resources (and the resources SAM derives from them:
event sources, the published alias and versions, the CodeDeploy deployment) into boxes using the RULES
below; arrows come from the references between resources (Ref, GetAtt, Sub, events, deployment hooks)
filtered through the EDGES table. A resource that is not in the template is not drawn. `mermaid` writes the
model as text, one subgraph per lane, so a test can tell when the README's block no longer matches the
template. Regenerate with `make diagram`.

    python -m devtools.diagram            # rewrite the diagram block in README.md
    python -m devtools.diagram --check    # exit 1 if it is out of date
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

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
README = ROOT / "README.md"

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


def load_template(path: Path = TEMPLATE) -> dict:
    return load_template_text(path.read_text())


def load_template_text(text: str) -> dict:
    """The template with short tags (!Ref, !GetAtt, !Sub ...) in their long form, as SAM reads it."""
    return yaml_parse(text)


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


# ---- drawing: a Mermaid flowchart, which GitHub renders in the README ----------------------------------

# Colour per family (AWS architecture icon colours), applied as Mermaid classes.
COLOURS = {
    "compute": "#ED7100",
    "network": "#8C4FFF",
    "integration": "#E7157B",
    "monitor": "#0F8C7A",
    "devtools": "#3B48CC",
    "storage": "#5B8E0E",
}
BEGIN = "<!-- architecture diagram: generated by `make diagram` from template.yaml; do not edit -->"
END = "<!-- end of architecture diagram -->"


def _mermaid_id(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: a double quote would end it, so it becomes Mermaid's entity."""
    return text.replace('"', "#quot;")


def mermaid(model: Model) -> str:
    """The model as a Mermaid flowchart: one subgraph per lane, a box per node, an arrow per edge."""
    lines = ["```mermaid", "flowchart LR", f"  %% model sha256 {model.digest()}"]
    for lane, title in LANES.items():
        members = [n for n in model.nodes if n.lane == lane]
        if not members:
            continue
        lines.append(f'  subgraph {lane}["{_mermaid_text(title)}"]')
        for node in members:
            label = "<br/>".join(
                [f"<b>{_mermaid_text(node.service)}</b>", _mermaid_text(node.title)]
                + [_mermaid_text(d) for d in node.detail]
            )
            lines.append(f'    {_mermaid_id(node.id)}["{label}"]:::{node.family}')
        lines.append("  end")
    for edge in model.edges:
        label = f'|"{_mermaid_text(edge["label"])}"|' if edge["label"] else ""
        lines.append(f"  {_mermaid_id(edge['from'])} -->{label} {_mermaid_id(edge['to'])}")
    for family, colour in COLOURS.items():
        lines.append(f"  classDef {family} fill:#fff,stroke:{colour},stroke-width:2px,color:#232F3E")
    lines.append("```")
    return "\n".join(lines)


def _block(text: str) -> tuple[int, int] | None:
    start, end = text.find(BEGIN), text.find(END)
    return (start, end) if start != -1 and end > start else None


def write(template_path: Path | None = None, readme: Path | None = None) -> Model:
    """Replace the diagram block in the README with the one drawn from the template."""
    template_path, readme = template_path or TEMPLATE, readme or README
    model = build_model(load_template(template_path))
    text = readme.read_text()
    span = _block(text)
    if span is None:
        raise SystemExit(f"{readme.name} has no diagram block: add the lines {BEGIN!r} and {END!r}")
    start, end = span
    updated = f"{text[:start]}{BEGIN}\n{mermaid(model)}\n{text[end:]}"
    tmp = readme.with_suffix(".tmp")
    tmp.write_text(updated)
    tmp.replace(readme)
    return model


def stale_reason(template_path: Path | None = None, readme: Path | None = None) -> str | None:
    """Why the README's diagram does not match the template, or None when it does."""
    template_path, readme = template_path or TEMPLATE, readme or README
    text = readme.read_text() if readme.exists() else ""
    span = _block(text)
    if span is None:
        return f"{readme.name} has no diagram block"
    current = text[span[0] + len(BEGIN) : span[1]].strip()
    model = build_model(load_template(template_path))
    if f"%% model sha256 {model.digest()}" not in current:
        return f"{template_path.name} changed since the diagram was drawn"
    if current != mermaid(model):
        return "the diagram block was edited by hand"
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
    print(f"drew the diagram in {README.name} ({len(model.nodes)} boxes, {len(model.edges)} arrows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
