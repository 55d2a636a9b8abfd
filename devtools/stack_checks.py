"""Read a deployed modelops stack back with boto3 and compare it with what the template and its parameters mean.

Each check returns Results: ok (matches), failed (a difference, with the expected and the actual value), or
unchecked (the target cannot show it, with the reason). Expected values come from the deployed template
(devtools.cfn_eval resolves its intrinsics with the stack's parameters and physical ids) and, for the
properties that matter most, straight from the parameters, so a transform that resolved a value wrongly
shows up too. ``collisions`` compares two stacks deployed into one account.

Used by devtools.deploy_local against LocalStack; nothing here is LocalStack-specific except the explicit
``localstack`` flag, which turns LocalStack's known gaps into "unchecked" results instead of failures.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cfn_eval import Evaluator, Unresolvable
from .localstack_patches import Dropped

ROOT = Path(__file__).resolve().parents[1]
PIN_PARAMETER = "ModelVersion"  # the SSM-typed parameter naming the stack's champion pin


@dataclass
class Result:
    stack: str
    check: str
    ok: bool | None  # None: cannot be checked on this target
    detail: str = ""

    def __str__(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "n/a "}[self.ok]
        return f"{mark} {self.stack:<16} {self.check:<22} {self.detail}"


@dataclass
class DeployedStack:
    """One deployed stack: its template as deployed, what was left out, parameters, and physical ids."""

    name: str
    template: dict[str, Any]
    parameters: dict[str, str]  # every parameter's value as CloudFormation uses it (SSM types resolved)
    pin_name: str  # name of the SSM parameter behind PIN_PARAMETER
    physical: dict[str, str]
    statuses: dict[str, str]
    region: str
    account: str
    dropped: list[Dropped] = field(default_factory=list)
    original: dict[str, Any] | None = None  # the translated template before the target's changes
    stack_id: str = ""
    evaluator: Evaluator = field(init=False)

    def __post_init__(self) -> None:
        self.evaluator = Evaluator(
            self.template,
            self.parameters,
            {
                "AWS::StackName": self.name,
                "AWS::StackId": self.stack_id,
                "AWS::Region": self.region,
                "AWS::AccountId": self.account,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
            ref=self._ref,
            getatt=self._getatt,
        )
        self._attributes: dict[tuple[str, str], Any] = {}
        self.lookup: Callable[[str, str, str, str], Any] | None = None  # (type, physical id, attribute, lid)

    def of_type(self, resource_type: str) -> list[str]:
        return sorted(k for k, v in self.template["Resources"].items() if v["Type"] == resource_type)

    def props(self, logical_id: str) -> dict[str, Any]:
        return dict(self.evaluator.resolve(self.template["Resources"][logical_id].get("Properties", {})))

    def _ref(self, logical_id: str) -> str:
        if logical_id not in self.physical:
            raise Unresolvable(f"{logical_id} has no physical id in stack {self.name}")
        return self.physical[logical_id]

    def _getatt(self, logical_id: str, attribute: str) -> Any:
        key = (logical_id, attribute)
        if key not in self._attributes:
            rtype = self.template["Resources"][logical_id]["Type"]
            self._attributes[key] = attribute_of(rtype, self._ref(logical_id), attribute, self, logical_id)
        return self._attributes[key]


def attribute_of(rtype: str, pid: str, attribute: str, stack: DeployedStack, logical_id: str) -> Any:
    """Fn::GetAtt for the resource types this template uses; derived from the physical id where AWS does."""
    arn = f"arn:aws:{{}}:{stack.region}:{stack.account}:{{}}"
    derived: dict[tuple[str, str], Callable[[], Any]] = {
        ("AWS::S3::Bucket", "Arn"): lambda: f"arn:aws:s3:::{pid}",
        ("AWS::Lambda::Function", "Arn"): lambda: arn.format("lambda", f"function:{pid}"),
        ("AWS::Lambda::Version", "Version"): lambda: pid.rsplit(":", 1)[1],
        ("AWS::IAM::Role", "Arn"): lambda: f"arn:aws:iam::{stack.account}:role/{pid}",
        ("AWS::SNS::Topic", "TopicName"): lambda: pid.rsplit(":", 1)[1],
        ("AWS::SNS::Topic", "TopicArn"): lambda: pid,
        ("AWS::SQS::Queue", "Arn"): lambda: arn.format("sqs", pid.rstrip("/").rsplit("/", 1)[1]),
        ("AWS::SQS::Queue", "QueueName"): lambda: pid.rstrip("/").rsplit("/", 1)[1],
        ("AWS::CloudWatch::Alarm", "Arn"): lambda: arn.format("cloudwatch", f"alarm:{pid}"),
        ("AWS::StepFunctions::StateMachine", "Arn"): lambda: pid,
        ("AWS::StepFunctions::StateMachine", "Name"): lambda: pid.rsplit(":", 1)[1],
        ("AWS::KinesisFirehose::DeliveryStream", "Arn"): lambda: arn.format("firehose", f"deliverystream/{pid}"),
        ("AWS::Events::Rule", "Arn"): lambda: arn.format("events", f"rule/{pid}"),
        ("AWS::Logs::LogGroup", "Arn"): lambda: arn.format("logs", f"log-group:{pid}:*"),
    }
    if (rtype, attribute) in derived:
        return derived[(rtype, attribute)]()
    if stack.lookup is not None:
        return stack.lookup(rtype, pid, attribute, logical_id)
    raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute} ({rtype})")


# ==== checks ==================================================================================================
Clients = Callable[[str], Any]


def _norm(value: Any) -> Any:
    """Numbers compare as floats, lists of Name/Value pairs as sets; so 1 == 1.0 == "1"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if isinstance(value, list):
        items = [_norm(v) for v in value]
        if all(isinstance(v, dict) and set(v) == {"Name", "Value"} for v in items):
            return sorted((v["Name"], v["Value"]) for v in items)
        return items
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _diff(expected: dict[str, Any], actual: dict[str, Any], keys: Iterable[str]) -> list[str]:
    out = []
    for key in keys:
        if key not in expected:
            continue
        e, a = _norm(expected[key]), _norm(actual.get(key))
        if e != a:
            out.append(f"{key}: expected {expected[key]!r}, got {actual.get(key)!r}")
    return out


