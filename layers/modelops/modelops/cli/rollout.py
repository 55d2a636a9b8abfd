"""`modelops rollout status|rollback`: the predict function's canary deployment and traffic split."""

from __future__ import annotations

import argparse
import os

from ..errors import ModelOpsError
from ..rollout import LIVE_ALIAS, Rollouts, Target
from .output import emit_json, key_values, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollout",
        help="show or roll back the predict function's canary deployment",
        description="CodeDeploy canary releases of the predict function (alias 'live').",
    )
    rs = p.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    for name, helptext, func in (
        ("status", "current deployment and traffic split", status_cmd),
        ("rollback", "stop the deployment and send all traffic to the previous version", rollback_cmd),
    ):
        q = rs.add_parser(name, help=helptext)
        q.add_argument(
            "--stack",
            default=os.environ.get("MODELOPS_STACK"),
            help="CloudFormation stack to read the function and deployment group from ($MODELOPS_STACK)",
        )
        q.add_argument("--function", help="predict function name (instead of --stack)")
        q.add_argument("--application", help="CodeDeploy application (instead of --stack)")
        q.add_argument("--group", help="CodeDeploy deployment group (instead of --stack)")
        q.add_argument("--alias", default=LIVE_ALIAS)
        if name == "rollback":
            q.add_argument("--to", help="function version to route to when no deployment is in flight")
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
    result = Rollouts(target_from(args)).rollback(args.to)
    if args.json:
        emit_json(result)
    else:
        key_values(
            {
                "stopped": result["stopped_deployment"] or "(no deployment in flight)",
                "live version": result["function_version"],
                "model": result["model_version"],
                "traffic": ", ".join(f"{v} {100 * w:.0f}%" for v, w in result["traffic"].items()),
            }
        )
    return 0
