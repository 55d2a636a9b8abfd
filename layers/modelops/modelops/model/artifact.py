"""Model artifacts: model.joblib + manifest.json (+ golden.json, + evaluation.csv), with integrity and version checks.

joblib/pickle can run arbitrary code while loading, so nothing reaches joblib.load until the
bytes match the sha256 recorded in the manifest and the manifest's scikit-learn major.minor
matches the runtime's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ArtifactIntegrityError, MissingModuleError, ModelOpsError, VersionSkewError

if TYPE_CHECKING:
    from .schema import FeatureSchema

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
GOLDEN_FILE = "golden.json"
TRAINING_DATA_FILE = "training.csv"  # an imported model's training sample, kept with its version for retraining
EVALUATION_FILE = "evaluation.csv"  # the trusted evaluation set a retrain decides on (modelops.model.trusted)
SIGNATURE_FILE = "signature.json"  # a KMS signature of the artifact (modelops.model.signing)
CLASSIFICATION = "classification"
REGRESSION = "regression"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def runtime_versions() -> dict[str, str]:
    """Versions of the libraries that decide whether a pickle loads correctly (read without importing sklearn)."""
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "scikit_learn": version("scikit-learn"),
        "numpy": version("numpy"),
        "joblib": version("joblib"),
    }


def major_minor(ver: str) -> str:
    return ".".join(ver.split(".")[:2])


@dataclass
class Manifest:
    name: str
    version: str
    created_at: str
    task: str
    estimator: str
    features: list[dict[str, Any]]
    target: str
    metrics: dict[str, float]
    training_data: dict[str, Any]
    runtime: dict[str, str]
    baseline: dict[str, dict[str, Any]]
    recipe: dict[str, Any]
    classes: list[Any] | None = None
    artifact: dict[str, Any] = field(default_factory=dict)
    golden: dict[str, Any] = field(default_factory=dict)
    # What the model is called with: absent for a numpy array in feature order (every model before this
    # field existed), {"kind": "dataframe", "columns": [...]} for a model fitted on a pandas DataFrame.
    input: dict[str, Any] | None = None
    description: str = ""
    # The trusted evaluation set stored with the version (modelops.model.trusted): {"file", "sha256", "rows", "origin"};
    # empty for versions registered before it existed.
    evaluation: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> FeatureSchema:
        # Imported here: the schema needs numpy, and functions without the ML runtime layer read manifests too.
        from .schema import FeatureSchema

        return FeatureSchema.from_list(self.features)

    def to_json(self) -> bytes:
        data = asdict(self)
        for optional in ("input", "description", "evaluation"):  # absent unless set: older manifests stay as they were
            if not data[optional]:
                del data[optional]
        return json.dumps(data, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        try:
            raw = json.loads(data)
            known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
            return cls(**known)
        except (ValueError, TypeError) as exc:
            raise ArtifactIntegrityError(f"manifest.json is not a valid manifest: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "estimator": self.estimator,
            "created_at": self.created_at,
            "classes": self.classes,
            "target": self.target,
            "features": [{"name": f["name"], "dtype": f["dtype"]} for f in self.features],
            "metrics": self.metrics,
        }


@dataclass
class LoadedModel:
    manifest: Manifest
    estimator: Any
    golden: dict[str, Any] | None = None


def write_artifact(
    directory: str | Path,
    estimator: Any,
    manifest: Manifest,
    golden: dict[str, Any] | None,
    evaluation: bytes | None = None,
) -> Manifest:
    """Serialize the estimator, fill in the checksums and write all files into directory. evaluation: the trusted
    evaluation set's CSV; manifest.evaluation must already describe it (modelops.model.trusted.describe)."""
    import joblib

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    model_bytes = buffer.getvalue()
    (directory / MODEL_FILE).write_bytes(model_bytes)
    manifest.artifact = {"file": MODEL_FILE, "sha256": sha256_bytes(model_bytes), "bytes": len(model_bytes)}
    if golden is not None:
        golden_bytes = json.dumps(golden, indent=1).encode()
        (directory / GOLDEN_FILE).write_bytes(golden_bytes)
        manifest.golden = {"file": GOLDEN_FILE, "sha256": sha256_bytes(golden_bytes), "rows": len(golden["instances"])}
    if evaluation is not None:
        if manifest.evaluation.get("sha256") != sha256_bytes(evaluation):
            raise ArtifactIntegrityError(f"{EVALUATION_FILE} does not match the manifest's evaluation sha256")
        (directory / EVALUATION_FILE).write_bytes(evaluation)
    else:
        manifest.evaluation = {}  # never describe a file that is not written
    (directory / MANIFEST_FILE).write_bytes(manifest.to_json())
    return manifest


