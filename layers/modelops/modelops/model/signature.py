"""What a fitted model takes as input, inferred from the model and a sample of its input, and the way back: the
model's own input rebuilt from validated request rows.

A feature is described as modelops.model.schema.Feature describes it (name, dtype "number" or "category", min, max,
allowed, nullable), plus "pandas_dtype" when the model was fitted on a DataFrame: the column's dtype as pandas names
it ("float64", "int64", "bool", "category", "object", "str", ...). A category feature's "allowed" lists its
categories in the model's fitted order: a pandas category column's .cat.categories, else the categories_ of the
encoder that reads the column (OneHotEncoder, OrdinalEncoder, HistGradientBoosting's own), else the sample's values
sorted. Values the sample has beyond the fitted categories are appended, so every sample row stays valid.

A manifest's `input` is {"kind": "dataframe", "columns": [...]} when the model was fitted on a DataFrame (string
feature_names_in_; or, for a model that records neither names nor n_features_in_, a DataFrame sample), and empty
for a numpy array.

Request rows reach a model as the matrix modelops.model.schema builds (float64, or object with str categories; a missing
value is NaN). model_input() turns that matrix into the DataFrame the model was fitted on, each column with its
recorded dtype, the way serving does (modelops.model.frames). Only the DataFrame paths import pandas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.errors import ModelOpsError
from .schema import CATEGORY, MAX_STRING_LENGTH, NUMBER, Feature

DATAFRAME = "dataframe"
# Steps that keep one output column per input column, so an encoder after them still reads the raw columns.
_COLUMNWISE_STEPS = {"SimpleImputer", "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler"}


def pandas() -> Any:
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise ModelOpsError(
            "this model was fitted on a pandas DataFrame, and pandas is not installed here to rebuild one"
        ) from None
    return pd


def is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def fitted_columns(estimator: Any) -> list[str] | None:
    """The column names the estimator was fitted with, or None when it was fitted on an array."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    names = [n.item() if hasattr(n, "item") else n for n in names]
    return names if all(isinstance(n, str) for n in names) else None


def is_dataframe_input(spec: dict[str, Any] | None) -> bool:
    return bool(spec) and spec.get("kind") == DATAFRAME  # type: ignore[union-attr]


# ---- what the fitted model says about its columns ---------------------------------------------------------------
def fitted_categories(estimator: Any) -> tuple[dict[str, list[Any]], set[str]]:
    """(categories per column in fitted order, columns that must be pandas category columns) as far as the fitted
    model tells: encoders inside ColumnTransformers and Pipelines, and HistGradientBoosting's categorical features
    (categorical_features="from_dtype" reads pandas category columns)."""
    columns = fitted_columns(estimator) or []
    found: dict[str, list[Any]] = {}
    as_dtype: set[str] = set()
    _walk(estimator, columns, found, as_dtype)
    return found, as_dtype


def _walk(est: Any, columns: list[str], found: dict[str, list[Any]], as_dtype: set[str]) -> None:
    if not columns or est is None or isinstance(est, str):
        return
    steps = getattr(est, "steps", None)
    if isinstance(steps, list):  # a Pipeline: its first steps read the raw columns
        for _, step in steps:
            if step is None or step == "passthrough":
                continue
            _walk(step, columns, found, as_dtype)
            if type(step).__name__ not in _COLUMNWISE_STEPS:
                return
        return
    transformers = getattr(est, "transformers_", None)
    if isinstance(transformers, list):  # a fitted ColumnTransformer
        for _, trans, selection in transformers:
            _walk(trans, _selected(selection, columns), found, as_dtype)
        return
    preprocessor = getattr(est, "_preprocessor", None)  # HistGradientBoosting's encoder of its categorical features
    if preprocessor is not None and hasattr(est, "is_categorical_"):
        before = set(found)
        _walk(preprocessor, columns, found, as_dtype)
        if getattr(est, "categorical_features", None) == "from_dtype":
            as_dtype.update(set(found) - before)
        return
    categories = getattr(est, "categories_", None)
    if isinstance(categories, list) and len(categories) == len(columns):
        for name, values in zip(columns, categories, strict=True):
            found.setdefault(name, [_python(v) for v in values if not is_missing(v)])


