"""Can the runtime serve this artifact? A fresh interpreter that sees nothing but the runtime layers' packages loads
the artifact directory and answers its golden set through the predict API's own code (artifact.load_from_dir,
ServedModel, service.handle_predict, then hook.compare_with_golden): what the canary's pre-traffic hook checks
later, moved before anything is written to the registry. A pickle that needs a module the layers lack fails here
with that module's name.

Which packages the interpreter sees:
    MODELOPS_LAYER_PATH    directories of built layers (each layer's python/ folder, e.g. from `sam build` or
                           `make layer-smoke`), separated by os.pathsep; run by
    MODELOPS_LAYER_PYTHON  that interpreter (e.g. python3.12, the Lambda runtime's), default this one.
Without them the layers are reproduced from this environment: a directory of links to exactly the distributions
that layers/*/requirements*.txt pin (with their own dependencies; the batch-only Parquet layer aside), the packages the Lambda runtime itself provides
(boto3 and its dependencies) and the modelops package, run by this interpreter with -I -S (no site-packages, no user
site, no PYTHONPATH, no current directory on sys.path). Building the real layers takes minutes (pip downloads, a
python3.12); the links take milliseconds and hold the same distributions at the pinned versions. What they cannot
show is a wheel that differs by platform or Python version: `make layer-smoke` covers that.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core import env as settings
from ..core.errors import ModelOpsError

LAYER_PATH_ENV = "MODELOPS_LAYER_PATH"
LAYER_PYTHON_ENV = "MODELOPS_LAYER_PYTHON"
TIMEOUT_SECONDS = 300.0
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the modelops package (this module is modelops/model/)
LAYERS_DIR = PACKAGE_DIR.parents[1]  # layers/<layer>/requirements*.txt in a checkout
# When the package is not in a checkout that has the requirement files.
FALLBACK_DISTRIBUTIONS = (
    "scikit-learn",
    "joblib",
    "numpy",
    "scipy",
    "threadpoolctl",
    "narwhals",
    "aws-lambda-powertools[tracer]",
    "orjson",
    "pysimdjson",
    "pydantic",
)
RUNTIME_PROVIDED = ("boto3",)  # the python3.12 Lambda runtime ships boto3, botocore and their dependencies

_PROBE = r"""
import json, sys
directory, answer_file = sys.argv[1], sys.argv[2]
sys.path[:0] = json.loads(sys.argv[3])


def answer(**fields):
    with open(answer_file, "w") as out:
        json.dump(fields, out)


try:
    from modelops.model.artifact import load_from_dir
    from modelops.rollout.hook import compare_with_golden
    from modelops.serving.model_holder import ServedModel
    from modelops.serving.body import Limits
    from modelops.serving.service import handle_predict

    loaded = load_from_dir(directory)
    model = ServedModel.from_loaded(loaded)
    golden = loaded.golden or {}
    rows = golden.get("instances") or []
    document, _ = handle_predict(model, {"instances": rows}, "registration-check", Limits(max_rows=max(1, len(rows))))
    answer(ok=True, rows=len(rows), problems=compare_with_golden(golden, document, model.classes))
except Exception as exc:
    # the loader may wrap what unpickling raised: the cause names the missing module or class
    cause = exc if isinstance(exc, (ModuleNotFoundError, AttributeError)) else exc.__cause__
    if isinstance(cause, ModuleNotFoundError):
        answer(ok=False, missing=cause.name, error=f"{type(cause).__name__}: {cause}")
    elif isinstance(cause, AttributeError) and "__main__" in str(cause):
        answer(ok=False, error=f"{type(cause).__name__}: {cause}")
    else:
        message = getattr(exc, "message", None)  # an API error's own text says it all
        answer(ok=False, error=message if isinstance(message, str) else f"{type(exc).__name__}: {exc}")
"""


class RuntimeCheckError(ModelOpsError):
    """The runtime cannot load or score the artifact; missing_module names the module it lacks, if that is why."""

    def __init__(self, message: str, missing_module: str | None = None):
        super().__init__(message)
        self.missing_module = missing_module


def check_serves(directory: str | Path, what: str = "the model", *, timeout: float = TIMEOUT_SECONDS) -> int:
    """Score the artifact's golden set like the runtime does, in a clean process; returns the rows checked."""
    python, paths = runtime_environment()
    if not settings.text(LAYER_PATH_ENV):
        _check_pinned_scikit_learn(Path(directory), what)
    with tempfile.TemporaryDirectory(prefix="modelops-check-") as work:
        answer_file = Path(work) / "answer.json"
        command = [
            python,
            "-I",
            "-S",
            "-c",
            _PROBE,
            str(Path(directory).resolve()),
            str(answer_file),
            json.dumps(paths),
        ]
        try:
            run = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeCheckError(f"{what}: scoring its golden set in the runtime took over {timeout:g} s") from None
        except OSError as exc:
            raise ModelOpsError(f"cannot start {python} to check {what} against the runtime: {exc}") from None
        if not answer_file.exists():
            last = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
            raise RuntimeCheckError(f"{what}: the runtime check process failed ({last})")
        answer: dict[str, Any] = json.loads(answer_file.read_text())
    refused = "; nothing was registered"
    if answer.get("missing"):
        module = answer["missing"]
        raise RuntimeCheckError(
            f"{what} needs module '{module}', which the runtime's layers do not have{refused}", missing_module=module
        )
    if not answer.get("ok"):
        error = str(answer.get("error", "unknown error")).splitlines()[0]
        main = re.search(r"Can't get attribute '([^']+)' on <module '__main__'", error)
        if main:
            raise RuntimeCheckError(
                f"{what} uses {main.group(1)}, defined in a script or notebook (__main__): move it into a module "
                f"that is in the runtime's layers{refused}"
            )
        raise RuntimeCheckError(f"{what} cannot be served by the runtime: {error}{refused}")
    problems = answer.get("problems") or []
    if problems:
        raise RuntimeCheckError(f"{what} answers its golden set differently in the runtime: {problems[0]}{refused}")
    return int(answer.get("rows", 0))


