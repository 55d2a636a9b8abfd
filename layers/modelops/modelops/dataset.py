"""Tabular training data without pandas: CSV parsing, type inference, and the bundled datasets."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import CLASSIFICATION, REGRESSION, sha256_bytes
from .errors import InputError, ModelOpsError
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
    source: str | Path | bytes, target: str, feature_names: list[str] | None = None, dtypes: list[str] | None = None
) -> Dataset:
    """Read a CSV with a header. Empty cells are missing values; columns are numeric when every
    non-empty cell parses as a finite number, categorical otherwise."""
    if isinstance(source, bytes):
        raw, label = source, "<bytes>"
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelOpsError(f"data file not found: {path}")
        raw, label = path.read_bytes(), str(path)
    text = raw.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ModelOpsError(f"{label} is empty: a header row and at least 2 data rows are needed")
    header = [h.strip() for h in header]
    if target not in header:
        raise ModelOpsError(f"{label}: target column '{target}' not found (columns: {', '.join(header)})")
    rows = [r for r in reader if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ModelOpsError(f"{label} has {len(rows)} data rows: at least 2 are needed")
    for lineno, r in enumerate(rows, start=2):
        if len(r) != len(header):
            raise ModelOpsError(f"{label} line {lineno}: {len(r)} fields, expected {len(header)}")
    columns = {h: [r[i].strip() for r in rows] for i, h in enumerate(header)}
    names = feature_names or [h for h in header if h != target]
    missing = [n for n in names if n not in columns]
    if missing:
        raise ModelOpsError(f"{label}: column '{missing[0]}' not found")
    if not names:
        raise ModelOpsError(f"{label}: no feature columns besides the target '{target}'")
    if dtypes is None:
        dtypes = [
            NUMBER if all(v == "" or _is_number(v) for v in columns[n]) and any(columns[n]) else CATEGORY for n in names
        ]
    X = _feature_matrix([columns[n] for n in names], dtypes)
    y_text = columns[target]
    if any(v == "" for v in y_text):
        raise ModelOpsError(f"{label}: target column '{target}' has empty values")
    y = np.asarray(y_text, dtype=object)
    return Dataset(names, dtypes, X, y, target, label, sha256_bytes(raw))


def _feature_matrix(columns: list[list[str]], dtypes: list[str]) -> np.ndarray:
    def cell(v: str, dtype: str) -> Any:
        if v == "":
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
        try:
            return np.asarray([float(v) for v in dataset.y], dtype=np.float64)
        except ValueError:
            bad = next(v for v in dataset.y if not _is_number(str(v)))
            raise ModelOpsError(
                f"target '{dataset.target}' is not numeric (found '{bad}'), so it cannot be used for regression"
            ) from None
    labels = [str(v) for v in dataset.y]
    if all(_is_number(v) for v in labels) and all(float(v) == int(float(v)) for v in labels):
        return np.asarray([int(float(v)) for v in labels], dtype=np.int64)
    return np.asarray(labels, dtype=object)
