"""`modelops train`: train a model, write its artifact, register it, optionally set an alias."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from modelops.core.errors import ModelOpsError
from modelops.core.names import check_model_name, model_name_from
from modelops.model.artifact import CLASSIFICATION, REGRESSION, write_artifact
from modelops.model.dataset import load_builtin, read_csv
from modelops.model.missing import parse_tokens
from modelops.model.training import train
from modelops.registry import require_registry

from .output import progress, registered

DEFAULT_NAMES = {CLASSIFICATION: "breast-cancer", REGRESSION: "diabetes"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model and register it",
        description="Train a model (the bundled breast-cancer classifier by default, or any CSV), "
        "register it in the S3 registry and optionally point an alias at it.",
    )
    p.add_argument("--registry", default=argparse.SUPPRESS, help="s3://bucket/prefix (overrides the global option)")
    p.add_argument("--data", help="training CSV with a header row; numeric and categorical columns")
    p.add_argument("--target", help="target column in --data")
    p.add_argument(
        "--as-missing",
        metavar="TOKEN[,TOKEN]",
        help="also read these cell values as missing (besides empty cells, NA, NaN, N/A, null, None and "
        "pandas' other defaults), e.g. '?,-'",
    )
    p.add_argument(
        "--categorical",
        metavar="COL[,COL]",
        help="treat these columns as categories even when they hold numbers (codes, zip codes)",
    )
    p.add_argument(
        "--model-name",
        help="registry name: lowercase letters, digits and hyphens (default: breast-cancer, diabetes, or made "
        "from the CSV's file name)",
    )
    p.add_argument("--task", choices=[CLASSIFICATION, REGRESSION], help="default: inferred from the target")
    p.add_argument("--estimator", help="logistic|ridge (default), hgb or random_forest")
    p.add_argument("--alias", help="point this alias (e.g. champion) at the new version")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="also keep the artifact in this directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    registry = require_registry(args.registry)
    if args.data and not args.target:
        raise ModelOpsError("--data needs --target COL")
    for given, flag in (
        (args.target, "--target"),
        (args.as_missing, "--as-missing"),
        (args.categorical, "--categorical"),
    ):
        if given and not args.data:
            raise ModelOpsError(f"{flag} is only used with --data")
    if args.model_name is not None:
        check_model_name(args.model_name)
    if args.data:
        name = args.model_name or model_name_from(Path(args.data).stem)
        if not name:
            raise ModelOpsError(f"no model name can be made from '{Path(args.data).name}': pass --model-name")
        dataset = read_csv(
            args.data, args.target, missing=parse_tokens(args.as_missing), categorical=parse_tokens(args.categorical)
        )
    else:
        builtin = "diabetes" if args.task == REGRESSION else "breast_cancer"
        dataset = load_builtin(builtin)
        name = args.model_name or DEFAULT_NAMES[args.task or CLASSIFICATION]
    registry.check_bucket()
    step = progress(f"training {name}", 4)
    trained = train(dataset, name, task=args.task, estimator_kind=args.estimator, seed=args.seed, progress=step)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.out) if args.out else Path(tmp)
        manifest = write_artifact(directory, trained.estimator, trained.manifest, trained.golden, trained.evaluation)
        step("register")
        registry.register(directory)
    if args.alias:
        registry.set_alias(name, args.alias, manifest.version, reason="trained with --alias", trigger="cli:train")
    result = {
        "name": manifest.name,
        "version": manifest.version,
        "task": manifest.task,
        "estimator": manifest.estimator,
        "metrics": manifest.metrics,
        "alias": args.alias,
        "uri": f"{registry.uri}/models/{manifest.name}/{manifest.version}/",
    }
    return registered(result, manifest.metrics, args.json)
