"""The trusted evaluation set: rows with labels only the training and data owners wrote, kept with a model
version (evaluation.csv, its sha256 in the manifest, so a signed manifest covers it) and used to decide whether
a retrain candidate is better than the champion. Labels that clients send to /feedback never enter it.

Sources, in this order:
    evaluation.csv      stored with the champion: the held-out split `modelops train` evaluated on (or a fixed
                        fifth of the sample `modelops.register` was given); a candidate stores the same bytes forward
    <trusted uri>/*.csv curated rows under the training data prefix (MODELOPS_RETRAIN_TRUSTED_URI), read fresh
                        at every retrain with the champion's features, dtypes and target
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from ..adapters.objectstore import open_location
from ..core.errors import ArtifactIntegrityError, ModelOpsError, NotFoundError
from .artifact import EVALUATION_FILE, Manifest, sha256_bytes
from .dataset import Dataset, read_csv
from .schema import NUMBER

IMPORT_EVERY = 5  # modelops.register keeps every 5th sample row (the 5th, 10th, ...) as the evaluation set


def rows_csv(names: list[str], dtypes: list[str], X: np.ndarray, y: np.ndarray, target: str) -> bytes:
    """Rows and their labels as a CSV modelops.model.dataset.read_csv reads back with the recorded dtypes: numbers written
    exactly (repr), a missing value as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, target])
    for row, label in zip(X, y, strict=True):
        cells = []
        for value, dtype in zip(row, dtypes, strict=True):
            if value is None or (isinstance(value, float) and value != value):
                cells.append("")
            elif dtype == NUMBER:
                number = float(value)
                cells.append(str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number))
            else:
                cells.append(str(value))
        label = label.item() if isinstance(label, np.generic) else label
        cells.append(repr(float(label)) if isinstance(label, float) else str(label))
        writer.writerow(cells)
    return out.getvalue().encode()


def describe(body: bytes, rows: int, origin: str) -> dict[str, Any]:
    """The manifest's `evaluation` entry for an evaluation.csv."""
    return {"file": EVALUATION_FILE, "sha256": sha256_bytes(body), "rows": rows, "origin": origin}


def has_trusted_set(manifest: Manifest) -> bool:
    return bool(manifest.evaluation.get("sha256"))


def stored_bytes(registry: Any, manifest: Manifest) -> bytes:
    """The evaluation.csv of a registered version, checked against the sha256 in its (signed) manifest."""
    key = registry.version_key(manifest.name, manifest.version, str(manifest.evaluation.get("file") or EVALUATION_FILE))
    try:
        body, _ = registry.store.get(key)
    except NotFoundError:
        raise NotFoundError(
            f"the trusted evaluation set of {manifest.name}/{manifest.version} ({registry.store.uri(key)}) is missing"
        ) from None
    if sha256_bytes(body) != manifest.evaluation.get("sha256"):
        raise ArtifactIntegrityError(
            f"the trusted evaluation set of {manifest.name}/{manifest.version} does not match its sha256; "
            "refusing to decide on it"
        )
    return body


def _read(manifest: Manifest, body: bytes, source: str) -> Dataset:
    recipe = manifest.recipe
    names = list(recipe.get("features") or [f["name"] for f in manifest.features])
    dtypes = list(recipe.get("dtypes") or [f["dtype"] for f in manifest.features])
    dataset = read_csv(body, manifest.target, names, dtypes, missing=recipe.get("missing_values") or ())
    dataset.source = source
    return dataset


def curated(manifest: Manifest, uri: str, s3: Any = None) -> tuple[Dataset | None, list[str]]:
    """Curated rows under uri (every *.csv directly or further below it), and the files read."""
    if not uri:
        return None, []
    store, prefix = open_location(uri, s3)
    base = prefix.rstrip("/") + "/" if prefix else ""
    keys = sorted(o.key for o in store.list(base) if o.key.endswith(".csv"))
    parts: list[Dataset] = []
    for key in keys:
        body, _ = store.get(key)
        try:
            parts.append(_read(manifest, body, store.uri(key)))
        except ModelOpsError as exc:
            raise ModelOpsError(f"curated trusted rows {store.uri(key)}: {exc}") from None
    if not parts:
        return None, []
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.concat(part)
    return merged, [store.uri(k) for k in keys]


def trusted_set(
    registry: Any, manifest: Manifest, curated_uri: str = "", s3: Any = None
) -> tuple[Dataset | None, dict[str, Any]]:
    """The champion's trusted evaluation set (stored + curated rows), and where its rows came from. None when the
    champion was registered without one: the caller must not treat client labels as a substitute."""
    if not has_trusted_set(manifest):
        return None, {"stored": None}
    body = stored_bytes(registry, manifest)
    stored = _read(manifest, body, registry.store.uri(registry.version_key(manifest.name, manifest.version)))
    info: dict[str, Any] = {"stored": {"rows": stored.rows, "sha256": manifest.evaluation["sha256"]}}
    extra, files = curated(manifest, curated_uri, s3)
    if extra is not None:
        info["curated"] = {"files": files[:20], "rows": extra.rows}
        stored = stored.concat(extra)
    info["rows"] = stored.rows
    return stored, info


def row_keys(dataset: Dataset) -> set[tuple[str, ...]]:
    return {_row_key(x) for x in dataset.X}


def _row_key(row: np.ndarray) -> tuple[str, ...]:
    return tuple(
        ""
        if (isinstance(v, float) and v != v)
        else repr(float(v))
        if isinstance(v, (int, float, np.number))
        else str(v)
        for v in row
    )


def without_rows(dataset: Dataset, keys: set[tuple[str, ...]]) -> tuple[Dataset, int]:
    """dataset minus the rows whose features are in keys (a candidate never trains on what it is judged on)."""
    if not keys:
        return dataset, 0
    keep = np.asarray([_row_key(x) not in keys for x in dataset.X], dtype=bool)
    dropped = int((~keep).sum())
    if not dropped:
        return dataset, 0
    return (
        Dataset(
            dataset.feature_names,
            dataset.dtypes,
            dataset.X[keep],
            dataset.y[keep],
            dataset.target,
            dataset.source,
            dataset.sha256,
            dataset.missing,
        ),
        dropped,
    )
