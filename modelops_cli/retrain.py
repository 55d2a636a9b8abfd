"""`modelops retrain`: run the retrain decision by hand (the same code the retrain function runs)."""

from __future__ import annotations

import argparse

from modelops.adapters.objectstore import open_location
from modelops.core import env as settings
from modelops.core.errors import ModelOpsError, NotFoundError
from modelops.core.names import check_model_name

from .output import emit_json, key_values


class NoRollout:
    """Used for --dry-run when no predict function is configured: nothing can be in flight or started."""

    mechanism = "none"

    def in_flight(self) -> None:
        return None

    def check(self) -> None:
        return None

    def start(self, model_version: str, description: str):
        raise ModelOpsError("no predict function configured (MODELOPS_PREDICT_FUNCTION)")

    def live_model_version(self) -> None:
        return None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrain",
        help="retrain the champion's recipe on recent labelled data and roll out a better model",
        description="Train a candidate with the champion's recipe on the original training data plus "
        "recent labelled predictions, compare both on the champion's trusted evaluation set (and the newest "
        "labelled rows, which may only veto), and start a canary rollout only if the candidate wins by the margin "
        "and passes the floors (with MODELOPS_APPROVAL_MODE=manual it waits for `modelops models approve`). "
        "Settings come from the MODELOPS_RETRAIN_* environment variables; flags override.",
    )
    p.add_argument("--registry", default=argparse.SUPPRESS, help="s3://bucket/prefix (overrides the global option)")
    p.add_argument("--model-name", default=settings.text("MODELOPS_MODEL_NAME", "breast-cancer"))
    p.add_argument(
        "--data",
        default=settings.text("MODELOPS_DATA_URI") or None,
        help="s3://bucket/prefix of captured predictions and feedback (default: $MODELOPS_DATA_URI)",
    )
    p.add_argument("--stack", help="deployed stack a winning candidate is rolled out to (a stack update)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="train and compare, but write nothing: no lock, no history, no registration, no rollout",
    )
    p.add_argument("--ignore-cooldown", action="store_true", help="run even if the last retrain decided recently")
    p.add_argument("--margin", type=float, help="required gain on the primary metric (default 0.01)")
    p.add_argument("--recent-days", type=float, help="labelled-data window in days (default 14)")
    p.add_argument(
        "--status", action="store_true", help="show the lock, the cooldown and the last decisions; change nothing"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelops.ports import Deployer
    from modelops.retrain.lock import RetrainLock
    from modelops.wiring import retrain as lifecycle

    if not args.registry:
        raise ModelOpsError("no registry given: pass --registry s3://bucket/prefix or set MODELOPS_REGISTRY")
    check_model_name(args.model_name)
    env = {
        **settings.snapshot(),
        "MODELOPS_REGISTRY": args.registry,
        "MODELOPS_MODEL_NAME": args.model_name,
        "MODELOPS_DATA_URI": args.data or "",
    }
    if args.stack:
        from modelops.rollout.status import Target

        env.update(MODELOPS_PREDICT_FUNCTION=Target.from_stack(args.stack).function, MODELOPS_STACK_NAME=args.stack)
    if args.margin is not None:
        env["MODELOPS_RETRAIN_MARGIN"] = str(args.margin)
    if args.recent_days is not None:
        env["MODELOPS_RETRAIN_RECENT_DAYS"] = str(args.recent_days)
    config = lifecycle.config_from_env(env)
    if args.status:
        registry, name = lifecycle.registry_from_env(env)
        lock = RetrainLock.for_registry(registry, name, cooldown_seconds=config.cooldown_seconds)
        decisions = [e for e in registry.history(name) if e["event"].startswith(("retrain_", "rollout_"))][-5:]
        lock_state = lock.status()
        if args.json:
            emit_json({"lock": lock_state, "recent": decisions})
        else:
            key_values({f"lock.{k}": v for k, v in lock_state.items()})
            for e in decisions:
                print(f"{e['at']}  {e['event']:<18} {e.get('outcome', '-'):<10} {e.get('reason', '')[:100]}")
        return 0
    if not args.data:
        raise ModelOpsError("no labelled data location: pass --data s3://bucket/prefix or set MODELOPS_DATA_URI")
    data_store, data_prefix = open_location(args.data)
    try:
        # a mistyped location would otherwise read as "no labelled data yet"
        data_store.check(data_prefix.rstrip("/") + "/" if data_prefix else "")
    except NotFoundError as exc:
        raise NotFoundError(f"labelled data {args.data}: {exc}") from None
    deployer: Deployer
    if settings.text("MODELOPS_PREDICT_FUNCTION", env=env):
        deployer = lifecycle.deployer_from_env(env)
    elif args.dry_run:
        deployer = NoRollout()
    else:
        raise ModelOpsError(
            "a retrain that may roll out needs --stack, or MODELOPS_STACK_NAME and MODELOPS_PREDICT_FUNCTION "
            "(or use --dry-run)"
        )
    retrainer = lifecycle.retrainer_from_env(env, deployer=deployer)
    result = retrainer.run({"type": "manual", "by": "cli"}, dry_run=args.dry_run, ignore_cooldown=args.ignore_cooldown)
    out = result.to_dict()
    if result.outcome == "failed" and not args.json:
        raise ModelOpsError(f"retrain failed at stage {result.stage}: {result.reason}")
    if args.json:
        emit_json(out)
    else:
        key_values(
            {
                k: out.get(k)
                for k in ("outcome", "reason", "champion", "candidate", "deployment_id", "stage")
                if out.get(k) is not None
            }
        )
        metrics = out.get("metrics") or {}
        metric = metrics.get("metric")
        if metric:
            key_values({f"holdout.{who}.{metric}": metrics[who].get(metric) for who in ("champion", "candidate")})
            if metrics.get("trusted"):
                trusted = metrics["trusted"]
                key_values({f"trusted.{who}.{metric}": trusted[who].get(metric) for who in ("champion", "candidate")})
    if result.outcome == "failed":
        raise ModelOpsError(f"retrain failed at stage {result.stage}: {result.reason}")
    return 0