def verify(manifest: Manifest, model_bytes: bytes) -> None:
    """Refuse tampered, truncated or version-skewed artifacts. Never unpickles anything."""
    expected = manifest.artifact.get("sha256")
    if not expected:
        raise ArtifactIntegrityError(
            f"model {manifest.name}/{manifest.version}: manifest has no sha256 for {MODEL_FILE}"
        )
    actual = sha256_bytes(model_bytes)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"model {manifest.name}/{manifest.version}: {MODEL_FILE} sha256 {actual[:12]}… does not match "
            f"the manifest's {expected[:12]}… ({len(model_bytes)} bytes); refusing to load it"
        )
    trained = manifest.runtime.get("scikit_learn", "unknown")
    # the package's own version: unpickling imports scikit-learn next anyway, while importlib.metadata would
    # scan every installed distribution (tens of milliseconds of a cold start)
    import sklearn

    running = sklearn.__version__
    if major_minor(trained) != major_minor(running):
        raise VersionSkewError(
            f"model {manifest.name}/{manifest.version} was trained with scikit-learn {trained} "
            f"but this runtime has scikit-learn {running}; retrain it or use a matching runtime"
        )


def load_from_bytes(manifest_bytes: bytes, model_bytes: bytes, golden_bytes: bytes | None = None) -> LoadedModel:
    manifest = Manifest.from_json(manifest_bytes)
    with _without_pandas_for_arrays(manifest):  # verify imports scikit-learn, which imports pandas if it can
        verify(manifest, model_bytes)
    estimator = _unpickle(manifest, model_bytes)
    golden = None
    if golden_bytes is not None:
        if manifest.golden.get("sha256") != sha256_bytes(golden_bytes):
            raise ArtifactIntegrityError(
                f"model {manifest.name}/{manifest.version}: {GOLDEN_FILE} does not match its sha256"
            )
        golden = json.loads(golden_bytes)
    return LoadedModel(manifest=manifest, estimator=estimator, golden=golden)


def _without_pandas_for_arrays(manifest: Manifest) -> contextlib.AbstractContextManager[None]:
    """pandas hidden from this thread (frames.pandas_hidden) for an array model, unless already imported."""
    from . import frames

    if frames.wants_dataframe(manifest.input) or "pandas" in sys.modules:
        return contextlib.nullcontext()
    return frames.pandas_hidden()


def _unpickle(manifest: Manifest, model_bytes: bytes) -> Any:
    """joblib.load, with pandas made importable first for DataFrame models (or when the pickle asks for it),
    and the usual failures of user code told apart: a module the runtime lacks, a class from __main__.
    An array model is loaded with pandas hidden (frames.pandas_hidden) unless pandas is already imported."""
    import joblib

    from . import frames

    if frames.wants_dataframe(manifest.input):
        frames.pandas_for_model()
    where = f"model {manifest.name}/{manifest.version}"
    for attempt in (1, 2):
        try:
            with _without_pandas_for_arrays(manifest) if attempt == 1 else contextlib.nullcontext():
                return joblib.load(io.BytesIO(model_bytes))
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            if top == "pandas" and attempt == 1 and "pandas" not in sys.modules:
                frames.pandas_for_model()  # an array model that pickled a pandas object
                continue
            raise MissingModuleError(
                f"{where} needs the Python module '{exc.name}', which this runtime does not have: add the "
                "package (or your own code) to the function or a layer",
                exc.name,
            ) from exc
        except AttributeError as exc:
            if "__main__" not in str(exc):
                raise
            raise MissingModuleError(
                f"{where} refers to a class defined in __main__ (a notebook or script): {exc}; define it in a "
                "module of its own and ship that module with the function",
                "__main__",
            ) from exc
    raise AssertionError("unreachable")


def load_from_dir(directory: str | Path, signer: Any = None) -> LoadedModel:
    """Load an artifact directory; with a signer (modelops.model.signing), its signature.json must be that key's valid
    signature of manifest.json, checked before anything is unpickled."""
    directory = Path(directory)
    try:
        manifest_bytes = (directory / MANIFEST_FILE).read_bytes()
        model_bytes = (directory / MODEL_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise ModelOpsError(
            f"model directory {directory} is incomplete: {os.path.basename(exc.filename)} is missing"
        ) from exc
    if signer is not None:
        signature = directory / SIGNATURE_FILE
        signer.verify(manifest_bytes, signature.read_bytes() if signature.exists() else None, f"model in {directory}")
    golden_path = directory / GOLDEN_FILE
    golden_bytes = golden_path.read_bytes() if golden_path.exists() else None
    return load_from_bytes(manifest_bytes, model_bytes, golden_bytes)
