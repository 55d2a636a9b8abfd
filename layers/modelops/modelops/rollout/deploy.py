"""Rolling a model version out to the predict function, and pinning the champion.

Only CloudFormation moves the `live` alias. With SAM's AutoPublishAlias and DeploymentPreference, CloudFormation
starts a CodeDeploy deployment whose AppSpec names, as CurrentVersion, the alias version CloudFormation itself
recorded; CodeDeploy refuses a deployment whose CurrentVersion is not the version the alias points to ("The Lambda
function alias version does not match the current version in AppSpec file", INVALID_LAMBDA_CONFIGURATION). An alias
moved outside CloudFormation would therefore make every later `sam deploy` fail. So a rollout is a stack update:

  1. an SSM parameter /modelops/<stack>/<model>/versions/<version> is created holding the version (never changed
     afterwards);
  2. a change set on the stack's own template (UsePreviousTemplate) points the ModelVersion parameter at it and keeps
     every other parameter;
  3. the change set is checked before it runs: every change must follow from the new ModelVersion (unexpected_changes);
     anything else (a template or transform change waiting to be deployed) refuses the rollout;
  4. executing it, CloudFormation publishes a Lambda version pinned to the candidate, points the rollback alarms at
     it, and CodeDeploy shifts `live` through the canary with the PreTraffic hook.
When the stack update completes, `finalize` (modelops.retrain.run) writes /modelops/<stack>/<model>/champion, the pin that
`sam deploy` resolves. When it fails, CloudFormation rolls the stack back to the parameter it had before, whose value
never changed, so nothing has to be restored."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..adapters.aws import aws_errors
from ..core.errors import ConflictError, ModelOpsError, NotFoundError
from ..ports import Rollout
from ..registry import CANDIDATE, Registry

log = logging.getLogger(__name__)

MODEL_VERSION_VAR = "MODELOPS_MODEL_VERSION"
MODEL_VERSION_PARAMETER = "ModelVersion"  # the template parameter naming the SSM pin the stack resolves
LIVE_ALIAS = "live"
CHANGE_SET_PREFIX = "modelops-rollout-"

# Resources a change of ModelVersion alone changes (tests/template/test_template_rollout.py derives the same set from the
# translated template): the predict function's environment, its published version (replaced: a new version), the live
# alias (moved by CodeDeploy), the rollback alarms watching that version, and the feedback function's environment.
ROLLOUT_RESOURCES = (
    "PredictFunction",
    "PredictFunctionVersion*",
    "PredictFunctionAlias*",
    "PredictNewVersion*Alarm",
    "FeedbackFunction",
)

STABLE_SUFFIXES = ("_COMPLETE",)


class PinNames:
    """SSM names of a stack's pins: every name is under /modelops/<stack>/<model>/, so two stacks never share one."""

    def __init__(self, stack: str, model: str):
        self.stack, self.model = stack, model
        self.root = f"/modelops/{stack}/{model}"

    @property
    def champion(self) -> str:
        return f"{self.root}/champion"

    def version(self, model_version: str) -> str:
        return f"{self.root}/versions/{model_version}"

    def owns(self, name: str) -> bool:
        return name.startswith(self.root + "/")


