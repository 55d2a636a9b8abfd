"""The predict function's canary rollout as CodeDeploy and the `live` alias see it: status and rollback.

Traffic split: the alias points at the stable version; during a canary its RoutingConfig sends a weight
to the new version (AdditionalVersionWeights). Each version's model comes from its pinned environment.

Rollback: stop the in-flight deployment with auto-rollback (CodeDeploy returns the alias to the
original version), then make sure the alias sends 100 % to that version with no extra weights. With no
deployment in flight, the alias goes back to the previous version of the last deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .aws import aws_errors, client
from .errors import ModelOpsError, NotFoundError

LIVE_ALIAS = "live"
ACTIVE_STATUSES = ["Created", "Queued", "InProgress", "Baking", "Ready"]
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


def _appspec_versions(deployment: dict[str, Any]) -> tuple[str | None, str | None]:
    """(CurrentVersion, TargetVersion) from a Lambda deployment's AppSpec content."""
    content = (((deployment.get("revision") or {}).get("appSpecContent") or {}).get("content")) or ""
    try:
        spec = json.loads(content)
    except ValueError:
        try:
            import yaml  # type: ignore[import-untyped]  # SAM writes the AppSpec as JSON; YAML is accepted when PyYAML is around
        except ImportError:
            return None, None
        spec = yaml.safe_load(content)
    for resource in (spec or {}).get("Resources", []):
        for body in resource.values():
            props = body.get("Properties", {})
            return (
                str(props["CurrentVersion"]) if props.get("CurrentVersion") else None,
                str(props["TargetVersion"]) if props.get("TargetVersion") else None,
            )
    return None, None


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
            current, target = _appspec_versions(latest)
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
    def rollback(self, to_version: str | None = None) -> dict[str, Any]:
        """Stop the in-flight deployment (CodeDeploy rolls it back) and route 100 % to the previous version."""
        active = self.deployments(active_only=True)
        stopped = None
        previous = to_version
        if active:
            info = self.deployment(active[0])
            current, _ = _appspec_versions(info)
            previous = previous or current
            with aws_errors(f"stopping deployment {active[0]}"):
                self.cd.stop_deployment(deploymentId=active[0], autoRollbackEnabled=True)
            stopped = active[0]
        if previous is None:
            ids = self.deployments()
            if not ids:
                raise ModelOpsError(f"no deployment of {self.target.function} to roll back and no --to version given")
            previous, _ = _appspec_versions(self.deployment(ids[0]))
            if previous is None:
                raise ModelOpsError(f"deployment {ids[0]} does not say which version it replaced; pass --to VERSION")
        with aws_errors(f"routing {self.target.function}:{self.target.alias} to version {previous}"):
            self.lam.update_alias(
                FunctionName=self.target.function,
                Name=self.target.alias,
                FunctionVersion=previous,
                RoutingConfig={"AdditionalVersionWeights": {}},
            )
        return {
            "stopped_deployment": stopped,
            "function_version": previous,
            "model_version": self.model_version_of(previous),
            "traffic": self.traffic(),
        }
