"""CodeDeploy PreTraffic hook for the predict function: replay the model's golden requests against the
new version and report Succeeded or Failed to CodeDeploy (on every path, see modelops.rollout.hook)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from modelops.rollout import hook
from modelops.wiring import hook as hook_wiring

logger = Logger()
wiring = hook_wiring.build()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: object) -> dict:
    result = hook.run_hook(event, wiring.build_context, codedeploy=wiring.clients("codedeploy"))
    return result.to_dict()
