"""The model a predict function serves: the one exact version it is pinned to, loaded once at init.

Where it comes from (environment):
    MODELOPS_MODEL_DIR       a local artifact directory (local runs and benchmarks); when
                             MODELOPS_MODEL_NAME / MODELOPS_MODEL_VERSION are set they must match it
    MODELOPS_REGISTRY        s3://bucket/prefix of the registry, with
    MODELOPS_MODEL_NAME      the registered model name and
    MODELOPS_MODEL_VERSION   the exact version (never an alias: a published function version must
                             keep serving the same model)
    MODELOPS_CACHE_DIR       where registry downloads are kept (default /tmp/modelops-models): a
                             re-initialised execution environment reuses the copy after checking its sha256
    MODELOPS_LOAD_RETRY_SECONDS  after a failed load, wait this long before the next attempt (default 30)

A failed load never crashes the function: requests get 503 with Retry-After, the reason goes to the
log, and loading is retried on a later request.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core import env as settings
from ..core.errors import MissingModuleError, ModelOpsError
from ..model.artifact import CLASSIFICATION, MANIFEST_FILE, LoadedModel, Manifest, load_from_dir
from ..model.inference import ModelRunner
from ..model.schema import FeatureSchema
from ..model.signing import signer_from_env

DEFAULT_CACHE_DIR = "/tmp/modelops-models"
DEFAULT_RETRY_SECONDS = 30.0

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """A loaded model plus everything the request path needs precomputed."""

    manifest: Manifest
    estimator: Any
    schema: FeatureSchema
    classes: list[Any] | None
    runner: ModelRunner
    golden: dict[str, Any] | None = None
    class_keys: list[str] = field(default_factory=list)
    model_ref: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> ServedModel:
        manifest = loaded.manifest
        classes = None
        if manifest.task == CLASSIFICATION:
            raw = getattr(loaded.estimator, "classes_", None)
            classes = [c.item() if hasattr(c, "item") else c for c in raw] if raw is not None else manifest.classes
        schema = manifest.schema
        return cls(
            manifest=manifest,
            estimator=loaded.estimator,
            schema=schema,
            classes=classes,
            runner=ModelRunner(loaded.estimator, schema, manifest.input, proba=classes is not None),
            golden=loaded.golden,
            class_keys=[str(c) for c in classes or ()],
            model_ref={"name": manifest.name, "version": manifest.version},
        )

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    def example_instance(self) -> dict[str, Any]:
        """A request row known to be valid: the first golden row if shipped, else the schema's midpoint row."""
        rows = (self.golden or {}).get("instances") or []
        if rows and isinstance(rows[0], dict) and set(rows[0]) == set(self.schema.names):
            return dict(rows[0])
        return self.schema.example_instance()


class ModelSource(Protocol):
    @property
    def description(self) -> str: ...

    def load(self) -> LoadedModel: ...


@dataclass
class DirectorySource:
    path: Path
    expected_name: str | None = None
    expected_version: str | None = None

    @property
    def description(self) -> str:
        return f"directory {self.path}"

    def load(self) -> LoadedModel:
        loaded = load_from_dir(self.path, signer_from_env())
        _check_pin(loaded.manifest, self.expected_name, self.expected_version)
        return loaded


@dataclass
class RegistrySource:
    """The pinned version from the S3 registry, through a local cache keyed by name and version
    (registered versions are never overwritten, and the cached bytes are re-verified on every load)."""

    uri: str
    name: str
    version: str
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    s3: Any = None

    @property
    def description(self) -> str:
        return f"{self.uri} {self.name}/{self.version}"

    def load(self) -> LoadedModel:
        target = self.cache_dir / self.name / self.version
        signer = signer_from_env()
        if (target / MANIFEST_FILE).exists():
            try:
                return self._verified(load_from_dir(target, signer))
            except ModelOpsError as exc:
                logger.warning("cached copy of %s/%s is unusable (%s); downloading again", self.name, self.version, exc)
                shutil.rmtree(target, ignore_errors=True)
        self._download(target)
        return self._verified(load_from_dir(target, signer))

    def _verified(self, loaded: LoadedModel) -> LoadedModel:
        _check_pin(loaded.manifest, self.name, self.version)
        return loaded

    def _download(self, target: Path) -> None:
        from ..registry import Registry

        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.version}-", dir=target.parent))
        try:
            Registry(self.uri, s3=self.s3).download(self.name, self.version, staging)
            try:
                os.replace(staging, target)  # all files appear at once, or not at all
            except OSError:  # another process finished the same download first
                if not (target / MANIFEST_FILE).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _check_pin(manifest: Manifest, name: str | None, version: str | None) -> None:
    if name and manifest.name != name:
        raise ModelOpsError(f"the artifact is model '{manifest.name}', but this function is pinned to '{name}'")
    if version and manifest.version != version:
        raise ModelOpsError(f"the artifact is version {manifest.version}, but this function is pinned to {version}")


