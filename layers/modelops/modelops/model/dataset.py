"""Tabular training data without pandas: CSV parsing, type inference, and the bundled datasets."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, ModelOpsError
from .artifact import CLASSIFICATION, REGRESSION, sha256_bytes
from .missing import NA_VALUES, missing_tokens
from .schema import CATEGORY, NUMBER

MAX_CLASSES_FOR_NUMERIC_TARGET = 20
BUILTIN = {"breast_cancer": CLASSIFICATION, "diabetes": REGRESSION}


@dataclass
class Dataset:
    feature_names: list[str]
    dtypes: list[str]
    X: np.ndarray  # float64 when all numeric, object otherwise; missing values are NaN
    y: np.ndarray
    target: str
    source: str
    sha256: str
    missing: tuple[str, ...] = ()  # tokens read as missing besides the defaults (modelops.model.missing)

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    def concat(self, other: Dataset) -> Dataset:
        if other.feature_names != self.feature_names:
            raise InputError("labelled data columns do not match the training data's features", field="columns")
        X = np.concatenate([self.X, other.X.astype(self.X.dtype)])
        y = np.concatenate([self.y, other.y.astype(self.y.dtype)])
        return Dataset(
            self.feature_names,
            self.dtypes,
            X,
            y,
            self.target,
            f"{self.source}+{other.source}",
            sha256_bytes((self.sha256 + other.sha256).encode()),
            self.missing,
        )


def snake(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def load_builtin(name: str) -> Dataset:
    from sklearn import datasets

    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer()
        y = np.asarray(bunch.target_names)[bunch.target].astype(object)
        target = "diagnosis"
    elif name == "diabetes":
        bunch = datasets.load_diabetes(scaled=False)
        y = bunch.target.astype(np.float64)
        target = "disease_progression"
    else:
        raise ModelOpsError(f"unknown built-in dataset '{name}' (choose from {', '.join(BUILTIN)})")
    X = np.ascontiguousarray(bunch.data, dtype=np.float64)
    names = [snake(n) for n in bunch.feature_names]
    digest = sha256_bytes(X.tobytes() + "\n".join(map(str, y)).encode())
    return Dataset(names, [NUMBER] * len(names), X, y, target, f"sklearn:{name}", digest)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_csv(
    source: str | Path | bytes,
    target: str,
    feature_names: list[str] | None = None,
    dtypes: list[str] | None = None,
    *,
    missing: Iterable[str] = (),
    categorical: Iterable[str] = (),
) -> Dataset:
    """Read a CSV with a header.

    Missing values: empty cells and pandas' default missing-value tokens (modelops.model.missing: NA, NaN, N/A,
    null, None, ...), plus the tokens in `missing`. A feature column is numeric when more than half of its
    values (missing ones aside) are finite numbers; any other value in it is an error that names the
    column, the line and the value, so a typo never turns a numeric column into categories. Columns in
    `categorical` are categorical whatever they hold. A column without any value, or a target with a
    missing value, is an error.
    """
    if isinstance(source, bytes):
        raw, label = source, "<bytes>"
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelOpsError(f"data file not found: {path}")
        raw, label = path.read_bytes(), str(path)
    text = raw.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ModelOpsError(f"{label} is empty: a header row and at least 2 data rows are needed")
        header = [h.strip() for h in header]
        rows: list[list[str]] = []
        lines: list[int] = []  # the line each row ends on, for messages
        for r in reader:
            if any(c.strip() for c in r):
                if len(r) != len(header):
                    raise ModelOpsError(f"{label} line {reader.line_num}: {len(r)} fields, expected {len(header)}")
                rows.append(r)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise ModelOpsError(f"{label} line {reader.line_num}: not valid CSV: {exc}") from None
    if len(set(header)) != len(header):
        repeated = next(h for h in header if header.count(h) > 1)
        raise ModelOpsError(f"{label}: column '{repeated}' appears twice in the header")
    if target not in header:
        raise ModelOpsError(f"{label}: target column '{target}' not found (columns: {', '.join(header)})")
    if len(rows) < 2:
        raise ModelOpsError(f"{label} has {len(rows)} data rows: at least 2 are needed")
    tokens = missing_tokens(missing)
    columns = {h: [r[i].strip() for r in rows] for i, h in enumerate(header)}
    names = feature_names or [h for h in header if h != target]
    absent = [n for n in names if n not in columns]
    if absent:
        raise ModelOpsError(f"{label}: column '{absent[0]}' not found")
    if not names:
        raise ModelOpsError(f"{label}: no feature columns besides the target '{target}'")
    declared = set(categorical)
    for c in sorted(declared):
        if c == target:
            raise ModelOpsError(f"{label}: '{c}' is the target; --categorical names feature columns")
        if c not in names:
            raise ModelOpsError(f"{label}: --categorical column '{c}' is not a feature column")
    if dtypes is None:
        dtypes = [infer_dtype(n, columns[n], tokens, label, n in declared) for n in names]
    for n, dtype in zip(names, dtypes, strict=True):
        if dtype == NUMBER:
            check_numeric(n, columns[n], tokens, lines, label)
    X = _feature_matrix([columns[n] for n in names], dtypes, tokens)
    y_text = columns[target]
    gaps = [i for i, v in enumerate(y_text) if v in tokens]
    if gaps:
        raise ModelOpsError(
            f"{label}: target column '{target}' has {len(gaps)} missing value(s), the first on line "
            f"{lines[gaps[0]]} ('{y_text[gaps[0]]}'); drop or fill those rows"
        )
    y = np.asarray(y_text, dtype=object)
    extra = tuple(sorted(tokens - NA_VALUES))
    return Dataset(names, dtypes, X, y, target, label, sha256_bytes(raw), extra)


def infer_dtype(name: str, values: list[str], tokens: frozenset[str], label: str, categorical: bool = False) -> str:
    present = [v for v in values if v not in tokens]
    if not present:
        raise ModelOpsError(
            f"{label}: column '{name}' has no values (every cell is empty or a missing-value token); remove the column"
        )
    if categorical:
        return CATEGORY
    numbers = sum(1 for v in present if _is_number(v))
    return NUMBER if 2 * numbers > len(present) else CATEGORY


def check_numeric(name: str, values: list[str], tokens: frozenset[str], lines: list[int], label: str) -> None:
    bad = [i for i, v in enumerate(values) if v not in tokens and not _is_number(v)]
    if not bad:
        return
    value = values[bad[0]]
    more = f" ({len(bad) - 1} more such value(s))" if len(bad) > 1 else ""
    raise ModelOpsError(
        f"{label} line {lines[bad[0]]}: column '{name}' is numeric but has '{value[:40]}'{more}; "
        f"read it as missing (--as-missing '{value[:40]}') or treat the column as categories "
        f"(--categorical {name})"
    )


def _feature_matrix(columns: list[list[str]], dtypes: list[str], tokens: frozenset[str] = NA_VALUES) -> np.ndarray:
    def cell(v: str, dtype: str) -> Any:
        if v in tokens:
            return math.nan
        return float(v) if dtype == NUMBER else v

    if all(d == NUMBER for d in dtypes):
        return np.array([[cell(v, NUMBER) for v in col] for col in columns], dtype=np.float64).T.copy()
    matrix = np.empty((len(columns[0]), len(columns)), dtype=object)
    for j, (col, dtype) in enumerate(zip(columns, dtypes, strict=True)):
        matrix[:, j] = [cell(v, dtype) for v in col]
    return matrix


def infer_task(y: np.ndarray) -> str:
    values = list(y)
    if not all(isinstance(v, (int, float, np.number)) or _is_number(str(v)) for v in values):
        return CLASSIFICATION
    numbers = np.asarray([float(v) for v in values])
    if np.all(numbers == np.round(numbers)) and len(np.unique(numbers)) <= MAX_CLASSES_FOR_NUMERIC_TARGET:
        return CLASSIFICATION
    return REGRESSION


def coerce_target(dataset: Dataset, task: str) -> np.ndarray:
    if task == REGRESSION:
        bad = next((v for v in dataset.y if not _is_number(str(v))), None)
        if bad is not None:
            raise ModelOpsError(
                f"target '{dataset.target}' is not numeric (found '{str(bad)[:40]}'), so it cannot be used for regression"
            )
        return np.asarray([float(v) for v in dataset.y], dtype=np.float64)
    labels = [str(v) for v in dataset.y]
    if all(_is_number(v) for v in labels) and all(float(v) == int(float(v)) for v in labels):
        return np.asarray([int(float(v)) for v in labels], dtype=np.int64)
    return np.asarray(labels, dtype=object)