def check_resources(st: DeployedStack) -> list[Result]:
    expected = {lid for lid in st.template["Resources"] if st.evaluator.resource_exists(lid)}
    actual = set(st.statuses)
    problems = []
    if missing := sorted(expected - actual):
        problems.append(f"not in the stack: {', '.join(missing)}")
    extra = sorted(actual - expected)
    # LocalStack creates a resource whose Condition is false when another resource names it inside an Fn::If
    # branch (a two-resource template shows it: a conditional KMS key and an SNS topic whose DisplayName is
    # !If [cond, !GetAtt Key.Arn, ...] both come up). CloudFormation skips such a resource, so it is reported, not
    # failed; a resource the template does not declare at all still fails.
    false_condition = [lid for lid in extra if st.template["Resources"].get(lid, {}).get("Condition")]
    if unknown := [lid for lid in extra if lid not in false_condition]:
        problems.append(f"not in the template: {', '.join(unknown)}")
    if bad := sorted(f"{k}={v}" for k, v in st.statuses.items() if v != "CREATE_COMPLETE"):
        problems.append(f"not CREATE_COMPLETE: {', '.join(bad)}")
    results = [Result(st.name, "resources", not problems, "; ".join(problems) or f"{len(expected)} CREATE_COMPLETE")]
    for d in st.dropped:
        results.append(Result(st.name, "not deployed", None, str(d)))
    for lid in false_condition:
        cond = st.template["Resources"][lid]["Condition"]
        results.append(
            Result(
                st.name, "created anyway", None, f"{lid}: Condition {cond} is false; LocalStack creates it all the same"
            )
        )
    return results