def source_from_env(env: Mapping[str, str]) -> ModelSource:
    """Where to load the pinned model from; raises ModelOpsError when the configuration is incomplete."""
    name = settings.text("MODELOPS_MODEL_NAME", env=env) or None
    version = settings.text("MODELOPS_MODEL_VERSION", env=env) or None
    directory = settings.text("MODELOPS_MODEL_DIR", env=env)
    if directory:
        return DirectorySource(Path(directory), name, version)
    registry = settings.text("MODELOPS_REGISTRY", env=env)
    missing = [
        var
        for var, value in (
            ("MODELOPS_REGISTRY", registry),
            ("MODELOPS_MODEL_NAME", name),
            ("MODELOPS_MODEL_VERSION", version),
        )
        if not value
    ]
    if missing:
        raise ModelOpsError(f"no model configured: set {', '.join(missing)} (or MODELOPS_MODEL_DIR)")
    assert name and version
    if not version[:1].isdigit():
        raise ModelOpsError(f"MODELOPS_MODEL_VERSION must be an exact model version, not the alias '{version}'")
    cache = Path(settings.text("MODELOPS_CACHE_DIR", env=env) or DEFAULT_CACHE_DIR)
    return RegistrySource(registry, name, version, cache)


class ModelHolder:
    """Holds the served model, or the reason it is missing; retries a failed load after a pause."""

    def __init__(
        self,
        source: ModelSource | None,
        *,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        config_error: str | None = None,
        clock: Any = time.monotonic,
    ):
        self.source = source
        self.retry_seconds = retry_seconds
        self.model: ServedModel | None = None
        self.error: str | None = config_error
        self.load_seconds: float | None = None
        self._clock = clock
        self._last_attempt: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ModelHolder:
        env = settings.mapping(env)
        retry = DEFAULT_RETRY_SECONDS
        try:  # a ConfigError is a ModelOpsError: a bad setting answers 503 like a missing one
            retry = settings.number("MODELOPS_LOAD_RETRY_SECONDS", DEFAULT_RETRY_SECONDS, minimum=0, env=env)
            return cls(source_from_env(env), retry_seconds=retry)
        except ModelOpsError as exc:
            logger.error("predict function misconfigured: %s", exc)
            return cls(None, retry_seconds=retry, config_error=str(exc))

    def load(self) -> ServedModel | None:
        """Try to load now. Never raises: on failure the reason is logged and kept."""
        if self.source is None:
            return None
        with self._lock:
            self._last_attempt = self._clock()
            started = time.perf_counter()
            try:
                self.model = ServedModel.from_loaded(self.source.load())
            except Exception as exc:  # any failure means 503 with the reason in the log, never a crash at init
                self.error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, MissingModuleError):  # the deployment lacks code: say which module
                    logger.error(
                        "cannot load the model from %s: missing module '%s': %s",
                        self.source.description,
                        exc.module,
                        exc,
                    )
                else:
                    logger.debug("cannot load the model from %s: %s", self.source.description, self.error)
                return None
            self.error = None
            self.load_seconds = time.perf_counter() - started
            return self.model

    def get(self) -> ServedModel | None:
        """The served model; retries a failed load once the pause has passed. None = unavailable."""
        model = self.model
        if model is not None:
            return model
        if self.source is not None and (
            self._last_attempt is None or self._clock() - self._last_attempt >= self.retry_seconds
        ):
            return self.load()
        return None

    def retry_after(self) -> int:
        if self._last_attempt is None:
            return 1
        return int(max(1.0, self.retry_seconds - (self._clock() - self._last_attempt)))
