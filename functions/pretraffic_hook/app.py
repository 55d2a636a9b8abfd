"""CodeDeploy PreTraffic hook for the predict function: replay the model's golden requests against the
new version and report Succeeded or Failed to CodeDeploy (on every path, see modelops.rollout.hook)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from modelops.adapters.aws import client
from modelops.core import env as settings
from modelops.registry import Registry
from modelops.rollout import hook
from modelops.rollout.deploy import PinNames, require_own_pin

logger = Logger()


def build_context(deployment_id: str) -> hook.HookContext:
    registry = Registry(settings.required("MODELOPS_REGISTRY"), s3=client("s3"))
    model_name = settings.required("MODELOPS_MODEL_NAME")
    codedeploy = client("codedeploy")
    # The version this deployment moves traffic to, whether `sam deploy` or a retrain rollout started it.
    target = hook.target_from_deployment(codedeploy, deployment_id)
    hook.check_target(target, settings.required("MODELOPS_PREDICT_FUNCTION"))
    stack = settings.text("MODELOPS_STACK_NAME")

    def check_stack() -> None:
        if stack:
            cfn = client("cloudformation")
            require_own_pin(cfn.describe_stacks(StackName=stack)["Stacks"][0], PinNames(stack, model_name))

    return hook.HookContext(
        codedeploy=codedeploy,
        lambda_client=client("lambda"),
        load_golden=hook.registry_golden_loader(registry, model_name),
        target_function=target,
        allowed_models=hook.registry_allowed_models(registry, model_name),
        check_stack=check_stack,
    )


@logger.inject_lambda_context
def lambda_handler(event: dict, context: object) -> dict:
    result = hook.run_hook(event, build_context, codedeploy=client("codedeploy"))
    return result.to_dict()
