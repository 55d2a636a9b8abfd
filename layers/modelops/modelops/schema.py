"""Feature schema: what a model expects, and turning request rows into a validated matrix.

The fast path for all-numeric models avoids per-value Python checks: it gathers values in
feature order, checks their types with one set() over map(type), and lets numpy convert.
Anything unusual falls back to a slow path whose only job is to name the offending field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError

NUMBER = "number"
CATEGORY = "category"
MAX_STRING_LENGTH = 256
_NUMERIC_TYPES = frozenset((int, float))


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.dtype == NUMBER:
            out.update(min=self.min, max=self.max)
        else:
            out["allowed"] = list(self.allowed or ())
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
        )


@dataclass(frozen=True)
class FeatureSchema:
    features: tuple[Feature, ...]
    names: tuple[str, ...] = field(init=False)
    all_numeric: bool = field(init=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.features))
        object.__setattr__(self, "all_numeric", all(f.dtype == NUMBER for f in self.features))
        object.__setattr__(self, "_index", {f.name: i for i, f in enumerate(self.features)})

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.features]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> FeatureSchema:
        return cls(tuple(Feature.from_dict(i) for i in items))

    def example_instance(self) -> dict[str, Any]:
        """A valid row: the midpoint of each numeric range, the first allowed category."""
        row: dict[str, Any] = {}
        for f in self.features:
            if f.dtype == NUMBER:
                lo, hi = f.min or 0.0, f.max if f.max is not None else 1.0
                row[f.name] = round((lo + hi) / 2, 4)
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
        names = self.names
        width = len(names)
        try:
            if any(len(row) != width for row in instances):
                return None
            flat = [row[n] for row in instances for n in names]
        except (KeyError, TypeError):
            return None
        if not set(map(type, flat)) <= _NUMERIC_TYPES:
            return None
        try:
            matrix = np.array(flat, dtype=np.float64).reshape(len(instances), width)
        except OverflowError:
            return None
        if not np.isfinite(matrix).all():
            return None
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
    def _check_value(feature: Feature, value: Any, where: str) -> Any:
        if value is None:
            if feature.nullable:
                return math.nan
            raise InputError(f"{where}: a value is required (null is not allowed)", field=where, code="wrong_type")
        if feature.dtype == NUMBER:
            if type(value) not in _NUMERIC_TYPES:
                raise InputError(f"{where}: expected a number, got {_json_type(value)}", field=where, code="wrong_type")
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise InputError(f"{where}: NaN or infinite values are not allowed", field=where, code="not_finite")
            return number
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a string, got {_json_type(value)}", field=where, code="wrong_type")
        if len(value) > MAX_STRING_LENGTH:
            raise InputError(f"{where}: longer than {MAX_STRING_LENGTH} characters", field=where, code="too_long")
        return value

    def _to_matrix(self, rows: list[list[Any]]) -> np.ndarray:
        if self.all_numeric:
            return np.array(rows, dtype=np.float64)
        matrix = np.empty((len(rows), len(self.names)), dtype=object)
        matrix[:] = rows
        return matrix


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
