"""Score a chunk and format its prediction lines in bulk.

Probabilities are written with six fixed decimals, built digit by digit with numpy (no per-value
string formatting), so the same model and input always give byte-identical output.

A pipeline's leading SimpleImputer steps change nothing in a chunk without missing values, so such chunks
skip them (the imputer copies and scans every value); the predictions are the same either way.

The model is called through modelops.inference, as online: a model fitted on a DataFrame gets one, rows
with a value the model refuses are rejected with its reason, and a failure on rows within the training
data fails the run (ModelFault). The last column, `warnings`, lists `feature:code` for each value of the
row the model never saw in training (codes as in the predict API's answer), separated by ";".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..artifact import LoadedModel
from ..inference import ModelRunner, without_idle_imputers
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


@dataclass
class ScoredRows:
    body: bytes  # prediction lines of the scored rows
    tracked: np.ndarray  # the value whose drift is tracked, per scored row
    kept: np.ndarray | None = None  # boolean mask of the scored rows among the input rows; None = all
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (input row index, reason)
    warned_rows: int = 0
    warnings: dict[str, int] = field(default_factory=dict)  # "feature:code" -> values flagged


class _Deferred(Sequence[Any]):
    """fn(*args), computed on first use: the model runner reads the per-value warning messages only when
    rows fail, so a chunk that scores cleanly never builds them."""

    def __init__(self, fn: Callable[..., Sequence[Any] | None], *args: Any):
        self._fn, self._args = fn, args
        self._value: Sequence[Any] | None = None

    def _get(self) -> Sequence[Any]:
        if self._value is None:
            self._value = self._fn(*self._args) or []
        return self._value

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, i: Any) -> Any:
        return self._get()[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())


class Scorer:
    def __init__(self, model: LoadedModel):
        self.model = model
        self.manifest = model.manifest
        self.schema = self.manifest.schema
        self.estimator = model.estimator
        self.classes = list(self.manifest.classes or []) if self.manifest.task == "classification" else []
        self.runner = ModelRunner(model.estimator, self.schema, self.manifest.input, proba=bool(self.classes))
        # a DataFrame model's imputers see named columns: nothing is skipped there
        self._complete_rows_estimator = None if self.runner.takes_dataframe else without_idle_imputers(model.estimator)
        self.version_field = ("," + csv_field(self.manifest.version)).encode()
        labels = [csv_field(str(c)).encode() for c in self.classes]
        # ",label" after an id, or "label" opening the line when there are no ids; zero-padded per class
        self._labels = {True: padded_ids([b"," + x for x in labels]), False: padded_ids(labels)}
        self._version = np.frombuffer(self.version_field, np.uint8)
        self._no_warnings = np.frombuffer(b",\n", np.uint8)
        self._warning_keys = [f"{f.name}:{self.schema.warning_code(j)}" for j, f in enumerate(self.schema.features)]

    def _warning_fields(self, flags: np.ndarray) -> np.ndarray:
        """The warnings field (',' + the flagged values' 'feature:code' joined by ';' + newline) of each row,
        as a zero-padded byte matrix. Rows share few patterns of flagged features, so each distinct pattern
        is formatted once."""
        flagged = np.flatnonzero(flags.any(axis=1))
        patterns, which = np.unique(np.packbits(flags[flagged], axis=1), axis=0, return_inverse=True)
        fields = []
        for bits in np.unpackbits(patterns, axis=1, count=flags.shape[1]).astype(bool):
            keys = [self._warning_keys[j] for j in np.flatnonzero(bits).tolist()]
            fields.append(b"," + csv_field(";".join(keys)).encode() + b"\n")
        table = padded_ids(fields)
        tail = np.zeros((len(flags), max(table.shape[1], self._no_warnings.size)), dtype=np.uint8)
        tail[:, : self._no_warnings.size] = self._no_warnings
        tail[flagged, : table.shape[1]] = table[which.reshape(-1)]
        return tail

    def columns(self, id_columns: tuple[str, ...]) -> list[str]:
        return [*id_columns, "prediction", *[f"proba_{c}" for c in self.classes], "model_version", "warnings"]

    def header(self, id_columns: tuple[str, ...]) -> bytes:
        return (",".join(csv_field(c) for c in self.columns(id_columns)) + "\n").encode()

    def score(self, ids: np.ndarray, matrix: np.ndarray, with_ids: bool = True) -> tuple[bytes, np.ndarray]:
        """Prediction lines and tracked values (see score_rows), for rows the model scores."""
        scored = self.score_rows(ids, matrix, with_ids)
        return scored.body, scored.tracked

    def score_rows(self, ids: np.ndarray, matrix: np.ndarray, with_ids: bool = True) -> ScoredRows:
        """Prediction lines for the rows, the value whose drift is tracked (P(last class) or y), and the
        rows refused after parsing: a value a bool or integer feature cannot take, or one the model refuses.

        ids: (n, width) zero-padded id text. Each line is laid out as a row of a byte matrix
        (ids, label, probabilities, version, warnings), and the padding zeros are dropped in one pass.
        """
        n = len(matrix)
        if n == 0:
            return ScoredRows(b"", np.zeros(0))
        from sklearn import config_context

        rows = np.arange(n)
        rejected: list[tuple[int, str]] = []
        bad = self.schema.bad_rows(matrix)
        if bad:
            names = self.schema.names
            rejected = [(r, f"column '{names[j]}': {problem}") for r, (j, problem) in sorted(bad.items())]
            rows = np.setdiff1d(rows, list(bad))
            matrix, ids = matrix[rows], ids[rows]
        flags = self.schema.warning_mask(matrix)
        warnings = None if flags is None else _Deferred(self.schema.warnings, matrix)
        estimator = self.estimator
        if self._complete_rows_estimator is not None and matrix.dtype.kind == "f" and not np.isnan(matrix).any():
            estimator = self._complete_rows_estimator
        with config_context(assume_finite=True, skip_parameter_validation=True):
            outcome = self.runner.run(matrix, warnings, estimator)
        if outcome.refused:
            for r in outcome.refused:
                where = f"column '{r.feature}': " if r.feature else ""
                rejected.append((int(rows[r.row]), where + r.reason))
            rejected.sort()
            assert outcome.kept is not None
            rows, ids = rows[outcome.kept], ids[outcome.kept]
            if flags is not None:
                flags = flags[outcome.kept]
        kept = None
        if len(rows) != n:
            kept = np.zeros(n, dtype=bool)
            kept[rows] = True
        m = len(rows)
        if m == 0:
            return ScoredRows(b"", np.zeros(0), kept, rejected)
        outputs = outcome.outputs
        if self.classes:
            label = self._labels[with_ids][np.argmax(outputs, axis=1)]
            numbers = fixed_decimals(outputs)
            tracked = outputs[:, -1]
        else:
            tracked = np.asarray(outputs, dtype=np.float64)
            label = padded_ids([(b"," if with_ids else b"") + repr(v).encode() for v in tracked.tolist()])
            numbers = np.zeros((m, 0), dtype=np.uint8)
        counts: dict[str, int] = {}
        warned = 0
        if flags is None or not flags.any():
            tail = np.broadcast_to(self._no_warnings, (m, self._no_warnings.size))
        else:
            tail = self._warning_fields(flags)
            warned = int(flags.any(axis=1).sum())
            counts = {self._warning_keys[j]: int(c) for j, c in enumerate(flags.sum(axis=0).tolist()) if c}
        parts = [ids] if with_ids else []
        version = np.broadcast_to(self._version, (m, self._version.size))
        lines = np.concatenate([*parts, label, numbers, version, tail], axis=1)
        flat = lines.ravel()
        return ScoredRows(flat[flat != 0].tobytes(), tracked, kept, rejected, warned, counts)
