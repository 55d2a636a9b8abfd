"""Rolling a model version out to the predict function, and pinning the champion.

A rollout never edits what a published Lambda version serves. It:
  1. copies the environment of $LATEST, sets MODELOPS_MODEL_VERSION to the candidate, and publishes a new
     Lambda version (both calls carry the RevisionId read first, so a concurrent `sam deploy` makes this
     fail instead of mixing two changes);
  2. asks CodeDeploy to move the `live` alias from the current version to the new one on the deployment
     group SAM created for the function, so its canary configuration, rollback alarms and PreTraffic hook
     all apply.
The champion is pinned in SSM Parameter Store (/modelops/<model>/champion); the template resolves it
when it is deployed, so a later `sam deploy` keeps serving what the retrain loop promoted. The pin
is written only after CodeDeploy reports success.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .aws import aws_errors
from .errors import ModelOpsError, NotFoundError

MODEL_VERSION_VAR = "MODELOPS_MODEL_VERSION"
LIVE_ALIAS = "live"
ACTIVE_STATUSES = ["Created", "Queued", "InProgress", "Baking", "Ready"]


def champion_parameter(model_name: str) -> str:
    return f"/modelops/{model_name}/champion"


@dataclass
class Rollout:
    deployment_id: str
    function_version: str
    previous_version: str
    model_version: str
    mechanism: str


class Deployer(Protocol):
    mechanism: str

    def in_flight(self) -> str | None:
        """Id of a rollout still running on the function, if any."""

    def start(self, model_version: str, description: str) -> Rollout:
        """Publish a Lambda version pinned to model_version and start moving traffic to it."""

    def live_model_version(self) -> str | None:
        """The model version the `live` alias serves (its primary version)."""


class ChampionPin(Protocol):
    def get(self) -> str | None: ...

    def put(self, version: str) -> None: ...


class SsmChampionPin:
    def __init__(self, ssm: Any, model_name: str):
        self.ssm, self.name = ssm, champion_parameter(model_name)

    def get(self) -> str | None:
        try:
            with aws_errors(f"reading SSM parameter {self.name}"):
                return str(self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"])
        except NotFoundError:
            return None
        except ModelOpsError as exc:
            if "ParameterNotFound" in str(exc):
                return None
            raise

    def put(self, version: str) -> None:
        with aws_errors(f"writing SSM parameter {self.name}"):
            self.ssm.put_parameter(
                Name=self.name,
                Value=version,
                Type="String",
                Overwrite=True,
                Description="Champion model version; the stack resolves it at deploy time",
            )


class LambdaVersions:
    """Publishing predict-function versions pinned to one model version."""

    def __init__(
        self,
        lambda_client: Any,
        function_name: str,
        alias: str = LIVE_ALIAS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.lam, self.function, self.alias, self.sleep = lambda_client, function_name, alias, sleep

    def alias_version(self) -> str:
        with aws_errors(f"reading alias {self.function}:{self.alias}"):
            return str(self.lam.get_alias(FunctionName=self.function, Name=self.alias)["FunctionVersion"])

    def model_version_of(self, function_version: str) -> str | None:
        with aws_errors(f"reading {self.function}:{function_version}"):
            cfg = self.lam.get_function_configuration(FunctionName=self.function, Qualifier=function_version)
        return (cfg.get("Environment") or {}).get("Variables", {}).get(MODEL_VERSION_VAR)

    def _update_environment(self, variables: dict[str, str], revision: dict[str, Any], what: str) -> dict[str, Any]:
        updated = self.lam.update_function_configuration(
            FunctionName=self.function, Environment={"Variables": variables}, **_revision(revision)
        )
        for _ in range(120):  # configuration updates are asynchronous
            if updated.get("LastUpdateStatus", "Successful") != "InProgress":
                break
            self.sleep(1.0)
            updated = self.lam.get_function_configuration(FunctionName=self.function)
        if updated.get("LastUpdateStatus") == "Failed":
            raise ModelOpsError(f"{what}: update failed: {updated.get('LastUpdateStatusReason')}")
        return dict(updated)

    def publish_pinned(self, model_version: str) -> str:
        """Publish a version whose environment pins model_version, then put $LATEST's environment back:
        $LATEST must keep matching what the stack deployed, or a later code-only `sam deploy` would publish
        a version pinned to this candidate even if its rollout was rolled back."""
        what = f"publishing {self.function} pinned to model {model_version}"
        with aws_errors(what):
            latest = self.lam.get_function_configuration(FunctionName=self.function)
            original = dict((latest.get("Environment") or {}).get("Variables", {}))
            updated = self._update_environment({**original, MODEL_VERSION_VAR: model_version}, latest, what)
            try:
                published = self.lam.publish_version(
                    FunctionName=self.function, Description=f"model {model_version}", **_revision(updated)
                )
            finally:
                current = self.lam.get_function_configuration(FunctionName=self.function)
                self._update_environment(original, current, f"restoring the environment of {self.function}")
        return str(published["Version"])

    def live_model_version(self) -> str | None:
        return self.model_version_of(self.alias_version())


def _revision(configuration: dict[str, Any]) -> dict[str, str]:
    """Optimistic locking on the function's RevisionId (Lambda always returns it; some emulators do not)."""
    revision = configuration.get("RevisionId")
    return {"RevisionId": revision} if revision else {}


