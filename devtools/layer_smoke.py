"""Run every function of template.yaml against its layers as the layer Makefiles build them, under python3.12.

The layers are built for x86_64 (same Makefiles, ARCH=x86_64) so this host can execute them; besides the
function code and its layers, the path holds only what the Lambda runtime itself provides (boto3, botocore and
their dependencies), so a package the layers forgot shows up here rather than in AWS. Each handler module is
imported with its template environment (intrinsics resolved to parameter defaults or placeholders) and a
locally trained model; functions behind API Gateway are also handed every API event in events/ (plus GET /health
and /openapi.json). A handler that raises, or output naming a missing module, fails the run; the status of each
answer is printed (answers that need AWS are 5xx here, since AWS is unreachable).

pandas stays out of every process serving the (array) default model: scikit-learn would import it at cold start
if it could, so the layer ships it as an archive. The predict function is then run once more with a model fitted
on a pandas DataFrame (tests/support/user_models.py), which extracts and imports it, and must answer 200.

    python -m devtools.layer_smoke [--work-dir .aws-sam/smoke] [--python3.12 PATH]

Network: pip downloads the x86_64 wheels the first time. AWS calls go to an unreachable local endpoint.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
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


class Context:
    function_name = "smoke"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smoke:live"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/smoke"
    log_stream_name = "smoke"

    def get_remaining_time_in_millis(self):
        return 30000


for path in sys.argv[2:]:
    event = json.load(open(path))
    answer = handler(event, Context())
    print(f"  {event.get('httpMethod')} {event.get('path')} -> {answer.get('statusCode')}")
print(f"  pandas imported: {'pandas' in sys.modules}")
"""


PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "smoke",
    "AWS::URLSuffix": "amazonaws.com",
}
MISSING_MODULE = re.compile(r"ModuleNotFoundError|No module named|ImportError")


def resolve(value: Any, parameters: dict[str, Any]) -> str:
    """A plausible string for an environment value: parameter defaults for Refs, placeholders for resources."""
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            if arg in PSEUDO_PARAMETERS:
                return PSEUDO_PARAMETERS[arg]
            default = (parameters.get(arg) or {}).get("Default")
            return str(default) if default is not None else f"smoke-{str(arg).lower()}"
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            return re.sub(
                r"\$\{([^}.]+)(?:\.[^}]+)?\}",
                lambda m: resolve(local.get(m.group(1), {"Ref": m.group(1)}), parameters),
                text,
            )
        if key == "Fn::GetAtt":
            return f"smoke-{'-'.join(map(str, arg if isinstance(arg, list) else [arg])).lower()}"
        if key == "Fn::If":
            return resolve(arg[1], parameters)
        if key == "Fn::Join":
            return str(arg[0]).join(resolve(item, parameters) for item in arg[1])
    return "smoke"


def function_environment(template: dict[str, Any], props: dict[str, Any]) -> dict[str, str]:
    parameters = template.get("Parameters") or {}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    variables = {
        **((globals_fn.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }
    return {name: resolve(value, parameters) for name, value in variables.items()}


def find_python312(explicit: str | None) -> str:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = (
        [explicit]
        if explicit
        else [shutil.which("python3.12"), *map(str, sorted(pyenv_root.glob("versions/3.12*/bin/python3.12")))]
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
        built[name] = out
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


def train_model(directory: Path) -> str:
    """Train and write the default model; returns its version."""
    from modelops.model.artifact import write_artifact
    from modelops.model.dataset import load_builtin
    from modelops.model.training import train

    trained = train(load_builtin("breast_cancer"), "breast-cancer")
    return write_artifact(directory, trained.estimator, trained.manifest, trained.golden).version


def train_dataframe_model(directory: Path, work: Path) -> tuple[str, Path]:
    """A ColumnTransformer-by-name model fitted on a DataFrame, and a POST /predict event with its golden rows."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support import user_models
    from support.frame_artifacts import write_frame_artifact

    estimator, X, y = user_models.column_transformer_model()
    manifest = write_frame_artifact(directory, estimator, X, y, "titanic")
    base = json.loads((ROOT / "events" / "predict-valid.json").read_text())
    base["body"] = json.dumps({"instances": json.loads((directory / "golden.json").read_text())["instances"]})
    event = work / "generated-predict-dataframe.json"
    event.write_text(json.dumps(base))
    return manifest.version, event


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
    model_version = train_model(model_dir)
    events = api_events(work)
    frames_dir = Path(tempfile.mkdtemp(dir=work, prefix="frame-model-"))
    shutil.rmtree(frames_dir)
    frame_version, frame_event = train_dataframe_model(frames_dir, work)
    shutil.rmtree(work / "pandas", ignore_errors=True)  # each run extracts the archive it just built
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
        "MODELOPS_MODEL_VERSION": model_version,
        "MODELOPS_MODEL_DIR": str(model_dir),
        "MODELOPS_PANDAS_DIR": str(work / "pandas"),  # the archive is found beside the layer's python/ folder
        "MODELOPS_SIGNING_KEY": "",  # KMS is unreachable here: the locally trained models are unsigned
    }
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    failed = []
    runs = []
    for name, res in sorted(template["Resources"].items()):
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        is_api = any((e or {}).get("Type") == "Api" for e in (props.get("Events") or {}).values())
        runs.append((name, props, list(map(str, events)) if is_api else [], {}))
        if name == "PredictFunction":
            frame_env = {"MODELOPS_MODEL_DIR": str(frames_dir), "MODELOPS_MODEL_NAME": "titanic"}
            runs.append((name, props, [str(frame_event)], {**frame_env, "MODELOPS_MODEL_VERSION": frame_version}))
    for name, props, run_events, extra_env in runs:
        code = ROOT / props.get("CodeUri", globals_fn.get("CodeUri", ""))
        refs = [*globals_fn.get("Layers", []), *props.get("Layers", [])]
        paths = [str(code)]
        paths += [str(layers[r["Ref"]] / "python") for r in refs if isinstance(r, dict) and r.get("Ref") in layers]
        paths.append(str(runtime))
        label = " with a DataFrame model" if extra_env else " with API events" if run_events else ""
        print(f"== {name} ({props.get('Handler')}){label}", flush=True)
        result = subprocess.run(
            [python312, "-c", _PROBE, props.get("Handler", "app.lambda_handler"), *run_events],
            cwd=code,
            env={
                **function_environment(template, props),
                **env,
                **extra_env,
                "PYTHONPATH": os.pathsep.join(paths),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        print("".join(line for line in result.stdout.splitlines(True) if not line.startswith("{")), end="")
        pandas_loaded = "pandas imported: True" in result.stdout
        if MISSING_MODULE.search(result.stdout + result.stderr):
            print("  the output names a missing module: the layers lack a package this function imports")
            failed.append(name)
        elif result.returncode != 0:
            print(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed", file=sys.stderr)
            failed.append(name)
        elif pandas_loaded != bool(extra_env):
            print(f"  pandas {'was' if pandas_loaded else 'was not'} imported: expected only for DataFrame models")
            failed.append(name)
        elif extra_env and "-> 200" not in result.stdout:
            print("  the DataFrame model did not answer 200")
            failed.append(name)
    if failed:
        print(f"error: failed with the built layers: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("every function imports and handles its API events with the built layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
