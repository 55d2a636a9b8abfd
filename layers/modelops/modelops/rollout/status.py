"""The predict function's canary rollout as CodeDeploy and the `live` alias see it: status and rollback.

Traffic split: the alias points at the stable version; during a canary its RoutingConfig sends a weight
to the new version (AdditionalVersionWeights). Each version's model comes from its pinned environment.

Rollback: stop the in-flight deployment with auto-rollback (CodeDeploy returns the alias to the original version and
CloudFormation rolls the stack update back). With no deployment in flight there is nothing to stop: an earlier model
is served by rolling it out again (`modelops rollout start`), through the same canary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..adapters.aws import aws_errors, client
from ..core.errors import ModelOpsError, NotFoundError
from . import appspec

LIVE_ALIAS = "live"
ACTIVE_STATUSES = ["Created", "Queued", "InProgress", "Baking", "Ready"]
REGISTRY_OUTPUT = "RegistryUri"
STACK_OUTPUTS = {
    "function": "PredictFunctionName",
    "application": "PredictDeploymentApplication",
    "group": "PredictDeploymentGroup",
}


@dataclass
class Target:
    function: str
    application: str
    group: str
    alias: str = LIVE_ALIAS

    @classmethod
    def from_stack(cls, stack: str, cloudformation: Any = None, alias: str = LIVE_ALIAS) -> Target:
        cfn = cloudformation or client("cloudformation")
        with aws_errors(f"reading stack {stack}"):
            stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        missing = [name for name in STACK_OUTPUTS.values() if name not in outputs]
        if missing:
            raise ModelOpsError(
                f"stack {stack} has no output {missing[0]}: is it a modelops stack with canary releases?"
            )
        return cls(
            outputs[STACK_OUTPUTS["function"]],
            outputs[STACK_OUTPUTS["application"]],
            outputs[STACK_OUTPUTS["group"]],
            alias,
        )


def _appspec_versions(codedeploy: Any, deployment: dict[str, Any]) -> tuple[str | None, str | None]:
    """(CurrentVersion, TargetVersion) from a Lambda deployment's AppSpec."""
    spec = appspec.of_deployment(codedeploy, deployment)
    return (spec.current_version, spec.target_version) if spec else (None, None)


class Rollouts:
    def __init__(self, target: Target, lambda_client: Any = None, codedeploy: Any = None):
        self.target = target
        self.lam = lambda_client or client("lambda")
        self.cd = codedeploy or client("codedeploy")

    # ---- reads ----------------------------------------------------------------------------------
    def alias(self) -> dict[str, Any]:
        with aws_errors(f"reading alias {self.target.function}:{self.target.alias}"):
            try:
                return self.lam.get_alias(FunctionName=self.target.function, Name=self.target.alias)
            except Exception as exc:
                if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException":
                    raise NotFoundError(f"function {self.target.function} has no alias '{self.target.alias}'") from None
                raise

    def traffic(self) -> dict[str, float]:
        """Function version -> share of the alias's traffic (sums to 1)."""
        alias = self.alias()
        extra = {
            str(k): float(v)
            for k, v in ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()
        }
        return {str(alias["FunctionVersion"]): round(1.0 - sum(extra.values()), 6), **extra}

    def model_version_of(self, function_version: str) -> str | None:
        with aws_errors(f"reading {self.target.function}:{function_version}"):
            config = self.lam.get_function_configuration(FunctionName=self.target.function, Qualifier=function_version)
        return ((config.get("Environment") or {}).get("Variables") or {}).get("MODELOPS_MODEL_VERSION")

    def deployments(self, active_only: bool = False) -> list[str]:
        kwargs: dict[str, Any] = {"applicationName": self.target.application, "deploymentGroupName": self.target.group}
        if active_only:
            kwargs["includeOnlyStatuses"] = ACTIVE_STATUSES
        with aws_errors(f"listing deployments of {self.target.application}/{self.target.group}"):
            return list(self.cd.list_deployments(**kwargs).get("deployments", []))

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        with aws_errors(f"reading deployment {deployment_id}"):
            return self.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]

    def status(self) -> dict[str, Any]:
        traffic = self.traffic()
        versions = [
            {"function_version": v, "model_version": self.model_version_of(v), "weight": w} for v, w in traffic.items()
        ]
        ids = self.deployments()
        latest = self.deployment(ids[0]) if ids else None
        out: dict[str, Any] = {
            "function": self.target.function,
            "alias": self.target.alias,
            "traffic": versions,
            "deployment": None,
        }
        if latest is not None:
            current, target = _appspec_versions(self.cd, latest)
            out["deployment"] = {
                "id": latest.get("deploymentId"),
                "status": latest.get("status"),
                "config": latest.get("deploymentConfigName"),
                "creator": latest.get("creator"),
                "created": str(latest.get("createTime") or ""),
                "completed": str(latest.get("completeTime") or "") or None,
                "from_version": current,
                "to_version": target,
                "error": (latest.get("errorInformation") or {}).get("message"),
                "rollback": (latest.get("rollbackInfo") or {}).get("rollbackMessage"),
            }
        return out

    # ---- rollback -------------------------------------------------------------------------------
    def rollback(self) -> dict[str, Any]:
        """Stop the in-flight deployment with auto-rollback: CodeDeploy sends all traffic back to the version it
        started from, and CloudFormation then rolls the stack update back. The alias is never moved here, because
        CloudFormation must stay the only writer of `live` (see modelops.rollout.deploy)."""
        active = self.deployments(active_only=True)
        if not active:
            raise ModelOpsError(
                f"no deployment of {self.target.function} is in flight; to serve an earlier model, roll it out "
                "through the canary with `modelops rollout start --stack NAME --version VERSION`"
            )
        info = self.deployment(active[0])
        previous, _ = _appspec_versions(self.cd, info)
        with aws_errors(f"stopping deployment {active[0]}"):
            self.cd.stop_deployment(deploymentId=active[0], autoRollbackEnabled=True)
        return {
            "stopped_deployment": active[0],
            "function_version": previous,
            "model_version": self.model_version_of(previous) if previous else None,
            "traffic": self.traffic(),
        }


def start_stack_rollout(stack: str, model_version: str, cloudformation: Any = None) -> Any:
    """Roll a registered model version out by updating the stack (modelops.rollout.deploy), as the retrain loop does: the
    candidate alias names it first, so the PreTraffic hook lets the new Lambda version serve it."""
    from ..registry import CANDIDATE, CHAMPION, Registry
    from .deploy import LambdaVersions, PinNames, SsmPins, StackRolloutDeployer, reset_candidate

    cfn = cloudformation or client("cloudformation")
    with aws_errors(f"reading stack {stack}"):
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    for output in (REGISTRY_OUTPUT, STACK_OUTPUTS["function"]):
        if output not in outputs:
            raise ModelOpsError(f"stack {stack} has no output {output}: is it a modelops stack?")
    model = parameters.get("ModelName") or ""
    registry = Registry(outputs[REGISTRY_OUTPUT])
    registry.manifest(model, model_version)  # must be registered
    champion = registry.get_alias(model, CHAMPION).version
    registry.set_alias(model, CANDIDATE, model_version, reason="modelops rollout start", trigger="cli")
    deployer = StackRolloutDeployer(
        cfn,
        SsmPins(client("ssm"), PinNames(stack, model)),
        stack,
        LambdaVersions(client("lambda"), outputs[STACK_OUTPUTS["function"]]),
    )
    try:
        return deployer.start(model_version, f"modelops rollout start: {model} {champion} -> {model_version}")
    except Exception:
        reset_candidate(registry, model, champion, "the rollout could not start")
        raise