def _check_pinned_scikit_learn(directory: Path, what: str) -> None:
    """Linked from this environment, the layers hold this environment's scikit-learn; the real layers hold the pinned
    one, and the runtime refuses a model saved by another major.minor (artifact.verify)."""
    pinned = pinned_versions().get("scikit-learn")
    saved = json.loads((directory / "manifest.json").read_text()).get("runtime", {}).get("scikit_learn")
    if pinned and saved and pinned.split(".")[:2] != saved.split(".")[:2]:
        raise RuntimeCheckError(
            f"{what} was saved with scikit-learn {saved}, but the runtime's layers pin scikit-learn {pinned}; "
            "refit it with that version; nothing was registered"
        )


def pinned_versions() -> dict[str, str]:
    """name -> version of every `name==version` line in the layers' requirement files."""
    out = {}
    for line in _requirement_lines() if _requirement_files() else []:
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^]]*\])?\s*==\s*([^\s;]+)", line)
        if match:
            out[match.group(1).lower().replace("_", "-")] = match.group(2)
    return out


def runtime_environment() -> tuple[str, list[str]]:
    """(interpreter, sys.path entries) of the runtime to check against."""
    configured = settings.text(LAYER_PATH_ENV)
    python = settings.text(LAYER_PYTHON_ENV) or sys.executable
    if configured:
        paths = [p for p in configured.split(os.pathsep) if p]
        missing = [p for p in paths if not Path(p).is_dir()]
        if missing:
            raise ModelOpsError(f"{LAYER_PATH_ENV}: {missing[0]} is not a directory")
        return python, paths
    return python, [str(_layer_view())]


@lru_cache(maxsize=1)
def _layer_view() -> Path:
    root = Path(tempfile.mkdtemp(prefix="modelops-layers-"))
    atexit.register(shutil.rmtree, root, True)
    for dist in layer_distributions():
        base = Path(str(dist.locate_file("")))
        for top in _top_levels(dist):
            source, link = base / top, root / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    (root / "modelops").symlink_to(PACKAGE_DIR, target_is_directory=True)
    return root


def layer_distributions() -> list[metadata.Distribution]:
    """The installed distributions the layers are made of: their requirement files, resolved through each
    distribution's own requirements (extras included where asked for), plus what the Lambda runtime provides."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.utils import canonicalize_name
    except ModuleNotFoundError:
        raise ModelOpsError(
            "the runtime check needs the 'packaging' distribution here (pip install packaging), or check=False"
        ) from None

    lines = _requirement_lines()
    queue = [Requirement(line) for line in [*lines, *RUNTIME_PROVIDED]]
    extras_seen: dict[str, set[str]] = {}
    found: dict[str, metadata.Distribution] = {}
    while queue:
        req = queue.pop()
        key = canonicalize_name(req.name)
        if key == "modelops":
            continue
        if key in extras_seen and set(req.extras) <= extras_seen[key]:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        extras = extras_seen.setdefault(key, set())
        extras.update(req.extras)
        found[key] = dist
        for text in dist.requires or []:
            try:
                sub = Requirement(text)
            except InvalidRequirement:
                continue
            environments = [{"extra": e} for e in sorted(extras)] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments):
                queue.append(sub)
    return list(found.values())


BATCH_ONLY_LAYERS = ("parquet",)  # not attached to the predict function, so no model may rely on them


def _requirement_files() -> list[Path]:
    files = sorted(p for p in LAYERS_DIR.glob("*/requirements*.txt") if p.parent.name not in BATCH_ONLY_LAYERS)
    return files if (LAYERS_DIR / "modelops" / "requirements.txt") in files else []


def _requirement_lines() -> list[str]:
    files = _requirement_files()
    if not files:
        return list(FALLBACK_DISTRIBUTIONS)
    lines = []
    for path in files:
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                lines.append(line)
    return lines


def _top_levels(dist: metadata.Distribution) -> set[str]:
    tops = set()
    for file in dist.files or []:
        parts = Path(str(file)).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        tops.add(parts[0])
    return tops
