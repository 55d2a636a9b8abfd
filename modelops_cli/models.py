"""`modelops models list|show|promote|rollback|history|import|approve|reject`: read and change the registry, register a
model fitted elsewhere, and approve or reject a retrain winner waiting under the `pending` alias."""

from __future__ import annotations

import argparse
from typing import Any

from modelops.registry import ANY, require_registry

from .output import emit_json, key_values, registered, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list, show, promote and roll back registered models",
        description="Inspect and change the S3 model registry.",
    )
    ms = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    ls = ms.add_parser("list", help="list models, or the versions of one model")
    ls.add_argument("name", nargs="?", help="model name: list its versions")
    ls.set_defaults(func=list_cmd)

    show = ms.add_parser("show", help="show a version's manifest summary")
    show.add_argument("name")
    show.add_argument("version", nargs="?", default="champion", help="version or alias (default: champion)")
    show.set_defaults(func=show_cmd)

    promote = ms.add_parser("promote", help="point an alias at a version (conditional on its current value)")
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--alias", default="champion")
    promote.add_argument("--expect", help="fail unless the alias currently points here ('none' for unset)")
    promote.add_argument("--reason", default="manual promotion")
    promote.set_defaults(func=promote_cmd)

    rollback = ms.add_parser("rollback", help="return an alias to its previous version")
    rollback.add_argument("name")
    rollback.add_argument("--alias", default="champion")
    rollback.add_argument("--reason", default="")
    rollback.set_defaults(func=rollback_cmd)

    history = ms.add_parser("history", help="the append-only audit log of a model")
    history.add_argument("name")
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(func=history_cmd)

    approve = ms.add_parser(
        "approve",
        help="roll out the retrain candidate waiting for approval (registry alias pending)",
        description="Start the same rollout an automatic retrain decision starts (candidate alias, stack update) for "
        "VERSION, which must be the pending one, and record who approved it.",
    )
    approve.add_argument("name")
    approve.add_argument("version")
    approve.add_argument("--stack", help="deployed stack to update (default: $MODELOPS_STACK_NAME)")
    approve.set_defaults(func=approve_cmd)

    reject = ms.add_parser("reject", help="reject the retrain candidate waiting for approval")
    reject.add_argument("name")
    reject.add_argument("version")
    reject.add_argument("--reason", required=True, help="why (kept in the registry history)")
    reject.set_defaults(func=reject_cmd)

    imp = ms.add_parser(
        "import",
        help="register a scikit-learn model fitted elsewhere (a joblib file) with a sample of its data",
        description="Register a fitted scikit-learn estimator or Pipeline saved with joblib. The sample CSV gives "
        "the feature schema, drift baseline and golden set (and, with --target, held-out metrics and the data a "
        "retrain starts from). Loading a joblib file runs code from it: import only files you trust.",
    )
    imp.add_argument("--registry", default=argparse.SUPPRESS, help="s3://bucket/prefix or a local directory")
    imp.add_argument("--model", required=True, metavar="FILE.joblib", help="the fitted model, saved with joblib.dump")
    imp.add_argument("--data", required=True, metavar="SAMPLE.csv", help="a sample of the model's input, with a header")
    imp.add_argument("--target", metavar="COL", help="the target column in --data")
    imp.add_argument("--model-name", required=True, metavar="NAME", help="registry name")
    imp.add_argument("--alias", help="point this alias (e.g. champion) at the new version")
    imp.add_argument("--task", choices=["classification", "regression"], help="default: what the model is")
    imp.add_argument("--description", help="free text kept in the manifest")
    imp.add_argument(
        "--no-runtime-check",
        action="store_true",
        help="skip scoring the golden set in a clean process with only the runtime layers' packages",
    )
    imp.set_defaults(func=import_cmd)


def list_cmd(args: argparse.Namespace) -> int:
    registry = require_registry(args.registry)
    if not args.name:
        names = registry.list_models()
        rows: list[dict[str, Any]] = []
        for n in names:
            aliases = registry.aliases(n)
            rows.append(
                {"model": n, "versions": len(registry.list_versions(n)), **{a: s.version for a, s in aliases.items()}}
            )
        if args.json:
            emit_json(rows)
        else:
            table(rows, ["model", "versions", "champion", "challenger"], title=f"models in {registry.uri}")
        return 0
    versions = registry.list_versions(args.name)
    by_version: dict[str, list[str]] = {}
    for alias, state in registry.aliases(args.name).items():
        by_version.setdefault(state.version or "", []).append(alias)
    rows = []
    for v in versions:
        m = registry.manifest(args.name, v)
        main_metric = "accuracy" if m.task == "classification" else "rmse"
        rows.append(
            {
                "version": v,
                "created": m.created_at,
                "estimator": m.estimator,
                main_metric: m.metrics.get(main_metric),
                "aliases": by_version.get(v, []),
            }
        )
    if args.json:
        emit_json(rows)
    else:
        metric = [c for c in ("accuracy", "rmse") if rows and c in rows[0]]
        table(rows, ["version", "created", "estimator", *metric, "aliases"], title=f"{args.name} in {registry.uri}")
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    registry = require_registry(args.registry)
    m = registry.manifest(args.name, args.version)
    summary = m.summary() | {
        "training_data": m.training_data,
        "runtime": m.runtime,
        "sha256": m.artifact.get("sha256"),
        "input": (m.input or {}).get("kind", "array"),
        "source": m.recipe.get("source", "trained"),
    }
    if m.description:
        summary["description"] = m.description
    if args.json:
        emit_json(summary)
        return 0
    shown = ("name", "version", "task", "estimator", "source", "input", "created_at", "target", "classes", "sha256")
    key_values({k: summary[k] for k in (*shown, "description") if k in summary})
    key_values({f"metric.{k}": v for k, v in m.metrics.items()})
    key_values(
        {
            "training_data": f"{m.training_data.get('uri')} ({m.training_data.get('rows')} rows, "
            f"sha256 {str(m.training_data.get('sha256'))[:12]}…)",
            "runtime": ", ".join(f"{k} {v}" for k, v in m.runtime.items()),
        }
    )
    table(
        [{"feature": f["name"], "dtype": f["dtype"], "min": f.get("min"), "max": f.get("max")} for f in m.features],
        ["feature", "dtype", "min", "max"],
    )
    return 0


