"""`modelops rollout status|start|rollback`: the predict function's canary deployment and traffic split."""

from __future__ import annotations

import argparse

from modelops.core import env as settings
from modelops.core.errors import ModelOpsError
from modelops.rollout.status import LIVE_ALIAS, Rollouts, Target

from .output import emit_json, key_values, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollout",
        help="show or roll back the predict function's canary deployment",
        description="CodeDeploy canary releases of the predict function (alias 'live').",
    )
    rs = p.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    start = rs.add_parser(
        "start",
        help="roll a registered model version out through the canary (a stack update)",
        description="Update the stack so its predict function serves VERSION: CloudFormation publishes a Lambda "
        "version pinned to it and CodeDeploy shifts `live` through the canary, the PreTraffic hook and the rollback "
        "alarms. When the update completes, the retrain function pins VERSION as the champion.",
    )
    start.add_argument("--stack", default=settings.text("MODELOPS_STACK") or None, help="the stack ($MODELOPS_STACK)")
    start.add_argument("--version", required=True, help="registered model version to serve")
    start.set_defaults(func=start_cmd)
    for name, helptext, func in (
        ("status", "current deployment and traffic split", status_cmd),
        ("rollback", "stop the deployment in flight; CodeDeploy sends all traffic back", rollback_cmd),
    ):
        q = rs.add_parser(name, help=helptext)
        q.add_argument(
            "--stack",
            default=settings.text("MODELOPS_STACK") or None,
            help="CloudFormation stack to read the function and deployment group from ($MODELOPS_STACK)",
        )
        q.add_argument("--function", help="predict function name (instead of --stack)")
        q.add_argument("--application", help="CodeDeploy application (instead of --stack)")
        q.add_argument("--group", help="CodeDeploy deployment group (instead of --stack)")
        q.add_argument("--alias", default=LIVE_ALIAS)
        q.set_defaults(func=func)


def target_from(args: argparse.Namespace) -> Target:
    if args.function and args.application and args.group:
        return Target(args.function, args.application, args.group, args.alias)
    if args.stack:
        return Target.from_stack(args.stack, alias=args.alias)
    raise ModelOpsError(
        "say which deployment: pass --stack NAME (or set MODELOPS_STACK), "
        "or all of --function, --application and --group"
    )


def status_cmd(args: argparse.Namespace) -> int:
    status = Rollouts(target_from(args)).status()
    if args.json:
        emit_json(status)
        return 0
    table(
        [
            {"version": t["function_version"], "model": t["model_version"], "traffic": f"{100 * t['weight']:.1f}%"}
            for t in status["traffic"]
        ],
        ["version", "model", "traffic"],
        title=f"{status['function']}:{status['alias']}",
    )
    if status["deployment"]:
        d = status["deployment"]
        key_values(
            {
                "deployment": d["id"],
                "status": d["status"],
                "config": d["config"],
                "versions": f"{d['from_version']} -> {d['to_version']}",
                "created": d["created"],
                "error": d["error"],
            }
        )
    else:
        print("no deployments yet")
    return 0


def rollback_cmd(args: argparse.Namespace) -> int:
    result = Rollouts(target_from(args)).rollback()
    if args.json:
        emit_json(result)
    else:
        key_values(
            {
                "stopped": result["stopped_deployment"],
                "back to version": result["function_version"],
                "model": result["model_version"],
                "traffic": ", ".join(f"{v} {100 * w:.0f}%" for v, w in result["traffic"].items()),
            }
        )
    return 0


def start_cmd(args: argparse.Namespace) -> int:
    from modelops.rollout.status import start_stack_rollout

    if not args.stack:
        raise ModelOpsError("say which stack: pass --stack NAME or set MODELOPS_STACK")
    rollout = start_stack_rollout(args.stack, args.version)
    out = {
        "stack": args.stack,
        "model_version": rollout.model_version,
        "change_set": rollout.deployment_id,
        "from_function_version": rollout.previous_version,
    }
    if args.json:
        emit_json(out)
    else:
        key_values(out)
        print(f"follow it with: modelops rollout status --stack {args.stack}")
    return 0
