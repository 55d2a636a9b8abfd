"""The `modelops` command line. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from modelops.core import env as settings
from modelops.core.errors import ModelOpsError

# Modules that define `register(subparsers)`; each adds one command or command group.
COMMAND_MODULES = ["train", "models", "batch", "retrain", "rollout", "ab", "shadow", "preflight"]
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage block first), still exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Options every command takes, before or after its name: `modelops --registry X models list` and
# `modelops models list --registry X` are the same.
COMMON_OPTIONS: list[tuple[str, dict]] = [
    ("--registry", {"help": "model registry: s3://bucket/prefix or a local directory (default: $MODELOPS_REGISTRY)"}),
    ("--json", {"action": "store_true", "help": "print machine-readable JSON instead of tables"}),
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="modelops",
        description="Train, register, serve, batch-score and roll out scikit-learn models on AWS Lambda.",
    )
    parser.add_argument(
        "--registry", default=settings.text("MODELOPS_REGISTRY") or None, help=COMMON_OPTIONS[0][1]["help"]
    )
    parser.add_argument("--json", action="store_true", help=COMMON_OPTIONS[1][1]["help"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for leaf in _leaves(parser):
        for flag, kwargs in COMMON_OPTIONS:
            if flag not in leaf._option_string_actions:
                # SUPPRESS: given after the command it overrides the global option, otherwise leaves it alone
                leaf.add_argument(flag, **{**kwargs, "default": argparse.SUPPRESS})
    return parser


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers that end a command line (no subcommand below them)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    out: list[argparse.ArgumentParser] = []
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
            out += _leaves(child)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except ModelOpsError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("modelops: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file option the command cannot read or write
        detail = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        return _fail(detail, 1)
    except Exception as exc:  # botocore errors raised outside a wrapped call still get one line
        from modelops.adapters.aws import botocore_failure

        failure = botocore_failure(exc)
        if failure is None:
            raise
        return _fail(failure, 1)


def _fail(message: str, code: int) -> int:
    line = " ".join(message.split())  # one line, whatever the message holds
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    print(f"modelops: error: {line}", file=sys.stderr)
    return code


def _stdout_closed() -> int:
    """The reader of stdout went away (`modelops models list | head -1`): stop quietly. Later writes and the
    final flush go to /dev/null, so Python prints no 'Exception ignored' message at exit either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (captured in tests)
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