class CodeDeployDeployer:
    """Rollout through the CodeDeploy deployment group SAM created for the predict function."""

    mechanism = "codedeploy"

    def __init__(
        self,
        versions: LambdaVersions,
        codedeploy: Any,
        application: str,
        group: str,
        pre_traffic_hook: str | None = None,
        post_traffic_hook: str | None = None,
    ):
        self.versions, self.cd = versions, codedeploy
        self.application, self.group = application, group
        self.pre_hook, self.post_hook = pre_traffic_hook, post_traffic_hook

    def in_flight(self) -> str | None:
        with aws_errors(f"listing deployments of {self.application}/{self.group}"):
            ids = self.cd.list_deployments(
                applicationName=self.application, deploymentGroupName=self.group, includeOnlyStatuses=ACTIVE_STATUSES
            ).get("deployments", [])
        return ids[0] if ids else None

    def appspec(self, current: str, target: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "version": 0.0,
            "Resources": [
                {
                    "PredictFunction": {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": self.versions.function,
                            "Alias": self.versions.alias,
                            "CurrentVersion": current,
                            "TargetVersion": target,
                        },
                    }
                }
            ],
        }
        hooks = [{k: v} for k, v in (("BeforeAllowTraffic", self.pre_hook), ("AfterAllowTraffic", self.post_hook)) if v]
        if hooks:
            spec["Hooks"] = hooks
        return spec

    def start(self, model_version: str, description: str) -> Rollout:
        current = self.versions.alias_version()
        target = self.versions.publish_pinned(model_version)
        content = json.dumps(self.appspec(current, target))
        with aws_errors(f"creating a deployment on {self.application}/{self.group}"):
            response = self.cd.create_deployment(
                applicationName=self.application,
                deploymentGroupName=self.group,
                description=description[:100],
                revision={
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()},
                },
            )
        return Rollout(response["deploymentId"], target, current, model_version, self.mechanism)

    def live_model_version(self) -> str | None:
        return self.versions.live_model_version()


class AliasShiftDeployer:
    """Local stand-in for CodeDeploy: the same version publishing, then the alias is shifted directly
    (a weighted canary first, `complete` moves all traffic). No hooks or rollback alarms run."""

    mechanism = "local-alias-shift"

    def __init__(self, versions: LambdaVersions, canary_weight: float = 0.1):
        self.versions, self.weight = versions, canary_weight

    def in_flight(self) -> str | None:
        with aws_errors(f"reading alias {self.versions.function}:{self.versions.alias}"):
            alias = self.versions.lam.get_alias(FunctionName=self.versions.function, Name=self.versions.alias)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return f"local-canary-{next(iter(weights))}" if weights else None

    def start(self, model_version: str, description: str) -> Rollout:
        current = self.versions.alias_version()
        target = self.versions.publish_pinned(model_version)
        with aws_errors(f"shifting {self.weight:.0%} of {self.versions.function}:{self.versions.alias} to {target}"):
            self.versions.lam.update_alias(
                FunctionName=self.versions.function,
                Name=self.versions.alias,
                FunctionVersion=current,
                RoutingConfig={"AdditionalVersionWeights": {target: self.weight}},
            )
        return Rollout(f"local-canary-{target}", target, current, model_version, self.mechanism)

    def complete(self, rollout: Rollout) -> None:
        with aws_errors(
            f"shifting all of {self.versions.function}:{self.versions.alias} to {rollout.function_version}"
        ):
            self.versions.lam.update_alias(
                FunctionName=self.versions.function,
                Name=self.versions.alias,
                FunctionVersion=rollout.function_version,
                RoutingConfig={"AdditionalVersionWeights": {}},
            )

    def live_model_version(self) -> str | None:
        return self.versions.live_model_version()
