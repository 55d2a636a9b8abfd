"""Score a chunk and format its prediction lines in bulk.

Probabilities are written with six fixed decimals, built digit by digit with numpy (no per-value
string formatting), so the same model and input always give byte-identical output.

A pipeline's leading SimpleImputer steps change nothing in a chunk without missing values, so such chunks
skip them (the imputer copies and scans every value); the predictions are the same either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..artifact import LoadedModel
from .readers import csv_field, padded_ids

DECIMALS = 6
_SCALE = 10**DECIMALS
# the three ASCII digits of 0..999: six decimals are two lookups, not six divisions
_THREE_DIGITS = np.array([[48 + d // 100, 48 + d // 10 % 10, 48 + d % 10] for d in range(1000)], dtype=np.uint8)


def fixed_decimals(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as '0.123456' byte strings: an (n, k) array -> n rows of k comma-led fields."""
    q = np.rint(np.clip(values, 0.0, 1.0) * _SCALE).astype(np.int32)
    n, k = q.shape
    out = np.empty((n, k, DECIMALS + 3), dtype=np.uint8)
    out[:, :, 0] = ord(",")
    out[:, :, 1] = (q // _SCALE) + ord("0")
    out[:, :, 2] = ord(".")
    fraction = q % _SCALE
    out[:, :, 3:6] = _THREE_DIGITS[fraction // 1000]
    out[:, :, 6:9] = _THREE_DIGITS[fraction % 1000]
    return out.reshape(n, k * (DECIMALS + 3))


def without_idle_imputers(estimator: Any) -> Any | None:
    """The pipeline after its leading imputers that return complete float rows unchanged, or None.

    Such an imputer replaces NaN only, adds no indicator columns and drops no column (every fitted
    statistic is a number); on rows without NaN its output equals its input.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return None
    skip = 0
    for _, step in estimator.steps[:-1]:
        statistics = getattr(step, "statistics_", None)
        idle = (
            isinstance(step, SimpleImputer)
            and isinstance(step.missing_values, float)
            and np.isnan(step.missing_values)
            and not step.add_indicator
            and statistics is not None
            and statistics.dtype.kind == "f"
            and bool(np.isfinite(statistics).all())
        )
        if not idle:
            break
        skip += 1
    return estimator[skip:] if skip else None


class Scorer:
    def __init__(self, model: LoadedModel):
        self.model = model
        self.manifest = model.manifest
        self.estimator = model.estimator
        self._complete_rows_estimator = without_idle_imputers(model.estimator)
        self.classes = list(self.manifest.classes or []) if self.manifest.task == "classification" else []
        self.version_field = ("," + csv_field(self.manifest.version)).encode()
        labels = [csv_field(str(c)).encode() for c in self.classes]
        # ",label" after an id, or "label" opening the line when there are no ids; zero-padded per class
        self._labels = {True: padded_ids([b"," + x for x in labels]), False: padded_ids(labels)}
        self._suffix = np.frombuffer(self.version_field + b"\n", np.uint8)

    def columns(self, id_columns: tuple[str, ...]) -> list[str]:
        return [*id_columns, "prediction", *[f"proba_{c}" for c in self.classes], "model_version"]

    def header(self, id_columns: tuple[str, ...]) -> bytes:
        return (",".join(csv_field(c) for c in self.columns(id_columns)) + "\n").encode()

    def score(self, ids: np.ndarray, matrix: np.ndarray, with_ids: bool = True) -> tuple[bytes, np.ndarray]:
        """Prediction lines for the rows, and the value whose drift is tracked (P(last class) or y).

        ids: (n, width) zero-padded id text. Each line is laid out as a row of a byte matrix
        (ids, label, probabilities, version), and the padding zeros are dropped in one pass.
        """
        n = len(matrix)
        if n == 0:
            return b"", np.zeros(0)
        from sklearn import config_context

        estimator = self.estimator
        if self._complete_rows_estimator is not None and matrix.dtype.kind == "f" and not np.isnan(matrix).any():
            estimator = self._complete_rows_estimator
        with config_context(assume_finite=True):
            if self.classes:
                proba = estimator.predict_proba(matrix)
                label = self._labels[with_ids][np.argmax(proba, axis=1)]
                numbers = fixed_decimals(proba)
                tracked = proba[:, -1]
            else:
                tracked = np.asarray(estimator.predict(matrix), dtype=np.float64)
                label = padded_ids([(b"," if with_ids else b"") + repr(v).encode() for v in tracked.tolist()])
                numbers = np.zeros((n, 0), dtype=np.uint8)
        parts = [ids] if with_ids else []
        rows = np.concatenate([*parts, label, numbers, np.broadcast_to(self._suffix, (n, self._suffix.size))], axis=1)
        flat = rows.ravel()
        return flat[flat != 0].tobytes(), tracked
