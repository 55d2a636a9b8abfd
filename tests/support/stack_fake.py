"""A stand-in for CloudFormation (with CodeDeploy) acting on one stack's predict function, behind the CloudFormation
client interface modelops.rollout.deploy uses: describe_stacks and create/describe/execute/delete_change_set.

moto can neither run the SAM transform nor CodeDeploy, so this fake implements the documented behaviour a rollout
depends on, on moto's Lambda and SSM:

- An AWS::SSM::Parameter::Value<String> parameter is resolved from SSM at every change set ("CloudFormation retrieves
  the latest value from Parameter Store", CloudFormation user guide on SSM parameter types). A new resolved model
  version changes the function's environment and its version's Description, so CloudFormation publishes a new version
  (every AWS::Lambda::Version property requires replacement) and moves `live` through CodeDeploy (UpdatePolicy
  CodeDeployLambdaAliasUpdate). A code change publishes a new version the same way.
- CloudFormation's AppSpec names as CurrentVersion the alias version CloudFormation recorded. CodeDeploy fails a
  deployment whose CurrentVersion is not the alias's real version: "The Lambda function alias version does not match
  the current version in AppSpec file. (Error code: INVALID_LAMBDA_CONFIGURATION)" (aws/serverless-application-model
  issue #291), and the stack update rolls back.
- A failed update rolls the stack back to the parameters and configuration it had; traffic stays where it was.
- Executing a change set removes all the stack's change sets.
- Each update ends with a "CloudFormation Stack Status Change" event (detail.stack-id, detail.status-details.status,
  detail.client-request-token), as in CloudFormation's events detail reference.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

MODEL_VERSION_VAR = "MODELOPS_MODEL_VERSION"
INVALID_ALIAS = (
    "The Lambda function alias version does not match the current version in AppSpec file. "
    "(Error code: INVALID_LAMBDA_CONFIGURATION)"
)
VERSION_ID = "PredictFunctionVersion3f2a1b0c9d"
_BY_PARAMETER = ("ParameterReference", "ModelVersion", "Static")
_BY_VERSION = ("ResourceAttribute", f"{VERSION_ID}.Version", "Dynamic")
# (logical id, type, Replacement, changed property, ChangeSource, CausingEntity, Evaluation): what CloudFormation
# reports for a new ModelVersion (ResourceChange and ResourceChangeDetail, CloudFormation API reference).
ROLLOUT_CHANGES = [
    ("PredictFunction", "AWS::Lambda::Function", "False", "Environment", *_BY_PARAMETER),
    (VERSION_ID, "AWS::Lambda::Version", "True", "Description", *_BY_PARAMETER),
    ("PredictFunctionAliaslive", "AWS::Lambda::Alias", "False", "FunctionVersion", *_BY_VERSION),
    ("PredictNewVersionErrorsAlarm", "AWS::CloudWatch::Alarm", "False", "Dimensions", *_BY_VERSION),
    ("PredictNewVersionServerErrorsAlarm", "AWS::CloudWatch::Alarm", "False", "Dimensions", *_BY_VERSION),
    ("PredictNewVersionLatencyAlarm", "AWS::CloudWatch::Alarm", "False", "Dimensions", *_BY_VERSION),
    ("PredictNewVersionScoreShiftAlarm", "AWS::CloudWatch::Alarm", "False", "Metrics", *_BY_VERSION),
    ("FeedbackFunction", "AWS::Lambda::Function", "False", "Environment", *_BY_PARAMETER),
]


def change_of(logical, kind, replacement, name, source, cause, evaluation) -> dict[str, Any]:
    detail = {
        "Target": {
            "Attribute": "Properties",
            "Name": name,
            "RequiresRecreation": "Always" if replacement == "True" else "Never",
        },
        "Evaluation": evaluation,
        "ChangeSource": source,
        "CausingEntity": cause,
    }
    return {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": logical,
            "ResourceType": kind,
            "Replacement": replacement,
            "Scope": ["Properties"],
            "Details": [detail],
        },
    }


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeStack:
    def __init__(
        self,
        lam: Any,
        ssm: Any,
        *,
        name: str,
        function: str,
        parameters: dict[str, str],
        canary: Callable[[str], str | None] | None = None,
    ):
        self.lam, self.ssm, self.name, self.function = lam, ssm, name, function
        self.id = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/{uuid.uuid4()}"
        self.parameters = dict(parameters)
        # The canary's verdict on a new function version: None passes, a reason fails it (hook or alarm).
        self.canary = canary or (lambda version: None)
        self.pending_template_changes: list[tuple[str, str]] = []  # what re-running the stored template would add
        self.events: list[dict[str, Any]] = []
        self.change_sets: dict[str, dict[str, Any]] = {}
        self.executed: list[dict[str, Any]] = []
        self.code = "code-1"
        self.resolved = self._resolve(self.parameters)
        self._set_latest(self.resolved)
        self.recorded_alias_version = self._publish()
        lam.create_alias(FunctionName=function, Name="live", FunctionVersion=self.recorded_alias_version)
        self.status = "CREATE_COMPLETE"

    # ---- CloudFormation API -------------------------------------------------------------------
    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in (self.name, self.id):
            raise _error("ValidationError", f"Stack with id {StackName} does not exist", "DescribeStacks")
        return {
            "Stacks": [
                {
                    "StackName": self.name,
                    "StackId": self.id,
                    "StackStatus": self.status,
                    "Parameters": [
                        {"ParameterKey": k, "ParameterValue": v, **self._resolved_value(k, v)}
                        for k, v in self.parameters.items()
                    ],
                }
            ]
        }

    def create_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self.describe_stacks(kwargs["StackName"])
        assert kwargs["ChangeSetType"] == "UPDATE" and kwargs["UsePreviousTemplate"] is True
        assert {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"} <= set(kwargs["Capabilities"])
        name = kwargs["ChangeSetName"]
        if name in self.change_sets:
            raise _error("AlreadyExistsException", f"ChangeSet {name} already exists", "CreateChangeSet")
        parameters = self._merge(kwargs["Parameters"])
        arn = f"arn:aws:cloudformation:us-east-1:123456789012:changeSet/{name}/{uuid.uuid4()}"
        changes = self._changes(parameters, self.code)
        self.change_sets[name] = {
            "ChangeSetId": arn,
            "ChangeSetName": name,
            "Status": "CREATE_COMPLETE" if changes else "FAILED",
            "StatusReason": "" if changes else "The submitted information didn't contain changes.",
            "ExecutionStatus": "AVAILABLE" if changes else "UNAVAILABLE",
            "Changes": [change_of(*change) for change in changes],
            "parameters": parameters,
        }
        return {"Id": arn, "StackId": self.id}

    def describe_change_set(self, ChangeSetName: str, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
        change_set = self._find(ChangeSetName)
        return {k: v for k, v in change_set.items() if k != "parameters"}

    def delete_change_set(self, ChangeSetName: str, StackName: str) -> dict[str, Any]:
        self.change_sets.pop(self._find(ChangeSetName)["ChangeSetName"])
        return {}

    def execute_change_set(
        self, ChangeSetName: str, StackName: str, ClientRequestToken: str | None = None
    ) -> dict[str, Any]:
        change_set = self._find(ChangeSetName)
        assert change_set["ExecutionStatus"] == "AVAILABLE", change_set["StatusReason"]
        self.executed.append({"name": change_set["ChangeSetName"], "parameters": change_set["parameters"]})
        self.change_sets.clear()  # executing one removes every change set of the stack (CloudFormation user guide)
        self._update(change_set["parameters"], self.code, ClientRequestToken)
        return {}

    # ---- what `sam deploy` does ----------------------------------------------------------------
    def sam_deploy(self, overrides: dict[str, str] | None = None, code: str | None = None) -> str:
        """A deploy of the template with samconfig's parameter overrides; parameters not named keep their value
        (sam deploy sends UsePreviousValue for them). Returns the stack status it ends in."""
        overrides = overrides or {}
        parameters = [
            {"ParameterKey": k, "ParameterValue": overrides[k]}
            if k in overrides
            else {"ParameterKey": k, "UsePreviousValue": True}
            for k in self.parameters
        ]
        merged = self._merge(parameters)
        code = code or self.code
        if not self._changes(merged, code):
            return self.status  # "No changes to deploy"
        self._update(merged, code, f"sam-deploy-{uuid.uuid4().hex[:8]}")
        return self.status

    def live_model_version(self) -> str | None:
        version = self.lam.get_alias(FunctionName=self.function, Name="live")["FunctionVersion"]
        env = self.lam.get_function_configuration(FunctionName=self.function, Qualifier=version)["Environment"]
        return env["Variables"].get(MODEL_VERSION_VAR)

    # ---- internals -------------------------------------------------------------------------------
    def _find(self, name_or_arn: str) -> dict[str, Any]:
        for change_set in self.change_sets.values():
            if name_or_arn in (change_set["ChangeSetName"], change_set["ChangeSetId"]):
                return change_set
        raise _error("ChangeSetNotFound", f"ChangeSet [{name_or_arn}] does not exist", "DescribeChangeSet")

    def _merge(self, parameters: list[dict[str, Any]]) -> dict[str, str]:
        merged = {}
        for p in parameters:
            key = p["ParameterKey"]
            merged[key] = self.parameters[key] if p.get("UsePreviousValue") else p["ParameterValue"]
        missing = set(self.parameters) - set(merged)
        if missing:
            raise _error("ValidationError", f"Parameters: {sorted(missing)} must have values", "CreateChangeSet")
        return merged

    def _resolve(self, parameters: dict[str, str]) -> str:
        return str(self.ssm.get_parameter(Name=parameters["ModelVersion"])["Parameter"]["Value"])

    def _resolved_value(self, key: str, value: str) -> dict[str, str]:
        return {"ResolvedValue": self._resolve({"ModelVersion": value})} if key == "ModelVersion" else {}

    def _changes(self, parameters: dict[str, str], code: str) -> list[tuple[str, ...]]:
        if self._resolve(parameters) != self.resolved or code != self.code:
            changes: list[tuple[str, ...]] = list(ROLLOUT_CHANGES)
        else:
            # Another parameter only changes the functions' configuration: SAM's version id hashes the unresolved
            # environment, so no version is published (the README's note on parameters and AutoPublishAlias).
            other = sorted(k for k in parameters if k != "ModelVersion" and parameters[k] != self.parameters[k])
            changes = (
                [
                    (
                        "PredictFunction",
                        "AWS::Lambda::Function",
                        "False",
                        "Environment",
                        "ParameterReference",
                        other[0],
                        "Static",
                    )
                ]
                if other
                else []
            )
        pending = [
            (lid, kind, "False", "Code", "DirectModification", "", "Static")
            for lid, kind in self.pending_template_changes
        ]
        return changes + pending

    def _set_latest(self, model_version: str) -> None:
        env = self.lam.get_function_configuration(FunctionName=self.function)["Environment"]["Variables"]
        self.lam.update_function_configuration(
            FunctionName=self.function, Environment={"Variables": {**env, MODEL_VERSION_VAR: model_version}}
        )

    def _publish(self) -> str:
        return str(self.lam.publish_version(FunctionName=self.function)["Version"])

    def _update(self, parameters: dict[str, str], code: str, token: str | None) -> None:
        self.status = "UPDATE_IN_PROGRESS"
        resolved = self._resolve(parameters)
        failure = None
        if resolved != self.resolved or code != self.code:
            self._set_latest(resolved)
            new_version = self._publish()
            actual = self.lam.get_alias(FunctionName=self.function, Name="live")["FunctionVersion"]
            failure = INVALID_ALIAS if actual != self.recorded_alias_version else self.canary(new_version)
            if failure is None:
                self.lam.update_alias(FunctionName=self.function, Name="live", FunctionVersion=new_version)
                self.recorded_alias_version = new_version
        if failure is None:
            self.parameters, self.code, self.resolved = parameters, code, resolved
            self.status, reason = "UPDATE_COMPLETE", ""
        else:
            self._set_latest(self.resolved)  # the rollback restores the previous configuration
            self.status, reason = "UPDATE_ROLLBACK_COMPLETE", failure
        self.events.append(
            {
                "source": "aws.cloudformation",
                "detail-type": "CloudFormation Stack Status Change",
                "resources": [self.id],
                "detail": {
                    "stack-id": self.id,
                    "status-details": {"status": self.status, "status-reason": reason},
                    "client-request-token": token or "",
                },
            }
        )


class ReadOnlyLambda:
    """A Lambda client that reads but refuses every write: what modelops' own rollout code may do with `live`."""

    WRITES = ("update_alias", "publish_version", "update_function_configuration", "create_alias", "delete_alias")

    def __init__(self, lam: Any):
        self._lam = lam

    def __getattr__(self, name: str) -> Any:
        if name in self.WRITES:
            raise AssertionError(f"modelops must not call lambda.{name}: CloudFormation owns the live alias")
        return getattr(self._lam, name)
