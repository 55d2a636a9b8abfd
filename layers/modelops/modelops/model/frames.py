"""What a model is called with: a numpy matrix in schema order, or the pandas DataFrame it was fitted on.

A model fitted on a DataFrame selects columns by name (a ColumnTransformer with string column lists) or
reads their dtypes (HistGradientBoosting's categorical_features="from_dtype"); scikit-learn refuses a
plain array for the first and warns for the rest. The manifest says which kind a model takes
(`manifest.input`); a model whose `feature_names_in_` are strings takes a DataFrame even without it.
The DataFrame gets the fitted column order and, per feature, the recorded `pandas_dtype` (a category
column keeps its fitted categories in their order; unseen values are appended, never turned into NaN).

pandas is imported only for DataFrame models. scikit-learn imports pandas whenever it can, which costs
every cold start, so the Lambda layer does not put pandas on sys.path: it ships it as a zip archive
(MODELOPS_PANDAS_ARCHIVE; by default dataframe/pandas.zip beside the layer's python/ folder on sys.path,
/opt/dataframe/pandas.zip on Lambda) that is extracted once per execution environment under
MODELOPS_PANDAS_DIR (default /tmp/modelops-pandas) when a DataFrame model loads. Where pandas is installed
normally (a virtualenv, a container image), that copy is used, and an array model loads with pandas hidden
from the loading thread (pandas_hidden), so its cold start skips pandas there too.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..core import env as settings
from ..core.errors import MissingModuleError, ModelOpsError
from .schema import NUMBER, FeatureSchema, is_integer_dtype

ARRAY = "array"
DATAFRAME = "dataframe"
TEXT_DTYPES = ("category", "object", "str", "string")  # pandas dtypes a category (text) feature may have
ARCHIVE_ENV = "MODELOPS_PANDAS_ARCHIVE"
DEFAULT_ARCHIVE = "/opt/dataframe/pandas.zip"
EXTRACT_ENV = "MODELOPS_PANDAS_DIR"
DEFAULT_EXTRACT_DIR = "/tmp/modelops-pandas"

_lock = threading.Lock()


def input_spec(manifest_input: Mapping[str, Any] | None, estimator: Any, schema: FeatureSchema) -> dict[str, Any]:
    """{"kind": "array"} or {"kind": "dataframe", "columns": [...]}, from the manifest or the estimator."""
    spec = dict(manifest_input or {})
    kind = spec.get("kind", ARRAY if manifest_input is None else None)
    if manifest_input is None:
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None and len(names) and all(isinstance(n, str) for n in names):
            kind, spec["columns"] = DATAFRAME, [str(n) for n in names]
    if kind == ARRAY:
        return {"kind": ARRAY}
    if kind != DATAFRAME:
        raise ModelOpsError(f"manifest input kind {kind!r} is not supported (expected 'array' or 'dataframe')")
    columns = list(spec.get("columns") or schema.names)
    if sorted(columns) != sorted(schema.names) or len(set(columns)) != len(columns):
        missing = sorted(set(columns) - set(schema.names)) or sorted(set(schema.names) - set(columns))
        raise ModelOpsError(
            f"the model's DataFrame columns do not match its feature schema (first difference: {missing[:1]})"
        )
    return {"kind": DATAFRAME, "columns": columns}


def wants_dataframe(manifest_input: Mapping[str, Any] | None) -> bool:
    return bool(manifest_input) and manifest_input.get("kind") == DATAFRAME  # type: ignore[union-attr]


def import_pandas(env: Mapping[str, str] | None = None) -> Any:
    """pandas, importable or from the layer's archive; ModuleNotFoundError(name='pandas') when neither."""
    if "pandas" in sys.modules:
        return sys.modules["pandas"]
    with _lock:
        if importlib.util.find_spec("pandas") is None:
            archive = Path(settings.text(ARCHIVE_ENV, env=env) or _layer_archive())
            if not archive.is_file():
                raise ModuleNotFoundError(
                    f"No module named 'pandas' (this model takes a DataFrame; {archive} does not exist)", name="pandas"
                )
            site = _extracted(archive, Path(settings.text(EXTRACT_ENV, env=env) or DEFAULT_EXTRACT_DIR))
            sys.path.append(str(site))
            importlib.invalidate_caches()
        return importlib.import_module("pandas")


class _PandasHidden(importlib.abc.MetaPathFinder):
    """Makes `import pandas` fail in one thread: other threads (a batch part's Parquet reader) import it as usual."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and name.split(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while an array model loads)", name=name)
        return None


@contextlib.contextmanager
def pandas_hidden() -> Iterator[None]:
    """pandas not importable from the calling thread while the block runs (pandas already imported stays).

    scikit-learn imports pandas whenever it can (sklearn.utils.fixes, at its first import), about 0.3 s of a
    cold start, and a model fitted on arrays never needs it. On Lambda the layer keeps pandas off sys.path for
    such models (see the module docstring); this gives the same cold start where pandas is installed normally.
    A pickle that does need pandas fails with ModuleNotFoundError(name="pandas"), and the loader retries
    without the block."""
    finder = _PandasHidden()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _layer_archive() -> str:
    """The archive beside a layer's python/ folder on sys.path (/opt/python on Lambda, a built layer elsewhere)."""
    for entry in sys.path:
        path = Path(entry)
        if path.name == "python" and (path.parent / "dataframe" / "pandas.zip").is_file():
            return str(path.parent / "dataframe" / "pandas.zip")
    return DEFAULT_ARCHIVE


