"""Checks before `sam deploy`: what a stack's configuration needs from the account, said before CloudFormation fails.

- The champion pin: ModelVersion must name this stack's own pin (/modelops/<stack>/<model>/champion, modelops.deploy),
  and the SSM parameter must exist, since CloudFormation resolves it when the change set is created.
- Provisioned concurrency: Lambda refuses a configuration that would leave the account's unreserved concurrency below
  its floor ("Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its
  minimum value of [N]"). The floor is 100, or the whole limit in accounts whose limit is below 100; new accounts can
  start with a limit of 10, which leaves no provisioned concurrency at all. (Reserved concurrency follows the same
  rule: "up to the unreserved account concurrency minus 100", Lambda developer guide.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .aws import aws_errors
from .deploy import MODEL_VERSION_PARAMETER, PinNames
from .errors import ModelOpsError, NotFoundError

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


def check_concurrency(parameters: dict[str, str], lam: Any, existing_provisioned: int = 0) -> Check:
    mode = parameters.get("PredictScalingMode", "OnDemand")
    if mode != "Provisioned":
        return Check("provisioned concurrency", True, f"PredictScalingMode={mode}: none needed")
    try:
        wanted = int(parameters.get("PredictInstanceCount", "1"))
    except ValueError:
        raise ModelOpsError(
            f"PredictInstanceCount={parameters.get('PredictInstanceCount')!r} is not a number"
        ) from None
    with aws_errors("reading the Lambda account settings"):
        settings = lam.get_account_settings()
    limit = int(settings["AccountLimit"]["ConcurrentExecutions"])
    unreserved = int(settings["AccountLimit"]["UnreservedConcurrentExecutions"]) + existing_provisioned
    floor = unreserved_floor(limit)
    available = max(0, unreserved - floor)
    detail = (
        f"{wanted} provisioned instance(s) wanted; account limit {limit}, unreserved {unreserved}, "
        f"floor {floor}: {available} can be provisioned"
    )
    if wanted <= available:
        return Check("provisioned concurrency", True, detail)
    return Check(
        "provisioned concurrency",
        False,
        detail,
        f"request a higher Lambda 'Concurrent executions' quota (at least {wanted + floor + (limit - unreserved)}) in "
        'Service Quotas, or deploy with PredictScalingMode="OnDemand"',
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
    return [*check_pin(stack, parameters, ssm), check_concurrency(parameters, lam, provisioned_on_live(lam, function))]
