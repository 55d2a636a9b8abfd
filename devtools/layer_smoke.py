"""Run every function of template.yaml against its layers as the layer Makefiles build them, under python3.12.

The layers are built for x86_64 (same Makefiles, ARCH=x86_64) so this host can execute them; besides the
function code and its layers, the path holds only what the Lambda runtime itself provides (boto3, botocore and
their dependencies), so a package the layers forgot shows up here rather than in AWS. Each handler module is
imported with a locally trained model; functions behind API Gateway also answer every API event in events/
(plus GET /health and /openapi.json) with a non-5xx status.

    python -m devtools.layer_smoke [--work-dir .aws-sam/smoke] [--python3.12 PATH]

Network: pip downloads the x86_64 wheels the first time. AWS calls go to an unreachable local endpoint.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.package_size import load_template

ROOT = Path(__file__).resolve().parents[1]
# What the python3.12 Lambda runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

_PROBE = r"""
import copy, importlib, json, sys
module_name, handler_name = sys.argv[1].rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), handler_name)
failures = []
for path in sys.argv[2:]:
    event = json.load(open(path))
    answer = handler(event, None)
    status = answer.get("statusCode", 0) if isinstance(answer, dict) else 0
    print(f"  {event.get('httpMethod')} {event.get('path')} -> {status}")
    if not 200 <= status < 500:
        failures.append(path)
sys.exit(1 if failures else 0)
"""


def find_python312(explicit: str | None) -> str:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = (
        [explicit]
        if explicit
        else [shutil.which("python3.12"), *map(str, pyenv_root.glob("versions/3.12*/bin/python3.12"))]
    )
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable) if sys.version_info[:2] == (3, 12) else exit(1)"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return probe.stdout.strip()
    raise SystemExit("error: python3.12 (the Lambda runtime) is needed: e.g. pyenv install 3.12")


def build_layers(template: dict[str, Any], work: Path, python312: str) -> dict[str, Path]:
    built = {}
    for name, res in template["Resources"].items():
        if (
            res.get("Type") != "AWS::Serverless::LayerVersion"
            or (res.get("Metadata") or {}).get("BuildMethod") != "makefile"
        ):
            continue
        out = work / "layers" / name
        print(f"== building {name} for x86_64", flush=True)
        subprocess.run(
            ["make", "-s", "-C", str(ROOT / res["Properties"]["ContentUri"]), f"build-{name}",
             f"ARTIFACTS_DIR={out}", "ARCH=x86_64", f"PYTHON312={python312}"],
            check=True,
        )  # fmt: skip
        built[name] = out / "python"
    return built


def runtime_dir(work: Path) -> Path:
    """The Lambda runtime's own packages, copied from this interpreter (pure Python)."""
    target = work / "runtime"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        module = __import__(name)
        source = Path(module.__file__ or "")
        if source.name == "__init__.py":
            shutil.copytree(source.parent, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / source.name)
    return target


def train_model(directory: Path) -> None:
    from modelops.artifact import write_artifact
    from modelops.dataset import load_builtin
    from modelops.training import train

    trained = train(load_builtin("breast_cancer"), "breast-cancer")
    write_artifact(directory, trained.estimator, trained.manifest, trained.golden)


def api_events(work: Path) -> list[Path]:
    events = []
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        if isinstance(event, dict) and "httpMethod" in event:
            events.append(path)
    if events:
        base = json.loads(events[0].read_text())
        for extra in ("/health", "/openapi.json"):
            event = copy.deepcopy(base)
            event.update(httpMethod="GET", path=extra, resource=extra, body=None, isBase64Encoded=False)
            if isinstance(event.get("requestContext"), dict):
                event["requestContext"].update(path=extra, resourcePath=extra, httpMethod="GET")
            generated = work / f"generated-{extra.strip('/').replace('.', '-')}.json"
            generated.write_text(json.dumps(event))
            events.append(generated)
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".aws-sam" / "smoke")
    parser.add_argument("--python3.12", dest="python312")
    args = parser.parse_args(argv)
    python312 = find_python312(args.python312)
    template = load_template(ROOT / "template.yaml")
    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    layers = build_layers(template, work, python312)
    runtime = runtime_dir(work)
    model_dir = Path(tempfile.mkdtemp(dir=work, prefix="model-"))
    shutil.rmtree(model_dir)
    train_model(model_dir)
    events = api_events(work)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "smoke",
        "AWS_SECRET_ACCESS_KEY": "smoke",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "modelops-smoke",
        "MODELOPS_REGISTRY": "s3://modelops-smoke/registry",
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "MODELOPS_MODEL_VERSION": "smoke",
        "MODELOPS_MODEL_DIR": str(model_dir),
    }
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    failed = []
    for name, res in sorted(template["Resources"].items()):
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        code = ROOT / props.get("CodeUri", globals_fn.get("CodeUri", ""))
        refs = [*globals_fn.get("Layers", []), *props.get("Layers", [])]
        paths = [str(code)]
        paths += [str(layers[r["Ref"]]) for r in refs if isinstance(r, dict) and r.get("Ref") in layers]
        paths.append(str(runtime))
        is_api = any((e or {}).get("Type") == "Api" for e in (props.get("Events") or {}).values())
        print(f"== {name} ({props.get('Handler')}){' with API events' if is_api else ''}", flush=True)
        result = subprocess.run(
            [
                python312,
                "-c",
                _PROBE,
                props.get("Handler", "app.lambda_handler"),
                *(map(str, events) if is_api else []),
            ],
            cwd=code,
            env={**env, "PYTHONPATH": os.pathsep.join(paths)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        print(result.stdout, end="")
        if result.returncode != 0:
            print(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed", file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"error: failed with the built layers: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all functions import (and answer their API events) with the built layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