def _selected(selection: Any, columns: list[str]) -> list[str]:
    """Column names of a fitted ColumnTransformer's selection (names, indices, a mask or a slice)."""
    if isinstance(selection, str):
        return [selection] if selection in columns else []
    if isinstance(selection, int | np.integer):
        return [columns[int(selection)]]
    if isinstance(selection, slice):
        return columns[selection] if not isinstance(selection.start, str) else []
    items = list(selection) if selection is not None else []
    if items and all(isinstance(i, bool | np.bool_) for i in items):
        return [c for c, keep in zip(columns, items, strict=False) if keep]
    if all(isinstance(i, str) for i in items):
        return [i for i in items if i in columns]
    if all(isinstance(i, int | np.integer) for i in items):
        return [columns[int(i)] for i in items]
    return []


# ---- a sample -> features -----------------------------------------------------------------------------------------
def features_from_frame(frame: Any, columns: list[str], categories: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [_frame_feature(name, frame[name], categories.get(name)) for name in columns]


def _frame_feature(name: str, series: Any, fitted: list[Any] | None) -> dict[str, Any]:
    pd = pandas()
    dtype = series.dtype
    nullable = bool(series.isna().any())
    if isinstance(dtype, pd.CategoricalDtype):
        categories = [_python(c) for c in dtype.categories]
        if not all(isinstance(c, str) for c in categories):
            raise ModelOpsError(
                f"column '{name}' is a category column with {dtype.categories.dtype} categories; the predict API "
                "sends categories as strings, so fit the model on string categories (.astype(str))"
            )
        return Feature(name, CATEGORY, allowed=tuple(categories), nullable=nullable).to_dict() | {
            "pandas_dtype": "category"
        }
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    ):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
        return Feature(name, NUMBER, low, high, nullable=nullable).to_dict() | {"pandas_dtype": str(dtype)}
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        present = series[series.notna()]
        odd = next((v for v in present if not isinstance(v, str)), None)
        if odd is not None:
            raise ModelOpsError(
                f"column '{name}' mixes strings with {type(odd).__name__} values such as {odd!r}; "
                "a column must hold numbers, or strings (with missing values)"
            )
        return Feature(name, CATEGORY, allowed=_allowed(set(present), fitted), nullable=nullable).to_dict() | {
            "pandas_dtype": str(dtype)
        }
    raise ModelOpsError(
        f"column '{name}' has dtype {dtype}, which the predict API cannot send "
        "(numbers, booleans, strings and categories are supported)"
    )


def features_from_array(X: np.ndarray, names: list[str], dtypes: list[str] | None = None) -> list[dict[str, Any]]:
    """Features of an array-fitted model: numeric columns, or string columns (categories) of an object array."""
    out = []
    for j, name in enumerate(names):
        column = X[:, j]
        kind = dtypes[j] if dtypes else _array_kind(name, column)
        if kind == NUMBER:
            values = _floats(column)
            finite = values[np.isfinite(values)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
            out.append(Feature(name, NUMBER, low, high, nullable=bool(np.isnan(values).any())).to_dict())
        else:
            present = {v for v in column if isinstance(v, str)}
            nullable = any(is_missing(v) for v in column)
            out.append(Feature(name, CATEGORY, allowed=_allowed(present, None), nullable=nullable).to_dict())
    return out


def _array_kind(name: str, column: np.ndarray) -> str:
    if column.dtype.kind in "biuf":
        return NUMBER
    present = [v for v in column if not is_missing(v)]
    if all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in present):
        return NUMBER
    if all(isinstance(v, str) for v in present):
        return CATEGORY
    odd = next(v for v in present if not isinstance(v, str))
    raise ModelOpsError(
        f"feature '{name}' mixes strings with {type(odd).__name__} values such as {odd!r}; "
        "a column must hold numbers, or strings (with missing values)"
    )


