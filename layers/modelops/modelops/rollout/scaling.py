"""Autoscaled provisioned concurrency of the predict function's `live` alias, after a stack update ends.

Application Auto Scaling changes the alias's provisioned concurrency with PutProvisionedConcurrencyConfig. While a
canary runs, the alias carries routing weights and Lambda refuses that call ("Alias with weights can not be used with
Provisioned Concurrency"), so scaling activities fail for the length of the canary. Target tracking recovers by itself:
CloudWatch keeps invoking Auto Scaling actions for as long as their alarm stays in ALARM (other alarm actions run only
on state changes). A scheduled action does not run again, and the stack update may also have put the alias back to
the template's provisioned concurrency (the minimum). So when a stack update ends, the alias is moved back inside the
minimum and maximum the scalable target has now (a scheduled action that ran during the canary already set them).

With a fixed count (PredictScalingMode=Provisioned) the range is that count: deregistering a scalable target does not
change capacity, so a stack switched from Autoscaled could keep what Application Auto Scaling last set when its
template value (PredictInstanceCount) did not change.

Scaling is not suspended during rollouts: suspension would not make a canary-time change succeed, a scheduled action
that falls into a suspension is skipped for good, and a resume missed on one failure path would stop scaling silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..adapters.aws import aws_errors, error_code
from ..core.errors import ModelOpsError

NAMESPACE = "lambda"
DIMENSION = "lambda:function:ProvisionedConcurrency"


def resource_id(function: str, alias: str) -> str:
    """Application Auto Scaling's id of an alias's provisioned concurrency: function:<name>:<alias>."""
    return f"function:{function}:{alias}"


@dataclass
class ScalableTarget:
    min_capacity: int
    max_capacity: int

    def clamp(self, value: int) -> int:
        return max(self.min_capacity, min(self.max_capacity, value))


class AliasScaling:
    """The scalable target of one alias (or a fixed count) and the provisioned concurrency Lambda holds for it."""

    def __init__(self, autoscaling: Any, lambda_client: Any, function: str, alias: str, fixed: int | None = None):
        self.aas, self.lam, self.function, self.alias = autoscaling, lambda_client, function, alias
        self.fixed = fixed
        self.resource = resource_id(function, alias)

    def target(self) -> ScalableTarget | None:
        if self.fixed is not None:
            return ScalableTarget(self.fixed, self.fixed)
        with aws_errors(f"reading the scalable target {self.resource}"):
            found = self.aas.describe_scalable_targets(
                ServiceNamespace=NAMESPACE, ResourceIds=[self.resource], ScalableDimension=DIMENSION
            ).get("ScalableTargets", [])
        if not found:
            return None
        return ScalableTarget(int(found[0]["MinCapacity"]), int(found[0]["MaxCapacity"]))

    def weighted(self) -> bool:
        with aws_errors(f"reading alias {self.function}:{self.alias}"):
            alias = self.lam.get_alias(FunctionName=self.function, Name=self.alias)
        return bool((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"))

    def requested(self) -> int:
        with aws_errors(f"reading provisioned concurrency of {self.function}:{self.alias}"):
            try:
                config = self.lam.get_provisioned_concurrency_config(FunctionName=self.function, Qualifier=self.alias)
            except Exception as exc:  # botocore's ClientError; its code tells a missing config apart
                if error_code(exc) == "ProvisionedConcurrencyConfigNotFoundException":
                    return 0
                raise
        return int(config.get("RequestedProvisionedConcurrentExecutions") or 0)

    def reconcile(self) -> dict[str, Any]:
        """Put the alias's provisioned concurrency inside the scalable target's minimum and maximum."""
        target = self.target()
        if target is None:
            return {"scaling": "none", "resource": self.resource}
        detail: dict[str, Any] = {
            "resource": self.resource,
            "min": target.min_capacity,
            "max": target.max_capacity,
        }
        if self.weighted():  # a rollout is still shifting traffic: Lambda would refuse the change
            return {**detail, "scaling": "skipped", "why": "the alias still carries routing weights"}
        current = self.requested()
        wanted = target.clamp(current)
        detail.update(requested=current)
        if wanted == current:
            return {**detail, "scaling": "in range"}
        with aws_errors(f"setting provisioned concurrency of {self.function}:{self.alias} to {wanted}"):
            self.lam.put_provisioned_concurrency_config(
                FunctionName=self.function, Qualifier=self.alias, ProvisionedConcurrentExecutions=wanted
            )
        return {**detail, "scaling": "restored", "set_to": wanted}


def reconcile_quietly(scaling: AliasScaling | None) -> dict[str, Any]:
    """reconcile(), with a failure reported in the result instead of raised: the rollout's outcome is already
    recorded, and target tracking keeps scaling either way."""
    if scaling is None:
        return {"scaling": "not autoscaled"}
    try:
        return scaling.reconcile()
    except ModelOpsError as exc:
        return {"scaling": "failed", "resource": scaling.resource, "error": str(exc)}
