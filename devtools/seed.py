"""Give a fresh local AWS what a deployed stack would have: the model bucket, a registered default
model pointed to by the champion alias, and the SSM parameter that pins the champion version."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from modelops.core.errors import ConflictError, ModelOpsError
from modelops.model.artifact import load_from_dir, write_artifact
from modelops.model.dataset import load_builtin
from modelops.model.training import train
from modelops.registry import CHAMPION, Registry

BUILTIN_DATASETS = {"breast-cancer": "breast_cancer", "diabetes": "diabetes"}


def ensure_bucket(s3: Any, bucket: str) -> None:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def trained_artifact(model_name: str, cache_dir: Path | None, log=print) -> Path:
    """An artifact directory for a built-in model, reused from cache_dir when it still loads."""
    if model_name not in BUILTIN_DATASETS:
        raise ModelOpsError(
            f"no built-in dataset for model '{model_name}' (choose {', '.join(BUILTIN_DATASETS)}, or register it first)"
        )
    if cache_dir is not None and (cache_dir / "manifest.json").exists():
        try:
            load_from_dir(cache_dir)
            return cache_dir
        except ModelOpsError as exc:
            log(f"retraining: cached model in {cache_dir} is unusable ({exc})")
    target = cache_dir or Path(tempfile.mkdtemp(prefix="modelops-model-"))
    log(f"training the default '{model_name}' model ...")
    trained = train(load_builtin(BUILTIN_DATASETS[model_name]), model_name)
    staging = Path(tempfile.mkdtemp(prefix="modelops-stage-"))
    write_artifact(staging, trained.estimator, trained.manifest, trained.golden, trained.evaluation)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), target)  # a complete artifact or none: never a half-written cache
    return target


def ensure_champion(
    registry: Registry, ssm: Any, model_name: str, pin: str, cache_dir: Path | None = None, log=print
) -> str:
    """Champion version of model_name, pinned in the SSM parameter `pin`; trains and registers the built-in model
    if there is none."""
    state = registry.get_alias(model_name, CHAMPION)
    version = state.version
    if version is None:
        artifact = trained_artifact(model_name, cache_dir, log)
        try:
            version = registry.register(artifact).version
        except ConflictError:  # already registered earlier, only the alias is missing
            version = load_from_dir(artifact).manifest.version
        registry.set_alias(model_name, CHAMPION, version, reason="local default model", trigger="devtools:seed")
        log(f"registered {model_name} {version} as {CHAMPION} in {registry.uri}")
    ssm.put_parameter(Name=pin, Value=version, Type="String", Overwrite=True)
    return version