def pandas_for_model() -> Any:
    """import_pandas, failing as a model that cannot load for want of a module (the function's fault)."""
    try:
        return import_pandas()
    except ModuleNotFoundError as exc:
        raise MissingModuleError(
            f"the model takes a pandas DataFrame, but pandas cannot be imported: {exc}", "pandas"
        ) from exc


def _extracted(archive: Path, root: Path) -> Path:
    """The archive's files under root/<size>-<mtime>, extracted once; a finished copy is reused."""
    stat = archive.stat()
    target = root / f"{stat.st_size}-{stat.st_mtime_ns}"
    if (target / "pandas" / "__init__.pyc").exists() or (target / "pandas" / "__init__.py").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        try:
            os.replace(staging, target)  # all files appear at once
        except OSError:  # another process finished first
            if not target.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class FrameBuilder:
    """Turns a validated matrix (schema order, NaN for missing) into the DataFrame the model was fitted on."""

    def __init__(self, schema: FeatureSchema, columns: list[str], pd: Any):
        self.pd = pd
        self.columns = columns
        index = {name: j for j, name in enumerate(schema.names)}
        self._builders: list[tuple[str, int, Callable[[np.ndarray], Any]]] = []
        for name in columns:
            feature = schema.features[index[name]]
            self._builders.append((name, index[name], self._column(feature.dtype, feature.pandas_dtype, feature)))

    def _column(self, dtype: str, pandas_dtype: str | None, feature: Any) -> Callable[[np.ndarray], Any]:
        pd = self.pd
        if dtype == NUMBER:
            if pandas_dtype is None or pandas_dtype == "float64":
                return lambda v: v.astype(np.float64)
            if pandas_dtype == "bool":  # a missing value (refits, batch files) needs the nullable kind
                return lambda v: _numpy_or_nullable(pd, v.astype(np.float64), np.dtype(bool), "boolean")
            if is_integer_dtype(pandas_dtype) and pandas_dtype.islower():  # numpy ints: the values are whole
                integer, nullable = np.dtype(pandas_dtype), pandas_dtype.replace("uint", "UInt").replace("int", "Int")
                return lambda v: _numpy_or_nullable(pd, v.astype(np.float64), integer, nullable)
            target = pd.api.types.pandas_dtype(pandas_dtype)  # float32, nullable Int64, boolean, ...
            if not (pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target)):
                raise ModelOpsError(f"feature '{feature.name}' is a number but its pandas dtype is {pandas_dtype!r}")
            return lambda v: pd.array(v.astype(np.float64), dtype=target)
        if pandas_dtype not in (None, *TEXT_DTYPES):
            # a string feature cannot fill a numeric or bool column ("False" is a true value): refuse to load
            raise ModelOpsError(
                f"feature '{feature.name}' is a category but its pandas dtype is {pandas_dtype!r}; "
                f"a category feature takes one of {', '.join(TEXT_DTYPES)} (numbers and bools have dtype 'number')"
            )
        if pandas_dtype == "category":
            known = list(feature.allowed or ())
            seen = frozenset(known)

            def categorical(v: np.ndarray) -> Any:
                extra = sorted({x for x in v.tolist() if isinstance(x, str) and x not in seen})
                return pd.Categorical(v, categories=known + extra if extra else known)

            return categorical
        if pandas_dtype is None or pandas_dtype == "object" or (pandas_dtype == "str" and _major(pd) < 3):
            return lambda v: v  # before pandas 3, "str" is numpy's unicode dtype, which turns NaN into "nan"
        target = pd.api.types.pandas_dtype(pandas_dtype)  # "str" (pandas 3 strings), "string", ...
        return lambda v: pd.array(v, dtype=target)

    def __call__(self, matrix: np.ndarray) -> Any:
        if matrix.ndim != 2:
            raise ValueError(f"expected a 2-d matrix, got {matrix.ndim} dimensions")
        data = {name: build(matrix[:, j]) for name, j, build in self._builders}
        return self.pd.DataFrame(data, columns=self.columns, copy=False)


def _numpy_or_nullable(pd: Any, values: np.ndarray, numpy_dtype: np.dtype, nullable: str) -> Any:
    missing = np.isnan(values)
    if not missing.any():
        return values.astype(numpy_dtype)
    return pd.array([None if m else v for v, m in zip(values.tolist(), missing.tolist(), strict=True)], dtype=nullable)


def _major(pd: Any) -> int:
    return int(str(pd.__version__).split(".")[0])


def model_input(spec: Mapping[str, Any], schema: FeatureSchema) -> Callable[[np.ndarray], Any] | None:
    """The converter from a validated matrix to the model's input, or None when the matrix is the input."""
    if spec.get("kind") != DATAFRAME:
        return None
    pd = pandas_for_model()
    try:
        return FrameBuilder(schema, list(spec["columns"]), pd)
    except TypeError as exc:  # pandas does not know a recorded dtype
        raise ModelOpsError(f"the manifest names a pandas dtype this runtime cannot build: {exc}") from None
