"""The pre-traffic hook's objects from its environment: the registry, the CodeDeploy, Lambda and
CloudFormation clients, and the target of the deployment being checked (modelops.rollout.hook.HookContext).

Environment:
    MODELOPS_REGISTRY, MODELOPS_MODEL_NAME   the registry and the model whose golden requests are replayed
    MODELOPS_PREDICT_FUNCTION                the function a deployment may move (any other is refused)
    MODELOPS_STACK_NAME                      the stack whose champion pin the deployment must use (optional)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..adapters import aws
from ..core import env as settings
from ..registry import Registry
from ..rollout import hook
from ..rollout.deploy import PinNames, require_own_pin

Clients = Callable[[str], Any]  # service name -> boto3 client


class HookWiring:
    def __init__(self, env: Mapping[str, str] | None = None, clients: Clients | None = None):
        self.env = env
        self.clients = clients or aws.client

    def build_context(self, deployment_id: str) -> hook.HookContext:
        """The hook's context for one deployment (run_hook calls this inside its own error handling, so a missing
        setting is still reported to CodeDeploy)."""
        env, client = self.env, self.clients
        registry = Registry(settings.required("MODELOPS_REGISTRY", env=env), s3=client("s3"))
        model_name = settings.required("MODELOPS_MODEL_NAME", env=env)
        codedeploy = client("codedeploy")
        # The version this deployment moves traffic to, whether `sam deploy` or a retrain rollout started it.
        target = hook.check_target(
            hook.target_from_deployment(codedeploy, deployment_id),
            settings.required("MODELOPS_PREDICT_FUNCTION", env=env),
        )
        stack = settings.text("MODELOPS_STACK_NAME", env=env)

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


def build(env: Mapping[str, str] | None = None, *, clients: Clients | None = None) -> HookWiring:
    """The hook's objects; `clients` (service name -> client) replaces boto3's."""
    return HookWiring(env, clients)
