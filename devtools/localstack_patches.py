"""Every adaptation between LocalStack and this project's template, in one place, for `make deploy-local`.

LocalStack community (localstack-core, version pinned in requirements-localstack.txt) runs here on the host,
without Docker. Two kinds of adaptation are needed, and both live in this file:

1. RUNTIME PATCHES (``apply_runtime_patches``), applied inside the LocalStack process by
   ``devtools.localstack_launch`` before LocalStack starts. Each works around something LocalStack cannot do
   on a host without a container engine, or a LocalStack bug, and says why it cannot hide a template bug.
2. TEMPLATE CHANGES (``adapt_template``), applied to the translated template (what CloudFormation deploys
   after the SAM transform) before it is handed to LocalStack. Each drops or rewrites something the community
   edition does not have. Every change is returned as a ``Dropped`` record, so the deploy assertions know
   exactly which resources and properties were not deployed and check the rest.

This module is imported by two interpreters: the project's virtualenv (template changes) and LocalStack's own
(runtime patches). Only the standard library is imported at module level; LocalStack is imported inside the
patch functions.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import logging
import re
import socket
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("modelops.localstack_patches")

# ==== 1. runtime patches (inside the LocalStack process) =====================================================

# Names that may be resolved and addresses that may be connected to: the loopback interface only.
_LOOPBACK_NAMES = {"localhost", "localhost.localstack.cloud", "ip6-localhost"}
BLOCKED_OUTBOUND: list[str] = []


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost.localstack.cloud"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def patch_outbound_network() -> None:
    """Refuse every connection and name lookup that would leave the machine.

    LocalStack lacks: nothing - this is a guarantee, not a workaround. Some code paths download at run time
    (Lambda's runtime-init binary, service catalogs, SSL certificates, infrastructure packages); the launcher
    sets the variables that turn those off, and this makes any path they miss fail at once with a message
    naming the destination, instead of hanging on a network that CI does not have.
    What it does: wraps socket.getaddrinfo and socket.socket.connect/connect_ex; non-loopback destinations
    raise OSError and are recorded in BLOCKED_OUTBOUND (logged at WARNING).
    Why it hides no template bug: the template's resources are all served by this process on loopback;
    nothing a stack creates legitimately needs the internet.
    """
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(where: str) -> OSError:
        BLOCKED_OUTBOUND.append(where)
        LOG.warning("blocked outbound network access to %s (deploy-local runs without network)", where)
        return OSError(f"outbound network access to {where} is disabled for deploy-local")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is None or _is_loopback(host if isinstance(host, str) else str(host, "ascii", "replace")):
            return real_getaddrinfo(host, *args, **kwargs)
        raise refuse(str(host))

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise refuse(f"{address[0]}:{address[1]}")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def patch_lambda_without_docker() -> None:
    """Let Lambda functions reach the Active state without a container engine.

    LocalStack lacks: a way to run Lambda code on the host. Creating a function calls the Docker executor's
    prepare_version, which downloads a runtime-init binary and pulls the runtime's container image; without
    Docker the function goes to Failed and every resource that depends on it (versions, aliases, permissions,
    log groups, the state machine) fails with it.
    What it does: makes prepare_version and cleanup_version no-ops, so CreateFunction, PublishVersion,
    CreateAlias and the rest of the control plane behave as in AWS. Invoking a function still fails (there is
    no executor), which the integration tests detect and skip explicitly.
    Why it hides no template bug: only the container preparation is skipped; LocalStack still validates the
    function's configuration (runtime, handler, role, layers, environment, memory, timeout) on create, and
    nothing is claimed about the code, which this deploy never runs.
    """
    from localstack.services.lambda_.invocation.docker_runtime_executor import DockerRuntimeExecutor

    DockerRuntimeExecutor.prepare_version = classmethod(lambda cls, function_version: None)  # type: ignore[method-assign,assignment]
    DockerRuntimeExecutor.cleanup_version = classmethod(lambda cls, function_version: None)  # type: ignore[method-assign,assignment]


def patch_firehose_generated_name() -> None:
    """Give a DeliveryStream without DeliveryStreamName the generated name LocalStack already computes.

    LocalStack lacks (bug): its AWS::KinesisFirehose::DeliveryStream handler generates a name when the
    template gives none, passes it to CreateDeliveryStream, but keeps it out of the resource model; its next
    poll reads model["DeliveryStreamName"] and the resource fails with KeyError: 'DeliveryStreamName'.
    What it does: fills the generated name (same generator, same stack and logical id) into the model before
    the handler's first call, so both calls see it.
    Why it hides no template bug: CloudFormation generates a name for an unnamed stream too (the property is
    optional), and the generated name contains the stack name, so two stacks still get different streams.
    """
    from localstack.services.kinesisfirehose.resource_providers import aws_kinesisfirehose_deliverystream as mod

    provider = mod.KinesisFirehoseDeliveryStreamProvider
    original = provider.create

    def create(self: Any, request: Any) -> Any:
        model = request.desired_state
        if not model.get("DeliveryStreamName"):
            model["DeliveryStreamName"] = mod.util.generate_default_name(
                request.stack_name, request.logical_resource_id
            )
        return original(self, request)

    provider.create = create  # type: ignore[method-assign]


def patch_stepfunctions_integer_percentage() -> None:
    """Accept an integer ToleratedFailurePercentage in a Map state, as AWS does.

    LocalStack lacks (bug): its ASL grammar takes only a non-integer number token there, so
    ``"ToleratedFailurePercentage": 0`` fails CreateStateMachine with "ASLParserException ... no viable
    alternative at input '"ToleratedFailurePercentage":0'". AWS accepts any number from 0 to 100.
    What it does: before LocalStack's parser reads a definition, integer values of that one field are
    written as floats (0 -> 0.0). The stored definition (DescribeStateMachine) is the original one.
    Why it hides no template bug: the value and every other part of the definition are unchanged, and
    LocalStack still parses and validates the whole definition (states, transitions, Map, ItemReader).
    """
    from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.parse

    def as_float(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: float(v)
                if k == "ToleratedFailurePercentage" and isinstance(v, int) and not isinstance(v, bool)
                else as_float(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [as_float(v) for v in node]
        return node

    def parse(definition: str) -> Any:
        if "ToleratedFailurePercentage" in definition:
            with contextlib.suppress(ValueError):  # not JSON: LocalStack's own parser reports the error
                definition = json.dumps(as_float(json.loads(definition)))
        return original(definition)

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def patch_change_set_use_previous_template() -> None:
    """Accept CreateChangeSet with UsePreviousTemplate, as AWS does.

    LocalStack lacks: its CreateChangeSet (the engine deploy-local runs) requires TemplateBody or TemplateURL and
    answers "Specify exactly one of 'TemplateBody' or 'TemplateUrl'" to UsePreviousTemplate=true, which the
    CloudFormation API reference documents ("Whether to reuse the template that's associated with the stack to
    create the change set"). A rollout (modelops.rollout.deploy) is exactly such a change set.
    What it does: for such a request, puts the stack's current template into TemplateBody before LocalStack's
    handler runs, which is what UsePreviousTemplate means (from its parsed form when LocalStack kept no body,
    as for a stack created from TemplateURL).
    Why it hides no template bug: the template is the one deployed and already checked; the change set's
    parameters, changes and execution are LocalStack's own.
    """
    from localstack.services.cloudformation import provider as mod

    original = mod.CloudformationProvider.create_change_set

    def create_change_set(self: Any, context: Any, request: Any) -> Any:
        if request.get("UsePreviousTemplate") and not request.get("TemplateBody") and not request.get("TemplateURL"):
            stacks = mod.get_cloudformation_store(context.account_id, context.region).stacks.values()
            current = [s for s in stacks if request.get("StackName") in (s.stack_name, s.stack_id)]
            if current:
                request["TemplateBody"] = current[-1].template_body or _stored_template(current[-1])
                request.pop("UsePreviousTemplate")
        return original(self, context, request)

    # keep the handler markers (operation, expand_parameters, pass_context) LocalStack dispatches by
    for marker in ("operation", "expand_parameters", "pass_context"):
        setattr(create_change_set, marker, getattr(original, marker))
    mod.CloudformationProvider.create_change_set = create_change_set  # type: ignore[method-assign]


def patch_lambda_version_replacement() -> None:
    """Publish a new Lambda version when a version's Description or CodeSha256 changes, as CloudFormation does.

    LocalStack lacks: updates of AWS::Lambda::Version. Its provider's update raises NotImplementedError and the
    engine keeps the old version, while CloudFormation's resource reference says "Update requires: Replacement" for
    Description and CodeSha256 (a new version is published and its dependents, the alias among them, follow it).
    SAM's AutoPublishAlias, and so every model rollout, depends on that replacement.
    What it does: the provider's update publishes a version the way its create does, and returns it.
    Why it hides no template bug: the version is published from the function's configuration as updated by the
    same stack update; the alias and the other dependents are LocalStack's own updates.
    """
    from localstack.services.lambda_.resource_providers.aws_lambda_version import LambdaVersionProvider

    def update(self: Any, request: Any) -> Any:
        return self.create(request)

    LambdaVersionProvider.update = update  # type: ignore[method-assign]


def patch_lambda_alias_update() -> None:
    """Update a Lambda alias in place when its version, description or routing changes, as CloudFormation does.

    LocalStack lacks: updates of AWS::Lambda::Alias (its provider's update raises NotImplementedError, and the
    alias stays on its first version). In AWS, with SAM's CodeDeploy update policy, CodeDeploy moves the alias; the
    LocalStack deploy drops that policy (see adapt_template), so the alias is updated directly.
    What it does: UpdateAlias with the alias's new FunctionVersion, Description and RoutingConfig.
    Why it hides no template bug: the values are the stack's resolved properties; LocalStack still checks that the
    version exists.
    """
    from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
    from localstack.services.lambda_.resource_providers.lambda_alias import LambdaAliasProvider

    def update(self: Any, request: Any) -> Any:
        model = request.desired_state
        params = {
            k: model[k]
            for k in ("FunctionName", "Name", "FunctionVersion", "Description", "RoutingConfig")
            if k in model
        }
        result = request.aws_client_factory.lambda_.update_alias(**params)
        model["Id"] = result["AliasArn"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    LambdaAliasProvider.update = update  # type: ignore[method-assign]


def _stored_template(stack: Any) -> str:
    """The template a stack was created with, when LocalStack kept no body (a stack created from TemplateURL):
    its parsed template without the keys LocalStack adds to it."""
    template = copy.deepcopy(stack.template_original)
    for key in ("StackName", "StackId", "ChangeSetName"):
        template.pop(key, None)
    for resource in (template.get("Resources") or {}).values():
        if isinstance(resource, dict):
            resource.pop("LogicalResourceId", None)
    return json.dumps(template)


RUNTIME_PATCHES = (
    patch_outbound_network,
    patch_lambda_without_docker,
    patch_firehose_generated_name,
    patch_stepfunctions_integer_percentage,
    patch_change_set_use_previous_template,
    patch_lambda_version_replacement,
    patch_lambda_alias_update,
)


def apply_runtime_patches() -> None:
    for patch in RUNTIME_PATCHES:
        patch()
        print(f"deploy-local: applied {patch.__name__}", flush=True)


# The resources a rollout's change set may change, as deploy-local's rollout check passes them to
# modelops.rollout.deploy.StackRolloutDeployer.
# LocalStack lacks: CloudFormation's change computation. Its change sets list every resource whose properties
# hold an intrinsic function as "Modify", without ResourceChange.Details, so the rollout's check of what may change
# (modelops.rollout.deploy.unexpected_changes: details caused by ModelVersion, or else the known rollout resources) would
# refuse every LocalStack rollout.
# What it does: the check accepts any resource here.
# Why it hides no template bug: the check is tested against change sets shaped as CloudFormation reports them
# (tests/unit/rollout/test_lifecycle_deploy.py); what deploy-local checks is the rest: the change set on the stack's own
# template, the new ModelVersion, its execution, and the version `live` then serves.
LOCALSTACK_ROLLOUT_CHANGES = ("*",)

# ==== 2. template changes (translated template, before deploying to LocalStack) ==============================


@dataclass(frozen=True)
class Dropped:
    """One thing the LocalStack deploy leaves out: a whole resource, or one property path of a resource."""

    logical_id: str
    what: str  # "resource" or a property path such as "UpdatePolicy.CodeDeployLambdaAliasUpdate"
    resource_type: str
    reason: str
    value: Any = None  # what was removed, for checks that compare it with the parameters

    def __str__(self) -> str:
        target = self.logical_id if self.what == "resource" else f"{self.logical_id}.{self.what}"
        return f"{target} ({self.resource_type}): {self.reason}"


# Resource types the community edition has no provider for. CodeDeploy and AppConfig are Pro-only services.
UNSUPPORTED_TYPES = {
    "AWS::CodeDeploy::Application": "CodeDeploy is not in LocalStack community",
    "AWS::CodeDeploy::DeploymentGroup": "CodeDeploy is not in LocalStack community",
    "AWS::AppConfig::Application": "AppConfig is not in LocalStack community",
    "AWS::AppConfig::Environment": "AppConfig is not in LocalStack community",
    "AWS::AppConfig::ConfigurationProfile": "AppConfig is not in LocalStack community",
    "AWS::AppConfig::HostedConfigurationVersion": "AppConfig is not in LocalStack community",
    "AWS::AppConfig::Deployment": "AppConfig is not in LocalStack community",
    # The PutDashboard API exists, the CloudFormation resource does not; deploy-local puts the body itself.
    "AWS::CloudWatch::Dashboard": "LocalStack community has no CloudFormation provider for dashboards",
}
# What a Ref to a dropped resource becomes: a readable, per-stack string instead of a physical id.
PLACEHOLDER = "dropped-for-localstack-{stack}-{logical_id}"


def placeholder(stack: str, logical_id: str) -> str:
    return PLACEHOLDER.format(stack=stack, logical_id=logical_id)


def adapt_template(translated: dict[str, Any], stack_name: str) -> tuple[dict[str, Any], list[Dropped]]:
    """The translated template as LocalStack community can deploy it, and the list of what was left out.

    Changes, each also recorded in the returned list:
    - Resources of UNSUPPORTED_TYPES (CodeDeploy application and deployment group, the AppConfig A/B split
      store, the CloudWatch dashboard) are removed. LocalStack lacks CodeDeploy and AppConfig, and has no
      CloudFormation provider for dashboards; with CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES=0 they would fail
      the stack, and skipping them silently would report CREATE_COMPLETE for resources that do not exist.
      (The checks still resolve the dashboard's body, check it names this stack's alarms, and put it.)
      Every Ref / GetAtt / ${} to them becomes the string PLACEHOLDER, so the values that carry them
      (environment variables, IAM policy ARNs, an EventBridge pattern, outputs) are still deployed and
      visibly marked; whether those values are right in AWS is part of what cannot be checked here.
      Resources that DependsOn them lose that dependency.
    - UpdatePolicy.CodeDeployLambdaAliasUpdate of an AWS::Lambda::Alias is removed: it names the deployment
      group, so LocalStack fails the alias. Without it the alias points at the new version at once, which is
      what AllAtOnce does in AWS; the canary itself (traffic shifting, hooks, alarms) cannot be checked here.
    - ProvisionedConcurrencyConfig of an AWS::Lambda::Alias is removed: LocalStack starts the provisioned
      execution environments at once, which fails without Docker (FUNCTION_ERROR_INIT_FAILURE) and with it
      the alias. The removed value is kept in the record; the checks compare it with PredictInstanceCount.
    These do not hide template bugs elsewhere: nothing else is touched, the remaining resources are deployed
    as CloudFormation receives them, and the assertions check that exactly the expected resources exist.
    """
    template = copy.deepcopy(translated)
    resources: dict[str, Any] = template["Resources"]
    dropped: list[Dropped] = []

    removed = sorted(k for k, v in resources.items() if v.get("Type") in UNSUPPORTED_TYPES)
    for logical_id in removed:
        rtype = resources[logical_id]["Type"]
        dropped.append(Dropped(logical_id, "resource", rtype, UNSUPPORTED_TYPES[rtype]))
        del resources[logical_id]

    for logical_id, body in resources.items():
        policy = body.get("UpdatePolicy", {})
        if body.get("Type") == "AWS::Lambda::Alias" and "CodeDeployLambdaAliasUpdate" in policy:
            del policy["CodeDeployLambdaAliasUpdate"]
            if not policy:
                del body["UpdatePolicy"]
            dropped.append(
                Dropped(
                    logical_id,
                    "UpdatePolicy.CodeDeployLambdaAliasUpdate",
                    body["Type"],
                    "names the CodeDeploy deployment group (not in LocalStack community); the alias moves at once",
                )
            )
        props = body.get("Properties", {})
        if body.get("Type") == "AWS::Lambda::Alias" and "ProvisionedConcurrencyConfig" in props:
            dropped.append(
                Dropped(
                    logical_id,
                    "Properties.ProvisionedConcurrencyConfig",
                    body["Type"],
                    "LocalStack provisions concurrency by starting execution environments, which needs Docker",
                    props.pop("ProvisionedConcurrencyConfig"),
                )
            )
        depends = body.get("DependsOn")
        if depends:
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed]
            if kept:
                body["DependsOn"] = kept
            else:
                del body["DependsOn"]

    gone = set(removed)
    for section in ("Resources", "Outputs"):
        for key, value in list(template.get(section, {}).items()):
            template[section][key] = _replace_refs(value, gone, stack_name)
    return template, dropped


def _replace_refs(value: Any, gone: set[str], stack: str) -> Any:
    if isinstance(value, list):
        return [_replace_refs(v, gone, stack) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and arg in gone:
            return placeholder(stack, arg)
        if key == "Fn::GetAtt":
            target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
            if target in gone:
                return placeholder(stack, target)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], dict(arg[1]))
            for name in gone:
                for token in (f"${{{name}}}", *(m for m in _sub_attributes(text, name))):
                    text = text.replace(token, placeholder(stack, name))
            variables = {k: _replace_refs(v, gone, stack) for k, v in variables.items()}
            return {"Fn::Sub": [text, variables] if variables else text}
    return {k: _replace_refs(v, gone, stack) for k, v in value.items()}


def _sub_attributes(text: str, name: str) -> list[str]:
    """Tokens like ${Name.Attribute} in a Fn::Sub string."""
    out = []
    start = 0
    prefix = "${" + name + "."
    while (i := text.find(prefix, start)) >= 0:
        j = text.find("}", i)
        if j < 0:
            break
        out.append(text[i : j + 1])
        start = j + 1
    return out


def references(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref, GetAtt, ${} in Sub); for checks on adapted templates."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= references(v)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                return {arg}
            if key == "Fn::GetAtt":
                return {arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]}
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                local = set() if isinstance(arg, str) else set(arg[1])
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text)} - local
                if not isinstance(arg, str):
                    found |= references(arg[1])
                return found
        for v in value.values():
            found |= references(v)
    return found


def dumps(template: dict[str, Any]) -> str:
    return json.dumps(template, indent=1, sort_keys=False)