def _allowed(present: set[Any], fitted: list[Any] | None) -> tuple[str, ...]:
    base = [c for c in fitted or () if isinstance(c, str)]
    known = set(base)
    return tuple(base + sorted(v for v in present if v not in known))


# ---- rows as the predict API gives them ---------------------------------------------------------------------------
def to_matrix(X: Any, features: list[dict[str, Any]]) -> np.ndarray:
    """The rows of X as modelops.model.schema turns request rows into a matrix: float64 when every feature is a number,
    object otherwise (numbers as float, categories as str); a missing value is NaN."""
    numeric = all(f["dtype"] == NUMBER for f in features)
    rows = len(X)
    matrix = np.empty((rows, len(features)), dtype=np.float64 if numeric else object)
    for j, f in enumerate(features):
        if is_frame(X):
            series = X[f["name"]]
            column = (
                series.to_numpy(dtype=np.float64, na_value=np.nan)
                if f["dtype"] == NUMBER
                else series.to_numpy(dtype=object)
            )
        else:
            column = np.asarray(X)[:, j]
        if f["dtype"] == NUMBER:
            matrix[:, j] = _floats(column)
        else:
            matrix[:, j] = [v if isinstance(v, str) else math.nan for v in column]
    return matrix


def acceptable_rows(matrix: np.ndarray, features: list[dict[str, Any]]) -> np.ndarray:
    """Which rows the predict API accepts as they are (no infinite numbers, no over-long strings)."""
    ok = np.ones(len(matrix), dtype=bool)
    for j, f in enumerate(features):
        column = matrix[:, j]
        if f["dtype"] == NUMBER:
            ok &= ~np.isinf(np.asarray(column, dtype=np.float64))
        else:
            ok &= np.array([not isinstance(v, str) or len(v) <= MAX_STRING_LENGTH for v in column], dtype=bool)
    return ok


def instances(matrix: np.ndarray, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON the predict API accepts: null for a missing value, ints for integer and boolean columns."""
    integral = [_is_integral(f.get("pandas_dtype")) for f in features]
    out = []
    for row in matrix:
        item: dict[str, Any] = {}
        for f, value, whole in zip(features, row, integral, strict=True):
            if is_missing(value):
                item[f["name"]] = None
            elif f["dtype"] == NUMBER:
                number = float(value)
                item[f["name"]] = int(number) if whole and number.is_integer() else number
            else:
                item[f["name"]] = str(value)
        out.append(item)
    return out


def _is_integral(pandas_dtype: str | None) -> bool:
    kind = (pandas_dtype or "").lower()
    return kind.startswith(("int", "uint")) or kind in ("bool", "boolean")


# ---- matrix -> the model's own input ------------------------------------------------------------------------------
def model_input(features: list[dict[str, Any]], spec: dict[str, Any] | None, matrix: np.ndarray) -> Any:
    """What the model is called with for these rows: the matrix itself for an array-fitted model, else the
    DataFrame the predict API and batch scoring build (modelops.model.frames): the fitted columns in order, each with
    its recorded pandas dtype; a value outside a category column's categories is kept, as an appended category."""
    if not is_dataframe_input(spec):
        return matrix
    from .frames import FrameBuilder
    from .schema import FeatureSchema

    columns = list((spec or {}).get("columns") or [f["name"] for f in features])
    return FrameBuilder(FeatureSchema.from_list(features), columns, pandas())(matrix)


# ---- small helpers ---------------------------------------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pd.NA and friends refuse comparison
        return True


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _floats(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind in "biuf":
        return column.astype(np.float64)
    return np.array([math.nan if is_missing(v) else float(v) for v in column], dtype=np.float64)