def check_api_stages(st: DeployedStack, clients: Clients) -> list[Result]:
    api = clients("apigateway")
    results = []
    for rest_api in st.of_type("AWS::ApiGateway::RestApi"):
        configured = {
            st.props(s)["StageName"]
            for s in st.of_type("AWS::ApiGateway::Stage")
            if st.template["Resources"][s]["Properties"].get("RestApiId") == {"Ref": rest_api}
        }
        wanted = {st.parameters["ApiStageName"]} if rest_api in USAGE_PLANS else configured
        stages = {s["stageName"]: s for s in api.get_stages(restApiId=st.physical[rest_api])["item"]}
        problems = []
        for name in sorted(set(stages) - wanted):
            makers = [
                d
                for d in st.of_type("AWS::ApiGateway::Deployment")
                if st.template["Resources"][d].get("Properties", {}).get("StageName") == name
            ]
            why = f" (created by {', '.join(makers)}.StageName: SAM's implicit stage)" if makers else ""
            problems.append(f"unexpected stage {name!r}{why}")
        if missing := sorted(wanted - set(stages)):
            problems.append(f"missing stage(s) {missing}")
        results.append(Result(st.name, "api stages", not problems, "; ".join(problems) or f"only {sorted(wanted)}"))
    return results


def check_schedules(st: DeployedStack, clients: Clients) -> list[Result]:
    scheduler = clients("scheduler")
    results = []
    for lid in st.of_type("AWS::Scheduler::Schedule"):
        want = st.props(lid)
        name = want.get("Name") or st.physical[lid]
        try:
            got = scheduler.get_schedule(Name=name, GroupName=want.get("GroupName", "default"))
        except Exception as e:  # noqa: BLE001 - reported as the check's result
            results.append(Result(st.name, f"schedule {lid}", False, f"GetSchedule {name}: {e}"))
            continue
        problems = _diff(
            want,
            got,
            ["ScheduleExpression", "ScheduleExpressionTimezone", "State", "Description", "FlexibleTimeWindow"],
        )
        problems += [
            f"Target.{p}" for p in _diff(want["Target"], got["Target"], ["Arn", "RoleArn", "Input", "RetryPolicy"])
        ]
        # What the parameters say, independent of how the template spells it.
        if lid.startswith("BatchStateMachine"):
            for key, param in (
                ("State", "BatchScheduleState"),
                ("ScheduleExpression", "BatchScheduleExpression"),
                ("ScheduleExpressionTimezone", "BatchScheduleTimezone"),
            ):
                if got.get(key) != st.parameters[param]:
                    problems.append(f"{key} {got.get(key)!r} is not parameter {param}={st.parameters[param]!r}")
            if got["Target"]["Arn"] != st.physical.get("BatchStateMachine"):
                problems.append(f"target {got['Target']['Arn']} is not this stack's state machine")
        results.append(
            Result(st.name, f"schedule {lid}", not problems, "; ".join(problems) or f"{name}: {got['State']}")
        )
    return results


def check_event_rules(st: DeployedStack, clients: Clients) -> list[Result]:
    """EventBridge rules: schedule or pattern (this stack's alarms, its own stack id), state, targets."""
    events = clients("events")
    results = []
    for lid in st.of_type("AWS::Events::Rule"):
        want = st.props(lid)
        name = st.physical[lid].rsplit("/", 1)[-1]
        got = events.describe_rule(Name=name)
        problems = _diff(want, got, ["ScheduleExpression", "Description"])
        if got.get("State", "ENABLED") != want.get("State", "ENABLED"):
            problems.append(f"State: expected {want.get('State', 'ENABLED')!r}, got {got.get('State')!r}")
        if "EventPattern" in want and json.loads(got.get("EventPattern") or "{}") != want["EventPattern"]:
            problems.append(f"EventPattern: expected {want['EventPattern']}, got {got.get('EventPattern')}")
        targets = {t["Id"]: t for t in events.list_targets_by_rule(Rule=name)["Targets"]}
        for target in want.get("Targets", []):
            have = targets.get(target["Id"])
            if have is None:
                problems.append(f"no target {target['Id']}")
                continue
            problems += [
                f"target {target['Id']} {p}"
                for p in _diff(target, have, ["Arn", "DeadLetterConfig", "RetryPolicy", "Input"])
            ]
        if len(targets) != len(want.get("Targets", [])):
            problems.append(f"{len(targets)} targets, expected {len(want.get('Targets', []))}")
        results.append(
            Result(st.name, f"rule {lid}", not problems, "; ".join(problems) or f"{name}: {got.get('State')}")
        )
    return results


ALARM_KEYS = [
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "AlarmDescription",
]


