"""Checks before `sam deploy`: what a stack's configuration needs from the account, said before CloudFormation fails.

- The champion pin: ModelVersion must name this stack's own pin (/modelops/<stack>/<model>/champion, modelops.rollout.deploy),
  and the SSM parameter must exist, since CloudFormation resolves it when the change set is created.
- Provisioned concurrency: Lambda refuses a configuration that would leave the account's unreserved concurrency below
  its floor ("Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its
  minimum value of [N]"). The floor is 100, or the whole limit in accounts whose limit is below 100; new accounts can
  start with a limit of 10, which leaves no provisioned concurrency at all. (Reserved concurrency follows the same
  rule: "up to the unreserved account concurrency minus 100", Lambda developer guide.) Autoscaled is checked at the
  largest maximum it can scale out to (PredictMaxInstances, or a scheduled maximum that is set), and every minimum
  must be at most its maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..adapters.aws import aws_errors
from ..core.errors import ModelOpsError, NotFoundError
from .deploy import MODEL_VERSION_PARAMETER, PinNames

UNRESERVED_FLOOR = 100


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, **({"fix": self.fix} if self.fix else {})}


def unreserved_floor(account_limit: int) -> int:
    return min(UNRESERVED_FLOOR, account_limit)


def check_pin(stack: str, parameters: dict[str, str], ssm: Any) -> list[Check]:
    names = PinNames(stack, parameters.get("ModelName", ""))
    pin = parameters.get(MODEL_VERSION_PARAMETER, "")
    own = f'parameter_overrides: {MODEL_VERSION_PARAMETER}="{names.champion}"'
    if not pin:
        return [Check("champion pin", False, f"{MODEL_VERSION_PARAMETER} is not set", own)]
    if names.owns(pin):
        checks = [Check("champion pin", True, f"{pin} belongs to stack {stack}")]
    else:
        detail = f"{pin} is not one of stack {stack}'s pins: it would serve, and be retrained into, another's model"
        checks = [Check("champion pin", False, detail, own)]
    try:
        with aws_errors(f"reading SSM parameter {pin}"):
            value = ssm.get_parameter(Name=pin)["Parameter"]["Value"]
        checks.append(Check("champion pin exists", True, f"{pin} = {value}"))
    except NotFoundError:
        checks.append(
            Check(
                "champion pin exists",
                False,
                f"SSM parameter {pin} does not exist; CloudFormation cannot resolve {MODEL_VERSION_PARAMETER}",
                f"aws ssm put-parameter --name {pin} --type String --value none",
            )
        )
    return checks


# Autoscaled: (minimum, maximum) parameter pairs, and the schedule that turns a pair on (None: always on).
SCALING_RANGES = (
    ("PredictInstanceCount", "PredictMaxInstances", None),
    ("PredictScaleUpMinInstances", "PredictScaleUpMaxInstances", "PredictScaleUpSchedule"),
    ("PredictScaleDownMinInstances", "PredictScaleDownMaxInstances", "PredictScaleDownSchedule"),
)
SCALING_DEFAULTS = {"PredictInstanceCount": "1", "PredictMaxInstances": "10"}


def _count(parameters: dict[str, str], name: str) -> int:
    raw = parameters.get(name, SCALING_DEFAULTS.get(name, ""))
    try:
        return int(raw)
    except ValueError:
        raise ModelOpsError(f"{name}={raw!r} is not a number") from None


def scaling_ranges(parameters: dict[str, str]) -> list[tuple[str, str, int, int]]:
    """The Autoscaled (minimum name, maximum name, minimum, maximum) ranges the configuration turns on."""
    return [
        (low, high, _count(parameters, low), _count(parameters, high))
        for low, high, schedule in SCALING_RANGES
        if schedule is None or parameters.get(schedule, "")
    ]


def check_scaling_range(parameters: dict[str, str]) -> Check | None:
    """Application Auto Scaling refuses a minimum above its maximum, which would fail the deploy late."""
    if parameters.get("PredictScalingMode", "OnDemand") != "Autoscaled":
        return None
    inverted = [f"{low}={lo} > {high}={hi}" for low, high, lo, hi in scaling_ranges(parameters) if lo > hi]
    if inverted:
        return Check("autoscaling range", False, "; ".join(inverted), "make every minimum at most its maximum")
    ranges = ", ".join(f"{lo}-{hi}" for _, _, lo, hi in scaling_ranges(parameters))
    return Check("autoscaling range", True, f"provisioned concurrency between {ranges}")


def wanted_concurrency(parameters: dict[str, str]) -> tuple[str, int] | None:
    """(parameter, instances) of the most provisioned concurrency the configuration can ask for, None for none."""
    mode = parameters.get("PredictScalingMode", "OnDemand")
    if mode == "Provisioned":
        return "PredictInstanceCount", _count(parameters, "PredictInstanceCount")
    if mode == "Autoscaled":  # scaling out may reach the largest maximum in effect at any time
        return max(((high, hi) for _, high, _, hi in scaling_ranges(parameters)), key=lambda pair: pair[1])
    return None


def check_concurrency(parameters: dict[str, str], lam: Any, existing_provisioned: int = 0) -> Check:
    mode = parameters.get("PredictScalingMode", "OnDemand")
    asked = wanted_concurrency(parameters)
    if asked is None:
        return Check("provisioned concurrency", True, f"PredictScalingMode={mode}: none needed")
    source, wanted = asked
    with aws_errors("reading the Lambda account settings"):
        settings = lam.get_account_settings()
    limit = int(settings["AccountLimit"]["ConcurrentExecutions"])
    unreserved = int(settings["AccountLimit"]["UnreservedConcurrentExecutions"]) + existing_provisioned
    floor = unreserved_floor(limit)
    available = max(0, unreserved - floor)
    detail = (
        f"{wanted} provisioned instance(s) wanted; account limit {limit}, unreserved {unreserved}, "
        f"floor {floor}: {available} can be provisioned"
    ) + (f" (the most Autoscaled can scale out to, {source})" if mode == "Autoscaled" else "")
    if wanted <= available:
        return Check("provisioned concurrency", True, detail)
    return Check(
        "provisioned concurrency",
        False,
        detail,
        f"request a higher Lambda 'Concurrent executions' quota (at least {wanted + floor + (limit - unreserved)}) in "
        + ("Service Quotas, lower " + source + "," if mode == "Autoscaled" else "Service Quotas,")
        + ' or deploy with PredictScalingMode="OnDemand"',
    )


def provisioned_on_live(lam: Any, function: str | None) -> int:
    """Provisioned concurrency the stack's live alias already holds (an update keeps it, so it is not extra)."""
    if not function:
        return 0
    try:
        with aws_errors(f"reading provisioned concurrency of {function}:live"):
            config = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
    except (NotFoundError, ModelOpsError):
        return 0
    return int(config.get("RequestedProvisionedConcurrentExecutions") or 0)


def run_checks(
    stack: str, parameters: dict[str, str], *, ssm: Any, lam: Any, function: str | None = None
) -> list[Check]:
    scaling = check_scaling_range(parameters)
    return [
        *check_pin(stack, parameters, ssm),
        *([scaling] if scaling else []),
        check_concurrency(parameters, lam, provisioned_on_live(lam, function)),
    ]
