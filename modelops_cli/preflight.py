"""`modelops preflight`: check a samconfig.toml environment against the account before `sam deploy`."""

from __future__ import annotations

import argparse
import shlex
import tomllib
from pathlib import Path
from typing import Any

from modelops.core.errors import ModelOpsError

from .output import emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preflight",
        help="check a deploy configuration against the account before `sam deploy`",
        description="Reads the stack name and parameter overrides of a samconfig.toml environment (over the "
        "template's defaults) and checks the champion pin and the provisioned concurrency the account can give.",
    )
    p.add_argument("--config-env", default="default", help="samconfig.toml environment (default: default)")
    p.add_argument("--samconfig", type=Path, default=Path("samconfig.toml"))
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--stack", help="stack name (default: the environment's stack_name)")
    p.set_defaults(func=run)


def deploy_config(samconfig: Path, env: str) -> tuple[str | None, dict[str, str]]:
    try:
        config = tomllib.loads(samconfig.read_text())
    except OSError as exc:
        raise ModelOpsError(f"cannot read {samconfig}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelOpsError(f"{samconfig} is not valid TOML: {exc}") from None
    if env not in config:
        raise ModelOpsError(f"{samconfig} has no [{env}] environment (has: {', '.join(sorted(config)) or 'none'})")
    sections = config[env]
    deploy = (sections.get("deploy") or {}).get("parameters") or {}
    stack = deploy.get("stack_name") or ((sections.get("global") or {}).get("parameters") or {}).get("stack_name")
    overrides = deploy.get("parameter_overrides") or ""
    items = shlex.split(overrides) if isinstance(overrides, str) else list(overrides)
    return stack, dict(item.split("=", 1) for item in items if "=" in item)


def template_defaults(template: Path) -> dict[str, str]:
    try:
        from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]
    except ImportError:
        raise ModelOpsError("preflight reads template.yaml with the SAM translator: run it from `make venv`") from None
    try:
        doc = yaml_parse(template.read_text()) or {}
    except OSError as exc:
        raise ModelOpsError(f"cannot read {template}: {exc.strerror}") from None
    return {k: str(v["Default"]) for k, v in (doc.get("Parameters") or {}).items() if "Default" in v}


def existing_function(cfn: Any, stack: str) -> str | None:
    try:
        outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except Exception:  # no such stack yet: nothing provisioned to count
        return None
    return next((o["OutputValue"] for o in outputs if o["OutputKey"] == "PredictFunctionName"), None)


def run(args: argparse.Namespace) -> int:
    from modelops.adapters.aws import client
    from modelops.rollout.preflight import run_checks

    stack, overrides = deploy_config(args.samconfig, args.config_env)
    stack = args.stack or stack
    if not stack:
        raise ModelOpsError(f"no stack name: set stack_name in [{args.config_env}] of {args.samconfig} or pass --stack")
    parameters = {**template_defaults(args.template), **overrides}
    lam = client("lambda")
    checks = run_checks(
        stack, parameters, ssm=client("ssm"), lam=lam, function=existing_function(client("cloudformation"), stack)
    )
    if args.json:
        emit_json({"stack": stack, "checks": [c.to_dict() for c in checks]})
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
            if c.fix:
                print(f"      fix: {c.fix}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise ModelOpsError(f"stack {stack} is not ready to deploy: {', '.join(failed)}")
    return 0