def promote_cmd(args: argparse.Namespace) -> int:
    registry = require_registry(args.registry)
    expected = ANY if args.expect is None else (None if args.expect == "none" else args.expect)
    state = registry.set_alias(
        args.name, args.alias, args.version, expected=expected, reason=args.reason, trigger="cli:promote"
    )
    out = {
        "model": args.name,
        "alias": args.alias,
        "version": state.version,
        "previous": state.previous[-1] if state.previous else None,
    }
    emit_json(out) if args.json else key_values(out)
    return 0


def rollback_cmd(args: argparse.Namespace) -> int:
    registry = require_registry(args.registry)
    state = registry.rollback(args.name, args.alias, reason=args.reason, trigger="cli:rollback")
    out = {"model": args.name, "alias": args.alias, "version": state.version}
    emit_json(out) if args.json else key_values(out)
    return 0


def history_cmd(args: argparse.Namespace) -> int:
    registry = require_registry(args.registry)
    events = registry.history(args.name, limit=args.limit)
    if args.json:
        emit_json(events)
    else:
        rows = [
            {
                "at": e["at"],
                "event": e["event"],
                "alias": e.get("alias"),
                "from": e.get("from"),
                "to": e.get("to") or e.get("version"),
                "trigger": e.get("trigger"),
                "reason": e.get("reason"),
            }
            for e in events
        ]
        table(rows, ["at", "event", "alias", "from", "to", "trigger", "reason"])
    return 0


def import_cmd(args: argparse.Namespace) -> int:
    from modelops.registry.registration import check_name, register

    from .model_import import load_model, read_sample_csv

    check_name(args.model_name)
    estimator = load_model(args.model)
    X, y = read_sample_csv(args.data, estimator, args.target)
    manifest = register(
        estimator,
        X,
        y,
        name=args.model_name,
        registry=args.registry,
        alias=args.alias,
        task=args.task,
        description=args.description,
        check=not args.no_runtime_check,
        trigger="cli:import",
    )
    registry = require_registry(args.registry)
    result = {
        "name": manifest.name,
        "version": manifest.version,
        "task": manifest.task,
        "estimator": manifest.estimator,
        "input": (manifest.input or {}).get("kind", "array"),
        "features": len(manifest.features),
        "alias": args.alias,
        "uri": f"{registry.uri}/models/{manifest.name}/{manifest.version}/",
        "metrics": manifest.metrics,
    }
    return registered(result, manifest.metrics, args.json)


def _approval_deployer(stack: str | None) -> Any:
    from modelops.core import env as settings
    from modelops.core.errors import ModelOpsError
    from modelops.wiring import retrain as lifecycle

    env = settings.snapshot()
    if stack:
        from modelops.rollout.status import Target

        env.update(MODELOPS_PREDICT_FUNCTION=Target.from_stack(stack).function, MODELOPS_STACK_NAME=stack)
    if not settings.text("MODELOPS_STACK_NAME", env=env) or not settings.text("MODELOPS_PREDICT_FUNCTION", env=env):
        raise ModelOpsError(
            "approving starts a rollout: pass --stack, or set MODELOPS_STACK_NAME and MODELOPS_PREDICT_FUNCTION"
        )
    return lifecycle.deployer_from_env(env), lifecycle.notifier_from_env(env)


def approve_cmd(args: argparse.Namespace) -> int:
    from modelops.retrain.approval import approve, caller_identity, check_pending

    registry = require_registry(args.registry)
    check_pending(registry, args.name, args.version)  # before touching the stack
    deployer, notifier = _approval_deployer(args.stack)
    out = approve(registry, args.name, args.version, deployer, approver=caller_identity(), notifier=notifier)
    emit_json(out) if args.json else print(
        f"{args.name} {args.version} approved by {out['approved_by']}: {out['reason']}"
    )
    return 0


def reject_cmd(args: argparse.Namespace) -> int:
    from modelops.retrain.approval import caller_identity, reject

    registry = require_registry(args.registry)
    out = reject(registry, args.name, args.version, reason=args.reason, approver=caller_identity())
    emit_json(out) if args.json else print(
        f"{args.name} {args.version} rejected by {out['rejected_by']}: {args.reason}"
    )
    return 0
