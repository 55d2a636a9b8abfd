"""CodeDeploy PreTraffic hook for the predict function: replay the model's golden requests against the
new version and report Succeeded or Failed to CodeDeploy (on every path, see modelops.hook)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from modelops import hook
from modelops.aws import client
from modelops.registry import Registry

logger = Logger()


def build_context() -> hook.HookContext:
    registry = Registry(os.environ["MODELOPS_REGISTRY"], s3=client("s3"))
    return hook.HookContext(
        codedeploy=client("codedeploy"),
        lambda_client=client("lambda"),
        load_golden=hook.registry_golden_loader(registry, os.environ["MODELOPS_MODEL_NAME"]),
        target_function=os.environ["MODELOPS_TARGET_FUNCTION_VERSION"],
    )


@logger.inject_lambda_context
def lambda_handler(event: dict, context: object) -> dict:
    result = hook.run_hook(event, build_context, codedeploy=client("codedeploy"))
    return result.to_dict()
