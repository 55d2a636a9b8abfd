"""Feature schema: what a model expects, and turning request rows into a validated matrix.

The fast path for all-numeric models avoids per-value Python checks: it gathers values in
feature order, checks their types with one set() over map(type), and lets numpy convert.
Anything unusual falls back to a slow path whose only job is to name the offending field.

A feature may also record the pandas dtype it was fitted with (`pandas_dtype`): a bool feature then takes
true/false (or 0/1) and an integer feature only whole numbers, since the model gets exactly that dtype.

Values the model never saw in training (a category outside `allowed`, a number outside [min, max]) are
valid input: they are scored and flagged with a warning per row (`warnings`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from ..core.errors import InputError

NUMBER = "number"
CATEGORY = "category"
MAX_STRING_LENGTH = 256
_NUMERIC_TYPES = frozenset((int, float))
OUT_OF_RANGE = "out_of_range"
UNSEEN_CATEGORY = "unseen_category"
_WARNING_TEXT = 40  # clip client values quoted in warnings
_SMALL = 1024  # rows up to which range checks compare element-wise


def is_bool_dtype(pandas_dtype: str | None) -> bool:
    return pandas_dtype in ("bool", "boolean")


def is_integer_dtype(pandas_dtype: str | None) -> bool:
    return bool(pandas_dtype and re.fullmatch(r"u?int\d*", pandas_dtype.lower()))


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    nullable: bool = False
    pandas_dtype: str | None = None  # the dtype of the DataFrame column the model was fitted on

    @property
    def is_bool(self) -> bool:
        return self.dtype == NUMBER and is_bool_dtype(self.pandas_dtype)

    @property
    def is_integer(self) -> bool:
        return self.dtype == NUMBER and is_integer_dtype(self.pandas_dtype)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.dtype == NUMBER:
            out.update(min=self.min, max=self.max)
        else:
            out["allowed"] = list(self.allowed or ())
        if self.pandas_dtype is not None:
            out["pandas_dtype"] = self.pandas_dtype
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feature:
        allowed = data.get("allowed")
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            min=data.get("min"),
            max=data.get("max"),
            allowed=tuple(allowed) if allowed is not None else None,
            nullable=bool(data.get("nullable", False)),
            pandas_dtype=data.get("pandas_dtype"),
        )


@dataclass(frozen=True)
class FeatureSchema:
    features: tuple[Feature, ...]
    names: tuple[str, ...] = field(init=False)
    all_numeric: bool = field(init=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _checks: _MatrixChecks = field(init=False, repr=False, compare=False)
    _pick: Any = field(init=False, repr=False, compare=False)  # row dict -> its values in schema order

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.features))
        object.__setattr__(self, "all_numeric", all(f.dtype == NUMBER for f in self.features))
        object.__setattr__(self, "_index", {f.name: i for i, f in enumerate(self.features)})
        object.__setattr__(self, "_checks", _MatrixChecks(self.features))
        object.__setattr__(self, "_pick", itemgetter(*self.names) if len(self.names) > 1 else _one(self.names))

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.features]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> FeatureSchema:
        return cls(tuple(Feature.from_dict(i) for i in items))

    def example_instance(self) -> dict[str, Any]:
        """A valid row: the midpoint of each numeric range, the first allowed category."""
        row: dict[str, Any] = {}
        for f in self.features:
            if f.is_bool:
                row[f.name] = False
            elif f.dtype == NUMBER:
                lo, hi = f.min or 0.0, f.max if f.max is not None else 1.0
                row[f.name] = round((lo + hi) / 2) if f.is_integer else round((lo + hi) / 2, 4)
            else:
                row[f.name] = (f.allowed or ("",))[0]
        return row

    # ---- request rows -> matrix -------------------------------------------------------
    def matrix_from_instances(self, instances: Any, max_rows: int) -> np.ndarray:
        self._check_row_count(instances, "instances", max_rows)
        if self.all_numeric:
            fast = self._fast_numeric(instances)
            if fast is not None:
                return fast
        rows = [self._row_values(i, row) for i, row in enumerate(instances)]
        return self._to_matrix(rows)

    def matrix_from_columns(self, columns: Any, data: Any, max_rows: int) -> np.ndarray:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InputError("columns: expected a list of feature names", field="columns")
        self._check_names(set(columns), "columns")
        if len(set(columns)) != len(columns):
            raise InputError("columns: a feature name is repeated", field="columns")
        self._check_row_count(data, "data", max_rows)
        order = [columns.index(n) for n in self.names]
        width = len(columns)
        if self.all_numeric:
            fast = self._fast_numeric_columns(data, order, width)
            if fast is not None:
                return fast
        rows = []
        for i, values in enumerate(data):
            where = f"data[{i}]"
            if not isinstance(values, list) or len(values) != width:
                raise InputError(f"{where}: expected a list of {width} values", field=where)
            rows.append([self._check_value(self.features[j], values[k], f"{where}[{k}]") for j, k in enumerate(order)])
        return self._to_matrix(rows)

    def _check_row_count(self, rows: Any, name: str, max_rows: int) -> None:
        if not isinstance(rows, list):
            raise InputError(f"{name}: expected a list of rows", field=name)
        if not rows:
            raise InputError(f"{name}: at least one row is required", field=name, code="empty_input")
        if len(rows) > max_rows:
            raise InputError(
                f"{name}: {len(rows)} rows exceed the limit of {max_rows}", field=name, code="too_many_rows"
            )

    def _fast_numeric(self, instances: list[Any]) -> np.ndarray | None:
        """Complete, finite number rows as a matrix in one pass; None sends the request to the per-value path
        (which names the offending field)."""
        width = len(self.names)
        try:
            if any(len(row) != width for row in instances):
                return None
            rows = list(map(self._pick, instances))
        except (KeyError, TypeError):
            return None
        return self._numeric_matrix(rows, len(instances), width)

    def _fast_numeric_columns(self, data: list[Any], order: list[int], width: int) -> np.ndarray | None:
        if not all(type(values) is list and len(values) == width for values in data):
            return None
        rows = data if order == list(range(width)) else list(map(itemgetter(*order), data))
        return self._numeric_matrix(rows, len(data), width)

    def _numeric_matrix(self, rows: list[Any], n: int, width: int) -> np.ndarray | None:
        flat = list(chain.from_iterable(rows))  # n rows of width values each (checked by the callers)
        if not set(map(type, flat)) <= _NUMERIC_TYPES:
            return None
        try:
            matrix = np.array(flat, dtype=np.float64).reshape(n, width)
        except OverflowError:
            return None
        if not np.isfinite(matrix).all():
            return None
        if self._checks.typed and self._checks.first_bad_value(matrix) is not None:
            return None  # the slow path names the field
        return matrix

    def _check_names(self, given: set[str], where: str) -> None:
        missing = [n for n in self.names if n not in given]
        if missing:
            raise InputError(
                f"{where}: missing feature '{missing[0]}'", field=f"{where}.{missing[0]}", code="missing_feature"
            )
        unknown = sorted(given - set(self.names))
        if unknown:
            raise InputError(
                f"{where}: unknown feature '{unknown[0]}'", field=f"{where}.{unknown[0]}", code="unknown_feature"
            )

    def _row_values(self, i: int, row: Any) -> list[Any]:
        where = f"instances[{i}]"
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected an object of feature values", field=where)
        self._check_names(set(row), where)
        return [self._check_value(f, row[f.name], f"{where}.{f.name}") for f in self.features]

    @staticmethod
    def check_value(feature: Feature, value: Any, where: str) -> Any:
        """One JSON value of a feature as the model gets it (NaN for a nullable null); InputError otherwise."""
        return FeatureSchema._check_value(feature, value, where)

    @staticmethod
    def _check_value(feature: Feature, value: Any, where: str) -> Any:
        if value is None:
            if feature.nullable:
                return math.nan
            raise InputError(f"{where}: a value is required (null is not allowed)", field=where, code="wrong_type")
        if feature.dtype == NUMBER:
            if feature.is_bool:
                if type(value) is bool or (type(value) in _NUMERIC_TYPES and value in (0, 1)):
                    return float(value)
                raise InputError(f"{where}: {bool_problem(value)}", field=where, code="wrong_type")
            if type(value) not in _NUMERIC_TYPES:
                raise InputError(f"{where}: expected a number, got {_json_type(value)}", field=where, code="wrong_type")
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise InputError(f"{where}: NaN or infinite values are not allowed", field=where, code="not_finite")
            if feature.is_integer and not number.is_integer():
                raise InputError(f"{where}: {integer_problem(number)}", field=where, code="wrong_type")
            return number
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a string, got {_json_type(value)}", field=where, code="wrong_type")
        if len(value) > MAX_STRING_LENGTH:
            raise InputError(f"{where}: longer than {MAX_STRING_LENGTH} characters", field=where, code="too_long")
        return value

    # ---- checks on a whole matrix (batch input, and the fast path) ----------------------------
    def first_bad_value(self, matrix: np.ndarray) -> tuple[int, int, str] | None:
        """(row, feature index, problem) of the first value a bool or integer feature cannot take, or None.
        The per-value path refuses the same values with the same problem text."""
        return self._checks.first_bad_value(matrix) if self._checks.typed else None

    def bad_rows(self, matrix: np.ndarray) -> dict[int, tuple[int, str]]:
        """Every row with such a value: row -> (feature index, problem) of its first one."""
        return self._checks.bad_rows(matrix) if self._checks.typed else {}

    def warnings(self, matrix: np.ndarray) -> list[list[dict[str, str]]] | None:
        """Per row, the values the model never saw in training; None when there are none at all."""
        return self._checks.warnings(matrix)

    def warning_mask(self, matrix: np.ndarray) -> np.ndarray | None:
        """(rows, features) booleans, True where warnings() flags the value; None when it flags none. The
        same check without building a message per value (batch chunks need only which values)."""
        return self._checks.mask(matrix)

    def warning_code(self, j: int) -> str:
        """The code warnings() gives a flagged value of feature j."""
        return OUT_OF_RANGE if self.features[j].dtype == NUMBER else UNSEEN_CATEGORY

    def _to_matrix(self, rows: list[list[Any]]) -> np.ndarray:
        if self.all_numeric:
            return np.array(rows, dtype=np.float64)
        matrix = np.empty((len(rows), len(self.names)), dtype=object)
        matrix[:] = rows
        return matrix


def _one(names: tuple[str, ...]) -> Any:
    """The row getter of a one-feature schema (itemgetter of one name returns the value, not a tuple)."""
    name = names[0] if names else None
    return lambda row: (row[name],)


def bool_problem(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"expected a boolean (true, false, 1 or 0), got {float(value)!r}"
    return f"expected a boolean, got {_json_type(value)}"


def integer_problem(number: float) -> str:
    return f"expected a whole number, got {number!r}"


class _MatrixChecks:
    """Vectorised checks of a validated matrix (schema order): range and category warnings, and the bool
    and integer constraints of features fitted with those pandas dtypes."""

    def __init__(self, features: tuple[Feature, ...]):
        self.features = features
        self.numeric = [j for j, f in enumerate(features) if f.dtype == NUMBER]
        self.low = np.array([_bound(features[j].min, -math.inf) for j in self.numeric], dtype=np.float64)
        self.high = np.array([_bound(features[j].max, math.inf) for j in self.numeric], dtype=np.float64)
        self.ranged = bool(np.isfinite(self.low).any() or np.isfinite(self.high).any())
        self.categories = [
            (j, frozenset(f.allowed)) for j, f in enumerate(features) if f.dtype != NUMBER and f.allowed is not None
        ]
        self.bools = [j for j, f in enumerate(features) if f.is_bool]
        self.integers = [j for j, f in enumerate(features) if f.is_integer]
        self.typed = bool(self.bools or self.integers)

    def _numbers(self, matrix: np.ndarray, columns: list[int]) -> np.ndarray:
        block = matrix if len(columns) == matrix.shape[1] else matrix[:, columns]
        return block if block.dtype == np.float64 else block.astype(np.float64)

    def _bad_mask(self, matrix: np.ndarray) -> list[tuple[int, np.ndarray, str]]:
        out = []
        for j in self.bools:
            values = self._numbers(matrix, [j])[:, 0]
            out.append((j, (values != 0) & (values != 1) & ~np.isnan(values), "bool"))
        for j in self.integers:
            values = self._numbers(matrix, [j])[:, 0]
            out.append((j, (values != np.floor(values)) & np.isfinite(values), "int"))
        return out

    def _problem(self, matrix: np.ndarray, row: int, j: int, kind: str) -> str:
        value = float(matrix[row, j])
        return bool_problem(value) if kind == "bool" else integer_problem(value)

    def first_bad_value(self, matrix: np.ndarray) -> tuple[int, int, str] | None:
        found = self.bad_rows(matrix)
        if not found:
            return None
        row = min(found)
        return (row, *found[row])

    def bad_rows(self, matrix: np.ndarray) -> dict[int, tuple[int, str]]:
        out: dict[int, tuple[int, str]] = {}
        for j, mask, kind in sorted(self._bad_mask(matrix), key=lambda item: item[0]):
            for row in np.flatnonzero(mask).tolist():
                out.setdefault(row, (j, self._problem(matrix, row, j, kind)))
        return out

    def warnings(self, matrix: np.ndarray) -> list[list[dict[str, str]]] | None:
        flagged: dict[int, list[tuple[int, str, str]]] = {}
        if self.ranged and self.numeric and len(matrix):
            values = self._numbers(matrix, self.numeric)
            if len(values) > _SMALL:  # a batch chunk: one NaN-ignoring pass per bound, no row-sized temporaries
                outside = (np.fmin.reduce(values, axis=0) < self.low) | (np.fmax.reduce(values, axis=0) > self.high)
            elif (values < self.low).any() or (values > self.high).any():
                outside = ((values < self.low) | (values > self.high)).any(axis=0)
            else:  # a request with nothing to flag: two comparisons
                outside = np.zeros(0, dtype=bool)
            for k in np.flatnonzero(outside).tolist():
                j, column = self.numeric[k], values[:, k]
                feature = self.features[j]
                for row in np.flatnonzero((column < self.low[k]) | (column > self.high[k])).tolist():
                    text = f"{float(column[row])!r} is outside the training range {feature.min} to {feature.max}"
                    flagged.setdefault(row, []).append((j, OUT_OF_RANGE, text))
        for j, allowed in self.categories:
            column = matrix[:, j]
            for row, value in enumerate(column.tolist()):
                if isinstance(value, str) and value not in allowed:
                    text = f"'{_clip(value)}' was not seen in training"
                    flagged.setdefault(row, []).append((j, UNSEEN_CATEGORY, text))
        if not flagged:
            return None
        out: list[list[dict[str, str]]] = [[] for _ in range(len(matrix))]
        for row, items in flagged.items():
            out[row] = [
                {"feature": self.features[j].name, "code": code, "message": text} for j, code, text in sorted(items)
            ]
        return out

    def mask(self, matrix: np.ndarray) -> np.ndarray | None:
        """What warnings() flags, as one boolean per value (same comparisons, NaN never flagged)."""
        flagged: np.ndarray | None = None
        if self.ranged and self.numeric and len(matrix):
            values = self._numbers(matrix, self.numeric)
            beyond = values < self.low  # whole rows at once: columns are strided
            beyond |= values > self.high
            if beyond.any():  # two comparisons cost less than the min and max scans that would rule them out
                flagged = beyond if len(self.numeric) == matrix.shape[1] else np.zeros(matrix.shape, dtype=bool)
                if flagged is not beyond:
                    flagged[:, self.numeric] = beyond
        for j, allowed in self.categories:
            hits = [isinstance(v, str) and v not in allowed for v in matrix[:, j].tolist()]
            if any(hits):
                if flagged is None:
                    flagged = np.zeros(matrix.shape, dtype=bool)
                flagged[:, j] = hits
        return flagged


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _clip(text: str) -> str:
    return text if len(text) <= _WARNING_TEXT else text[:_WARNING_TEXT] + "…"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
