"""`make serve`: the API from template.yaml on http://127.0.0.1:PORT (default 3000), like
`sam local start-api` but with no Docker and no AWS account. Ctrl-C, SIGTERM and SIGHUP stop everything
it started, and so does the death of the process that started it (make, a shell, an IDE).

    python -m devtools.serve [--port N] [--pool N] [--template PATH] [--api LogicalId]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from modelops.core.errors import ModelOpsError

from . import processes
from .local_stack import MODEL_CACHE, REPO, LocalStack, OwnModel
from .template import TemplateError

DEFAULT_PORT = 3000
EXAMPLE_REQUEST = REPO / ".local" / "example-request.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make serve", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or DEFAULT_PORT),
        help="port on 127.0.0.1 (env PORT, default 3000; 0 picks a free one)",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=int(os.environ.get("MODELOPS_LOCAL_POOL") or 2),
        help="emulator processes per function, i.e. concurrent requests (default 2)",
    )
    p.add_argument("--template", type=Path, default=REPO / "template.yaml")
    p.add_argument("--api", help="serve only this RestApi's routes (logical id)")
    p.add_argument(
        "--model-cache",
        type=Path,
        default=MODEL_CACHE,
        help="where the trained default model is kept between runs (default .local/models)",
    )
    p.add_argument(
        "--registry",
        default=os.environ.get("REGISTRY") or None,
        help="serve your own model from this local registry directory (env REGISTRY; default with --model-name: "
        ".modelops/registry)",
    )
    p.add_argument(
        "--model-name", default=os.environ.get("MODEL_NAME") or None, help="the model to serve (env MODEL_NAME)"
    )
    p.add_argument(
        "--model-version",
        default=os.environ.get("MODEL_VERSION") or None,
        help="an exact version or alias (env MODEL_VERSION; default: the champion)",
    )
    p.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ["MODEL_DIR"]) if os.environ.get("MODEL_DIR") else None,
        help="serve this artifact directory (model.joblib, manifest.json, golden.json) (env MODEL_DIR)",
    )
    p.add_argument("--quiet", action="store_true", help="no line per request")
    p.add_argument(
        "--exit-with-parent",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop when the process that started this one dies (default: yes)",
    )
    return p.parse_args(argv)


def example_request(stack: LocalStack) -> Path | None:
    """A valid predict body for the served model, for the printed curl line."""
    from modelops.registry import Registry

    if stack.champion is None:
        return None
    params = stack._template().parameters()
    if stack.own is not None and stack.own.directory is not None:
        from modelops.model.artifact import load_from_dir

        manifest = load_from_dir(stack.own.directory).manifest
    else:
        manifest = Registry(stack.registry_uri(), s3=stack.aws.client("s3")).manifest(
            params.get("ModelName", "breast-cancer"), stack.champion
        )
    EXAMPLE_REQUEST.parent.mkdir(parents=True, exist_ok=True)
    EXAMPLE_REQUEST.write_text(json.dumps({"instances": [manifest.schema.example_instance()]}, indent=1))
    return EXAMPLE_REQUEST


def banner(stack: LocalStack) -> list[str]:
    assert stack.gateway is not None
    url = stack.gateway.url
    routes = sorted({f"{r.route.method} {r.route.path}" for r in stack.gateway.routes})
    lines = [
        f"API:      {url}",
        f"Docs:     {url}/docs   (OpenAPI: {url}/openapi.json)",
        f"Routes:   {', '.join(routes)}",
        f"Model:    champion {stack.champion}",
    ]
    body = example_request(stack)
    if body is not None:
        rel = os.path.relpath(body) if body.is_relative_to(Path.cwd()) else str(body)
        lines.append(f"Try:      curl -s -X POST {url}/predict -H 'Content-Type: application/json' -d @{rel}")
    lines.append("Ctrl-C stops the API, the emulators and the local AWS.")
    return lines


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    serving = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        first = not stop.is_set()
        stop.set()
        # interrupt start-up (training, emulator boot) right away, but only once: a second signal
        # must not break off the clean-up that the first one started
        if first and not serving.is_set():
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if args.exit_with_parent:
        processes.exit_with_parent()  # SIGTERMs this process, so the same clean shutdown runs
    log = (lambda _line: None) if args.quiet else (lambda line: print(line, flush=True))
    if args.port and not port_free(args.port):
        print(f"error: port {args.port} is already in use; set PORT to another port", file=sys.stderr)
        return 1
    own = None
    if args.model_dir or args.model_name or args.registry:
        from modelops.registry import DEFAULT_LOCAL_REGISTRY

        registry = None if args.model_dir else (args.registry or DEFAULT_LOCAL_REGISTRY)
        own = OwnModel(registry, args.model_name, args.model_version, args.model_dir)
    try:
        stack = LocalStack(
            args.template,
            pool_size=max(1, args.pool),
            port=args.port,
            model_cache=args.model_cache,
            log=lambda line: print(line, flush=True),
            request_log=log,
            own=own,
        )
    except ModelOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        stack.start(args.api)
        serving.set()
        print("\n".join(["", *banner(stack), ""]), flush=True)
        while not stop.wait(0.5):
            pass
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print("stopping ...", flush=True)
        return 0
    except OSError as exc:
        if exc.errno == 98:
            print(f"error: port {args.port} is already in use; set PORT to another port", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (TemplateError, ModelOpsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()  # from here on a signal only confirms the stop; it must not interrupt the clean-up
        stack.stop()
        processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
