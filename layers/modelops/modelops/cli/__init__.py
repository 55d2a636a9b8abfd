"""The `modelops` command line. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import ModelOpsError

# Modules that define `register(subparsers)`; each adds one command or command group.
COMMAND_MODULES = ["train", "models", "batch", "retrain", "rollout", "ab", "preflight"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelops",
        description="Train, register, serve, batch-score and roll out scikit-learn models on AWS Lambda.",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get("MODELOPS_REGISTRY"),
        help="model registry as s3://bucket/prefix (default: $MODELOPS_REGISTRY)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModelOpsError as exc:
        print(f"modelops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("modelops: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # botocore errors raised outside a wrapped call still get one line
        from botocore import exceptions as bex

        if isinstance(exc, bex.NoCredentialsError):
            print("modelops: error: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)", file=sys.stderr)
            return 1
        if isinstance(exc, bex.BotoCoreError | bex.ClientError):
            print(f"modelops: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