def _metrics(value: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for m in value or []:
        item = {k: m[k] for k in ("Id", "Expression", "Label", "ReturnData", "Period") if k in m}
        if "MetricStat" in m:
            ms = m["MetricStat"]
            item["MetricStat"] = {
                "Namespace": ms["Metric"]["Namespace"],
                "MetricName": ms["Metric"]["MetricName"],
                "Dimensions": _norm(ms["Metric"].get("Dimensions", [])),
                "Period": float(ms["Period"]),
                "Stat": ms["Stat"],
            }
        out.append(_norm(item))
    return out


def check_alarms(st: DeployedStack, clients: Clients) -> list[Result]:
    cw = clients("cloudwatch")
    lam = clients("lambda")
    results = []
    live_version = None
    if "PredictFunction" in st.physical:
        live_version = lam.get_alias(FunctionName=st.physical["PredictFunction"], Name="live")["FunctionVersion"]
    for lid in st.of_type("AWS::CloudWatch::Alarm"):
        if not st.evaluator.resource_exists(lid):
            continue
        want = st.props(lid)
        name = st.physical[lid]
        found = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if not found:
            results.append(Result(st.name, f"alarm {lid}", False, f"no alarm named {name}"))
            continue
        got = found[0]
        problems = _diff(want, got, ALARM_KEYS)
        if "AlarmName" in want and got["AlarmName"] != want["AlarmName"]:
            problems.append(f"AlarmName: expected {want['AlarmName']!r}, got {got['AlarmName']!r}")
        if "Metrics" in want and _metrics(want["Metrics"]) != _metrics(got.get("Metrics")):
            problems.append(f"Metrics: expected {want['Metrics']!r}, got {got.get('Metrics')!r}")
        # Dimensions that must name this stack's model, function and the version the live alias serves.
        dims = [
            d
            for m in [got, *[x.get("MetricStat", {}).get("Metric", {}) for x in got.get("Metrics", [])]]
            for d in m.get("Dimensions", [])
        ]
        for d in dims:
            value, name_ = d["Value"], d["Name"]
            if name_ == "ModelName" and value != st.parameters["ModelName"]:
                problems.append(f"dimension ModelName={value!r}, parameter is {st.parameters['ModelName']!r}")
            if name_ == "FunctionName" and value != st.physical.get("PredictFunction"):
                problems.append(f"dimension FunctionName={value!r} is not this stack's predict function")
            if name_ == "Resource" and value != f"{st.physical.get('PredictFunction')}:live":
                problems.append(f"dimension Resource={value!r} is not the live alias")
            if name_ in ("ExecutedVersion", "FunctionVersion") and live_version and value != live_version:
                problems.append(f"dimension {name_}={value!r}, the live alias serves version {live_version}")
            if name_ == "StateMachineArn" and value != st.physical.get("BatchStateMachine"):
                problems.append(f"dimension StateMachineArn={value!r} is not this stack's state machine")
        for m in got.get("Metrics", []):
            if (
                "Expression" in m
                and "ModelName" in m["Expression"]
                and f"'{st.parameters['ModelName']}'" not in m["Expression"]
            ):
                problems.append(f"metric query {m['Id']} does not select ModelName {st.parameters['ModelName']!r}")
        results.append(Result(st.name, f"alarm {lid}", not problems, "; ".join(problems) or name))
    return results


def _statements(clients: Clients, role: str) -> list[dict[str, Any]]:
    iam = clients("iam")
    out = []
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        statements = doc["Statement"]
        out += statements if isinstance(statements, list) else [statements]
    return out


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an Allow statement (no Condition) grants action on resource (IAM wildcards)."""
    for s in statements:
        if s.get("Effect") != "Allow" or s.get("Condition"):
            continue
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in resources
        ):
            return True
    return False


def check_ssm_pin(st: DeployedStack, clients: Clients) -> list[Result]:
    ssm, lam = clients("ssm"), clients("lambda")
    problems = []
    try:
        value = ssm.get_parameter(Name=st.pin_name)["Parameter"]["Value"]
    except Exception as e:  # noqa: BLE001 - reported as the check's result
        return [Result(st.name, "ssm champion pin", False, f"GetParameter {st.pin_name}: {e}")]
    pin_arn = f"arn:aws:ssm:{st.region}:{st.account}:parameter{st.pin_name}"
    own = f"/modelops/{st.name}/"  # each stack's pins live under its own prefix
    if not st.pin_name.startswith(own):
        problems.append(f"pin {st.pin_name} is not under this stack's prefix {own}")
    env = lam.get_function_configuration(FunctionName=st.physical["PredictFunction"])["Environment"]["Variables"]
    if env.get("MODELOPS_MODEL_VERSION") != value:
        problems.append(f"predict MODELOPS_MODEL_VERSION={env.get('MODELOPS_MODEL_VERSION')!r}, pin holds {value!r}")
    # Whoever moves the pin (the retrain function) must be allowed to write exactly this parameter, and any
    # SSM path its environment names must be this stack's pin.
    if "RetrainFunction" in st.physical:
        role = st.physical["RetrainFunctionRole"]
        statements = _statements(clients, role)
        for action in ("ssm:GetParameter", "ssm:PutParameter"):
            if not allows(statements, action, pin_arn):
                problems.append(f"RetrainFunctionRole does not allow {action} on {pin_arn}")
        renv = lam.get_function_configuration(FunctionName=st.physical["RetrainFunction"])["Environment"]["Variables"]
        for key, v in renv.items():
            if v.startswith("/modelops/") and not v.startswith(own):
                problems.append(f"retrain {key}={v!r} is outside this stack's pins {own}")
    detail = "; ".join(problems) or f"{st.pin_name} = {value!r}"
    return [Result(st.name, "ssm champion pin", not problems, detail)]


def check_bucket_policy(st: DeployedStack, clients: Clients) -> list[Result]:
    s3 = clients("s3")
    results = []
    for lid in st.of_type("AWS::S3::BucketPolicy"):
        want = st.props(lid)
        got = json.loads(s3.get_bucket_policy(Bucket=want["Bucket"])["Policy"])
        problems = (
            [] if _norm(got) == _norm(want["PolicyDocument"]) else [f"expected {want['PolicyDocument']}, got {got}"]
        )
        bucket_arn = f"arn:aws:s3:::{st.physical['ModelBucket']}"
        deny = [
            s
            for s in got["Statement"]
            if s.get("Effect") == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        if not deny or {bucket_arn, f"{bucket_arn}/*"} - set(deny[0]["Resource"]):
            problems.append("no Deny of insecure transport on the bucket and its objects")
        results.append(Result(st.name, f"bucket policy {lid}", not problems, "; ".join(problems) or want["Bucket"]))
    return results


# Each REST API's usage plan (SAM's PER_API plan, key and stage) and the parameters that set its limits.
USAGE_PLANS = {
    "PredictApi": ("ApiThrottleRateLimit", "ApiThrottleBurstLimit", "ApiQuotaPerDay"),
    "FeedbackApi": ("FeedbackThrottleRateLimit", "FeedbackThrottleBurstLimit", "FeedbackQuotaPerDay"),
}


def check_usage_plan(
    st: DeployedStack, clients: Clients, localstack: bool = False, rest_api: str = "PredictApi"
) -> list[Result]:
    api = clients("apigateway")
    rate, burst, daily = USAGE_PLANS[rest_api]
    plan_id, key_id, api_id = (st.physical[f"{rest_api}{k}"] for k in ("UsagePlan", "ApiKey", ""))
    plan = api.get_usage_plan(usagePlanId=plan_id)
    key = api.get_api_key(apiKey=key_id)
    p = st.parameters
    problems = []
    if _norm(plan.get("throttle")) != _norm({"rateLimit": p[rate], "burstLimit": p[burst]}):
        problems.append(f"throttle {plan.get('throttle')} is not {rate}/{burst} {p[rate]}/{p[burst]}")
    quota = plan.get("quota", {})
    if _norm(quota.get("limit")) != _norm(p[daily]) or quota.get("period") != "DAY":
        problems.append(f"quota {quota} is not {daily}={p[daily]} per DAY")
    stages = [(s["apiId"], s["stage"]) for s in plan.get("apiStages", [])]
    if stages != [(api_id, p["ApiStageName"])]:
        problems.append(f"plan covers {stages}, expected only ({api_id}, {p['ApiStageName']})")
    if key_id not in {k["id"] for k in api.get_usage_plan_keys(usagePlanId=plan_id)["items"]}:
        problems.append("the API key is not in the usage plan")
    if not key.get("enabled"):
        problems.append("the API key is disabled")
    results = [
        Result(
            st.name,
            f"{rest_api} usage plan + api key",
            not problems,
            "; ".join(problems) or f"plan {plan_id}, key {key_id}",
        )
    ]
    # The stage's own throttling (MethodSettings "/*" "*") should carry the same limits.
    stage = api.get_stage(restApiId=api_id, stageName=p["ApiStageName"])
    settings = stage.get("methodSettings", {}).get("*/*")
    if settings is None and localstack:
        results.append(
            Result(
                st.name, f"{rest_api} stage method settings", None, "LocalStack does not keep a stage's MethodSettings"
            )
        )
    else:
        want = {
            "throttlingRateLimit": p[rate],
            "throttlingBurstLimit": p[burst],
            "metricsEnabled": True,
        }
        diff = _diff(want, settings or {}, want)
        results.append(
            Result(
                st.name, f"{rest_api} stage method settings", not diff, "; ".join(diff) or "*/* throttling and metrics"
            )
        )
    return results


def check_state_machine(st: DeployedStack, clients: Clients) -> list[Result]:
    sfn = clients("stepfunctions")
    results = []
    for lid in st.of_type("AWS::StepFunctions::StateMachine"):
        want = st.props(lid)
        got = sfn.describe_state_machine(stateMachineArn=st.physical[lid])
        problems = []
        if "StateMachineName" in want and got["name"] != want["StateMachineName"]:
            problems.append(f"name {got['name']!r}, expected {want['StateMachineName']!r}")
        if not got["name"].startswith(st.name):
            problems.append(f"name {got['name']!r} does not carry the stack name")
        if got.get("type", "STANDARD") != want.get("StateMachineType", "STANDARD"):
            problems.append(f"type {got.get('type')}")
        if got["roleArn"] != want["RoleArn"]:
            problems.append(f"role {got['roleArn']}, expected {want['RoleArn']}")
        expected_definition = _definition(clients, want)
        if expected_definition is not None and json.loads(got["definition"]) != expected_definition:
            problems.append("definition differs from the packaged ASL document with its substitutions")
        # The role may invoke the functions the definition names.
        role = got["roleArn"].rsplit("/", 1)[1]
        statements = _statements(clients, role)
        for fn_arn in sorted(set(re.findall(r"arn:aws:lambda:[^\"]+:function:[^\"]+", got["definition"]))):
            if not allows(statements, "lambda:InvokeFunction", fn_arn):
                problems.append(f"role does not allow lambda:InvokeFunction on {fn_arn}")
        results.append(Result(st.name, f"state machine {lid}", not problems, "; ".join(problems) or got["name"]))
    return results


def _definition(clients: Clients, want: dict[str, Any]) -> Any:
    """The definition CloudFormation should have created: the packaged ASL document with its substitutions."""
    loc = want.get("DefinitionS3Location")
    if loc:
        text = clients("s3").get_object(Bucket=loc["Bucket"], Key=loc["Key"])["Body"].read().decode()
    elif "DefinitionString" in want:
        text = want["DefinitionString"]
    else:
        return None
    for k, v in (want.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + k + "}", str(v))
    return json.loads(text)


def check_dashboard(st: DeployedStack, clients: Clients) -> list[Result]:
    """A dashboard dropped for the target: its body must still resolve to JSON naming this stack's alarms."""
    results = []
    template = st.original or st.template
    for lid, body in template["Resources"].items():
        if body["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        ev = Evaluator(template, st.parameters, dict(st.evaluator.pseudo), ref=st._ref, getatt=st._getatt)
        props = ev.resolve(body["Properties"])
        problems = []
        try:
            doc = json.loads(props["DashboardBody"])
        except ValueError as e:
            problems.append(f"DashboardBody is not JSON: {e}")
            doc = {}
        alarms = [a for w in doc.get("widgets", []) for a in w.get("properties", {}).get("alarms", [])]
        for a in alarms:
            if not clients("cloudwatch").describe_alarms(AlarmNames=[a.rsplit(":", 1)[1]])["MetricAlarms"]:
                problems.append(f"alarm widget names {a}, which does not exist")
        if not problems and lid not in st.physical:
            clients("cloudwatch").put_dashboard(
                DashboardName=props["DashboardName"], DashboardBody=props["DashboardBody"]
            )
        results.append(
            Result(
                st.name,
                f"dashboard {lid}",
                not problems,
                "; ".join(problems) or f"{props['DashboardName']}: {len(doc['widgets'])} widgets",
            )
        )
    return results


def check_stack(st: DeployedStack, clients: Clients, localstack: bool = False) -> list[Result]:
    results = check_resources(st)
    if any(v != "CREATE_COMPLETE" for v in st.statuses.values()):
        # Resources that never got created would fail every check that reads them; report the rest.
        st.physical = {k: v for k, v in st.physical.items() if st.statuses.get(k) == "CREATE_COMPLETE"}
    for check in (
        check_api_stages,
        check_schedules,
        check_event_rules,
        check_alarms,
        check_ssm_pin,
        check_bucket_policy,
        check_state_machine,
        check_dashboard,
    ):
        try:
            results += check(st, clients)
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            results.append(Result(st.name, check.__name__.removeprefix("check_"), False, _why(e)))
    try:
        for rest_api in USAGE_PLANS:
            results += check_usage_plan(st, clients, localstack=localstack, rest_api=rest_api)
    except Exception as e:  # noqa: BLE001
        results.append(Result(st.name, "usage plan + api key", False, _why(e)))
    return results


def _why(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"resource {e.args[0]} was not created"
    if isinstance(e, Unresolvable):
        return f"cannot compute the expected value: {e}"
    return f"{type(e).__name__}: {e}"


# ==== two stacks in one account ===============================================================================
NAME_PROPERTIES = (
    "Name",
    "AlarmName",
    "LayerName",
    "DashboardName",
    "LogGroupName",
    "StateMachineName",
    "FunctionName",
    "RoleName",
    "TopicName",
    "QueueName",
    "DeliveryStreamName",
    "BucketName",
    "ApiName",
    "UsagePlanName",
)
# Types whose FunctionName/LogGroupName property refers to another resource instead of naming this one.
REFERRING_TYPES = {
    "AWS::Lambda::Permission",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Logs::SubscriptionFilter",
    "AWS::AppConfig::Environment",
    "AWS::AppConfig::ConfigurationProfile",
}


# Named within their REST API, not the account: two stacks' APIs may both have a stage "v1".
API_SCOPED_TYPES = {"AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment"}


def names(st: DeployedStack) -> dict[tuple[str, str], str]:
    """(resource type, physical name) -> logical id, for every resource that has a name in the account.

    Deployed resources contribute their physical id (the layer name for a layer version); resources the
    target left out contribute the names their properties would give them.
    """
    out: dict[tuple[str, str], str] = {}
    for lid, pid in st.physical.items():
        rtype = st.template["Resources"].get(lid, {}).get("Type", "?")
        if rtype == "AWS::Lambda::LayerVersion":
            pid = pid.split(":layer:", 1)[1].rsplit(":", 1)[0]
        elif rtype in REFERRING_TYPES or rtype in API_SCOPED_TYPES or rtype.endswith(("Policy", "UsagePlanKey")):
            continue
        out[(rtype, pid)] = lid
    template = st.original or st.template
    ev = Evaluator(template, st.parameters, dict(st.evaluator.pseudo), ref=st._ref, getatt=st._getatt)
    for lid, body in template["Resources"].items():
        if lid in st.physical or body["Type"] in REFERRING_TYPES or not ev.resource_exists(lid):
            continue
        props = body.get("Properties", {})
        for prop in NAME_PROPERTIES:
            if prop in props:
                with contextlib.suppress(Unresolvable):
                    out[(body["Type"], str(ev.resolve(props[prop])))] = lid
    return out


def collisions(a: DeployedStack, b: DeployedStack) -> list[Result]:
    label = f"{a.name}+{b.name}"
    shared = sorted(set(names(a)) & set(names(b)))
    problems = [f"{rtype} {name!r} ({names(a)[(rtype, name)]} in both)" for rtype, name in shared]
    results = [Result(label, "physical names", not problems, "; ".join(problems) or "all different")]
    pins_ok = a.pin_name != b.pin_name
    results.append(
        Result(
            label,
            "ssm pin paths",
            pins_ok,
            f"{a.pin_name} / {b.pin_name}" + ("" if pins_ok else ": both stacks read and move the same pin"),
        )
    )
    return results
