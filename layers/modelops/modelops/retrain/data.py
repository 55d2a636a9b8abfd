"""The data a retrain learns from: the champion's original training set and the recent labelled predictions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..adapters.aws import parse_s3_uri
from ..adapters.objectstore import S3ObjectStore
from ..capture.labelled import LabelledRow, read_window
from ..capture.partitions import DEFAULT_MAX_RECORDS
from ..core.errors import ModelOpsError, NotFoundError
from ..model.artifact import CLASSIFICATION, Manifest
from ..model.dataset import Dataset, load_builtin, read_csv
from ..ports import ObjectStore
from ..registry import Registry


class LabelledSource(Protocol):
    def labelled(self, name: str, since: float, until: float) -> list[LabelledRow]: ...


class FeedbackLabelled:
    """Labelled predictions from the feedback store: captured requests joined to their ground truth, at most
    max_records of each (the newest; `dropped` says how many older ones were left out of the last read).
    Rows captured without their features cannot be trained on and are left out."""

    def __init__(self, store: ObjectStore, prefix: str, max_records: int | None = DEFAULT_MAX_RECORDS):
        self.store, self.prefix, self.max_records = store, prefix, max_records
        self.dropped: dict[str, int] = {}

    def labelled(self, name: str, since: float, until: float) -> list[LabelledRow]:
        window = read_window(self.store, self.prefix, since=since, until=until, max_records=self.max_records)
        counts = window.counts()
        self.dropped = {k: v for k, v in counts.items() if k.startswith("dropped_")}
        return [r for r in window.labelled if r.at <= until and r.features]


def original_data_uri(manifest: Manifest) -> str:
    return str(manifest.recipe.get("original_data") or manifest.training_data.get("uri") or "")


def load_original(
    manifest: Manifest,
    s3: Any = None,
    registry: Registry | None = None,
    open_store: Callable[[str], ObjectStore] | None = None,
) -> Dataset:
    """The champion's original training set, read the way it was recorded in its manifest (an s3:// location
    through `open_store(bucket)`, by default the S3 adapter with `s3`)."""
    uri = original_data_uri(manifest)
    recipe = manifest.recipe
    stored = recipe.get("training_data")
    if isinstance(stored, dict) and stored.get("file") and registry is not None:
        return load_stored(registry, manifest, stored)
    missing = recipe.get("missing_values") or ()  # read with the tokens it was trained with
    if not uri:
        raise NotFoundError(f"{manifest.name}/{manifest.version}: the manifest records no training data location")
    if uri.startswith("sklearn:"):
        dataset = load_builtin(uri.split(":", 1)[1])
    elif uri.startswith("s3://"):
        bucket, key = parse_s3_uri(uri)
        body, _ = (open_store(bucket) if open_store else S3ObjectStore(bucket, s3)).get(key)
        dataset = read_csv(body, recipe["target"], recipe.get("features"), recipe.get("dtypes"), missing=missing)
        dataset.source = uri
    else:
        if not Path(uri).is_file():
            raise NotFoundError(f"training data {uri} of {manifest.name}/{manifest.version} is not available")
        dataset = read_csv(uri, recipe["target"], recipe.get("features"), recipe.get("dtypes"), missing=missing)
    expected = manifest.training_data.get("sha256")
    if expected and not manifest.recipe.get("original_data") and dataset.sha256 != expected:
        raise ModelOpsError(
            f"training data {uri} changed since {manifest.name}/{manifest.version} was trained "
            f"(sha256 {dataset.sha256[:12]}… != {expected[:12]}…); refusing to retrain on it"
        )
    return dataset


def load_stored(registry: Registry, manifest: Manifest, stored: dict[str, Any]) -> Dataset:
    """An imported model's training sample, kept in the registry with the version that recorded it."""
    key = registry.version_key(manifest.name, str(stored["version"]), str(stored["file"]))
    where = registry.store.uri(key)
    try:
        body, _ = registry.store.get(key)
    except NotFoundError:
        raise NotFoundError(f"training data {where} of {manifest.name}/{manifest.version} is not available") from None
    recipe = manifest.recipe
    dataset = read_csv(body, recipe["target"], recipe.get("features"), recipe.get("dtypes"))
    dataset.source = where
    if stored.get("sha256") and dataset.sha256 != stored["sha256"]:
        raise ModelOpsError(
            f"training data {where} changed since {manifest.name}/{manifest.version} was registered "
            f"(sha256 {dataset.sha256[:12]}… != {str(stored['sha256'])[:12]}…); refusing to retrain on it"
        )
    return dataset


def labelled_dataset(manifest: Manifest, records: list[LabelledRow], source: str) -> Dataset:
    from ..model.artifact import sha256_bytes

    names = list(manifest.recipe.get("features") or [f["name"] for f in manifest.features])
    dtypes = list(manifest.recipe.get("dtypes") or [f["dtype"] for f in manifest.features])
    numeric = all(d == "number" for d in dtypes)
    X = np.empty((len(records), len(names)), dtype=np.float64 if numeric else object)
    for i, r in enumerate(records):
        for j, (n, d) in enumerate(zip(names, dtypes, strict=True)):
            v = (r.features or {}).get(n)
            X[i, j] = (np.nan if v is None else float(v)) if d == "number" else (np.nan if v is None else v)
    task = manifest.task
    y = np.asarray(
        [float(r.actual) for r in records] if task != CLASSIFICATION else [r.actual for r in records],
        dtype=np.float64 if task != CLASSIFICATION else object,
    )
    digest = (
        sha256_bytes(X.tobytes() + "\n".join(map(str, y)).encode()) if numeric else sha256_bytes(repr((X, y)).encode())
    )
    return Dataset(names, dtypes, X, y, manifest.target, source, digest)