class SsmPins:
    """The champion pin and the per-version pins of one stack's model in SSM Parameter Store."""

    def __init__(self, ssm: Any, names: PinNames):
        self.ssm, self.names = ssm, names

    @property
    def name(self) -> str:
        return self.names.champion

    def read(self, name: str) -> str | None:
        try:
            with aws_errors(f"reading SSM parameter {name}"):
                return str(self.ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except NotFoundError:
            return None

    def get(self) -> str | None:
        return self.read(self.names.champion)

    def put(self, version: str) -> None:
        with aws_errors(f"writing SSM parameter {self.names.champion}"):
            self.ssm.put_parameter(
                Name=self.names.champion,
                Value=version,
                Type="String",
                Overwrite=True,
                Description="Champion model version; `sam deploy` resolves it (ModelVersion parameter)",
            )

    def ensure_version(self, model_version: str) -> str:
        """The per-version pin of model_version (created once, never overwritten)."""
        name = self.names.version(model_version)
        try:
            with aws_errors(f"writing SSM parameter {name}"):
                self.ssm.put_parameter(
                    Name=name,
                    Value=model_version,
                    Type="String",
                    Overwrite=False,
                    Description="Model version of one rollout; never changed",
                )
        except ConflictError:
            existing = self.read(name)
            if existing != model_version:
                raise ConflictError(f"SSM parameter {name} holds {existing!r}, not {model_version}") from None
        return name


class LambdaVersions:
    """The predict function's published versions and its `live` alias, read through the Lambda API."""

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

    def live_model_version(self) -> str | None:
        return self.model_version_of(self.alias_version())

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
        """Publish a version whose environment pins model_version, then put $LATEST's environment back.
        Only the local stand-in deployer publishes this way; in AWS, CloudFormation publishes versions."""
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


def _revision(configuration: dict[str, Any]) -> dict[str, str]:
    """Optimistic locking on the function's RevisionId (Lambda always returns it; some emulators do not)."""
    revision = configuration.get("RevisionId")
    return {"RevisionId": revision} if revision else {}


def require_own_pin(stack: Mapping[str, Any], names: PinNames) -> str:
    """The SSM parameter a stack resolves its model version from (DescribeStacks' ModelVersion ParameterValue); it
    must be one of this stack's own pins, or another stack's retrain could change what this one serves."""
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    pin = parameters.get(MODEL_VERSION_PARAMETER)
    if pin is None:
        raise ModelOpsError(f"stack {names.stack} has no {MODEL_VERSION_PARAMETER} parameter")
    if not names.owns(pin):
        raise ModelOpsError(
            f"stack {names.stack} resolves its model version from SSM parameter {pin}, which is not one of its own "
            f"pins (under {names.root}/); deploy it with {MODEL_VERSION_PARAMETER}={names.champion}"
        )
    return str(pin)


def change_set_name(model_version: str) -> str:
    """Change set names and client request tokens: letters, digits and hyphens, starting with a letter."""
    return (CHANGE_SET_PREFIX + re.sub(r"[^A-Za-z0-9-]", "-", model_version))[:128]


def unexpected_changes(changes: Sequence[Mapping[str, Any]], allowed: tuple[str, ...] = ROLLOUT_RESOURCES) -> list[str]:
    """Changes of a rollout change set that a change of ModelVersion alone would not make.

    Where CloudFormation explains a change (ResourceChange.Details), every detail must be caused by the ModelVersion
    parameter (ChangeSource ParameterReference) or by a resource the same change set changes (ResourceReference,
    ResourceAttribute): a template or transform change (DirectModification) or another parameter is refused. Without
    details, the resource must be one of `allowed`. Only a Lambda version may be added, removed or replaced."""
    changed = {str((c.get("ResourceChange") or {}).get("LogicalResourceId")) for c in changes}
    problems = []
    for change in changes:
        rc = change.get("ResourceChange") or {}
        logical, action = str(rc.get("LogicalResourceId", "?")), rc.get("Action")
        kind = rc.get("ResourceType", "")
        if rc.get("Replacement") == "True" and kind != "AWS::Lambda::Version":
            problems.append(f"replacement of {logical} ({kind})")
        elif action in ("Add", "Remove", "Import") and kind != "AWS::Lambda::Version":
            problems.append(f"{action} {logical} ({kind})")
        elif rc.get("Details"):
            for detail in rc["Details"]:
                source, cause = detail.get("ChangeSource"), str(detail.get("CausingEntity") or "")
                by_model_version = source == "ParameterReference" and cause == MODEL_VERSION_PARAMETER
                by_changed_resource = source in ("ResourceReference", "ResourceAttribute") and (
                    cause.split(".", 1)[0] in changed
                )
                if not (by_model_version or by_changed_resource):
                    target = (detail.get("Target") or {}).get("Name") or (detail.get("Target") or {}).get("Attribute")
                    problems.append(f"{action} {logical} ({kind}): {target} by {source} {cause}".rstrip())
                    break
        elif not any(fnmatchcase(logical, pattern) for pattern in allowed):
            problems.append(f"{action} {logical} ({kind})")
    return problems


class StackRolloutDeployer:
    """Rollout as an update of the stack itself (see the module docstring)."""

    mechanism = "cloudformation"

    def __init__(
        self,
        cloudformation: Any,
        pins: SsmPins,
        stack_name: str,
        versions: LambdaVersions,
        *,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = 300.0,
        allowed_changes: tuple[str, ...] = ROLLOUT_RESOURCES,
    ):
        self.cfn, self.pins, self.stack = cloudformation, pins, stack_name
        self.versions, self.sleep, self.wait_seconds = versions, sleep, wait_seconds
        self.allowed_changes = allowed_changes

    def describe(self) -> dict[str, Any]:
        with aws_errors(f"reading stack {self.stack}"):
            return dict(self.cfn.describe_stacks(StackName=self.stack)["Stacks"][0])

    def in_flight(self) -> str | None:
        status = str(self.describe().get("StackStatus", ""))
        return None if status.endswith(STABLE_SUFFIXES) else f"stack {self.stack} is {status}"

    def check(self) -> None:
        """The stack must be idle and resolve its model version from one of its own pins."""
        stack = self.describe()
        status = str(stack.get("StackStatus", ""))
        if not status.endswith(STABLE_SUFFIXES) or status.startswith(("DELETE", "ROLLBACK")):
            raise ModelOpsError(f"stack {self.stack} is {status}; a rollout needs a stack that is deployed and idle")
        require_own_pin(stack, self.pins.names)

    def start(self, model_version: str, description: str) -> Rollout:
        self.check()
        previous = self.versions.alias_version()
        pin = self.pins.ensure_version(model_version)
        stack = self.describe()
        parameters = [
            {"ParameterKey": MODEL_VERSION_PARAMETER, "ParameterValue": pin}
            if p["ParameterKey"] == MODEL_VERSION_PARAMETER
            else {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in stack.get("Parameters", [])
        ]
        name = change_set_name(model_version)
        what = f"creating change set {name} on stack {self.stack}"
        with aws_errors(what):
            self._delete_stale(name)
            created = self.cfn.create_change_set(
                StackName=self.stack,
                ChangeSetName=name,
                ChangeSetType="UPDATE",
                UsePreviousTemplate=True,
                Parameters=parameters,
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
                Description=description[:1024],
            )
        change_set = str(created["Id"])
        changes = self._wait_for(change_set)
        problems = unexpected_changes(changes, self.allowed_changes)
        if problems:
            self._delete(change_set)
            raise ModelOpsError(
                f"the rollout of {model_version} would also change what the stack does not yet run "
                f"({'; '.join(problems[:5])}); deploy the stack with `sam deploy` first, then retry"
            )
        with aws_errors(f"executing change set {name} on stack {self.stack}"):
            self.cfn.execute_change_set(ChangeSetName=change_set, StackName=self.stack, ClientRequestToken=name)
        return Rollout(name, model_version, self.mechanism, previous_version=previous)

    def _wait_for(self, change_set: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            with aws_errors(f"reading change set {change_set}"):
                described = self.cfn.describe_change_set(ChangeSetName=change_set, StackName=self.stack)
            status = described.get("Status")
            if status == "CREATE_COMPLETE":
                changes = list(described.get("Changes", []))
                token = described.get("NextToken")
                while token:
                    with aws_errors(f"reading change set {change_set}"):
                        page = self.cfn.describe_change_set(
                            ChangeSetName=change_set, StackName=self.stack, NextToken=token
                        )
                    changes += page.get("Changes", [])
                    token = page.get("NextToken")
                return changes
            if status == "FAILED":
                reason = str(described.get("StatusReason") or "")
                self._delete(change_set)
                if "didn't contain changes" in reason or "No updates" in reason:
                    raise ModelOpsError(f"the stack already serves this model version ({reason})")
                raise ModelOpsError(f"change set {change_set} failed: {reason}")
            if time.monotonic() > deadline:
                self._delete(change_set)
                raise ModelOpsError(f"change set {change_set} was not ready within {self.wait_seconds:.0f} s")
            self.sleep(2.0)

    def _delete(self, change_set: str) -> None:
        # An unexecuted change set changes nothing, so one that cannot be deleted is left behind harmlessly.
        with contextlib.suppress(Exception):
            self.cfn.delete_change_set(ChangeSetName=change_set, StackName=self.stack)

    def _delete_stale(self, name: str) -> None:
        """A change set of the same name left by an earlier attempt would make CreateChangeSet fail."""
        try:
            with aws_errors(f"reading change set {name}"):
                described = self.cfn.describe_change_set(ChangeSetName=name, StackName=self.stack)
        except NotFoundError:
            return
        if described.get("ExecutionStatus") != "EXECUTE_IN_PROGRESS":
            self._delete(str(described.get("ChangeSetId") or name))

    def live_model_version(self) -> str | None:
        return self.versions.live_model_version()


class AliasShiftDeployer:
    """Local stand-in for the stack update (no CloudFormation or CodeDeploy locally): the same pinned Lambda version,
    then the alias is shifted directly (a weighted canary first, `complete` moves all traffic). No hooks or rollback
    alarms run."""

    mechanism = "local-alias-shift"

    def __init__(self, versions: LambdaVersions, canary_weight: float = 0.1):
        self.versions, self.weight = versions, canary_weight

    def in_flight(self) -> str | None:
        with aws_errors(f"reading alias {self.versions.function}:{self.versions.alias}"):
            alias = self.versions.lam.get_alias(FunctionName=self.versions.function, Name=self.versions.alias)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return f"local-canary-{next(iter(weights))}" if weights else None

    def check(self) -> None:
        return None

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
        return Rollout(f"local-canary-{target}", model_version, self.mechanism, current, target)

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


def reset_candidate(registry: Registry, name: str, champion: str | None, reason: str) -> None:
    """No rollout in flight: the candidate alias names the champion again, so the PreTraffic hook accepts nothing
    but the champion."""
    if not champion:
        return
    try:
        registry.set_alias(name, CANDIDATE, champion, reason=reason, trigger="rollout-finished")
    except ModelOpsError:
        log.exception("could not reset the candidate alias of %s", name)
