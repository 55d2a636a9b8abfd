"""Score a chunk and format its prediction lines in bulk.

Probabilities are written with six fixed decimals, eight bytes per value from two small digit tables
(no per-value string formatting), so the same model and input always give byte-identical output.

A pipeline's leading SimpleImputer steps change nothing in a chunk without missing values, so such chunks
skip them (the imputer copies and scans every value); the predictions are the same either way.

The model is called through modelops.model.inference, as online: a model fitted on a DataFrame gets one, rows
with a value the model refuses are rejected with its reason, and a failure on rows within the training
data fails the run (ModelFault). The last column, `warnings`, lists `feature:code` for each value of the
row the model never saw in training (codes as in the predict API's answer), separated by ";".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.artifact import LoadedModel
from ..model.inference import ModelRunner
from .readers import csv_field, padded_ids

DECIMALS = 6
_SCALE = 10**DECIMALS


def _digit_bytes(count: int, place: int) -> np.ndarray:
    """The three ASCII digits of 0..count-1 (mod 1000) as bytes place..place+2 of a little-endian uint64."""
    d = np.arange(count, dtype=np.uint64) % 1000
    digits = [48 + d // 100, 48 + d // 10 % 10, 48 + d % 10]
    return sum((x << np.uint64(8 * (place + i)) for i, x in enumerate(digits)), np.zeros(count, np.uint64))


# 'X.dddddd' is eight bytes: one uint64 per value, from the thousands (X, '.', three digits; 1000 -> '1.000')
# and the units (three digits) of the value times 10^6 -- two lookups in small tables, not six divisions
_UNITS = np.arange(1001, dtype=np.uint64) // 1000 + 48 | np.uint64(ord(".") << 8)
_HIGH = (_UNITS | _digit_bytes(1001, 2)).astype("<u8")
_LOW = _digit_bytes(1000, 5).astype("<u8")


def fixed_decimals(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as '0.123456' byte strings: an (n, k) array -> n rows of k comma-led fields."""
    # into a C-ordered array: a multi-class HistGradientBoosting model's predict_proba is Fortran-ordered, and
    # the byte view below needs each row's values side by side
    scaled = np.clip(values, 0.0, 1.0, out=np.empty(values.shape))
    np.multiply(scaled, _SCALE, out=scaled)
    q = np.rint(scaled, out=scaled).astype(np.int32)
    n, k = q.shape
    high = q // 1000
    q -= high * 1000
    packed = _HIGH[high]
    packed |= _LOW[q]
    out = np.empty((n, k, DECIMALS + 3), dtype=np.uint8)
    out[:, :, 0] = ord(",")
    out[:, :, 1:] = packed.view(np.uint8).reshape(n, k, DECIMALS + 2)
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
        # the runner skips idle imputers on complete rows and calls the step kernels (modelops.model.inference)
        self.runner = ModelRunner(model.estimator, self.schema, self.manifest.input, proba=bool(self.classes))
        self.version_field = ("," + csv_field(self.manifest.version)).encode()
        labels = [csv_field(str(c)).encode() for c in self.classes]
        # ",label" after an id, or "label" opening the line when there are no ids; zero-padded per class
        self._labels = {True: padded_ids([b"," + x for x in labels]), False: padded_ids(labels)}
        self._version = np.frombuffer(self.version_field, np.uint8)
        self._no_warnings = np.frombuffer(b",\n", np.uint8)
        self._warning_keys = [f"{f.name}:{self.schema.warning_code(j)}" for j, f in enumerate(self.schema.features)]

    def _with_warnings(self, body: np.ndarray, ends: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """The lines `body` with the warnings of the flagged rows put in front of their newlines (at `ends`):
        the flagged values' 'feature:code' joined by ';'. Rows share few patterns of flagged features, so
        each distinct pattern is formatted once; the other lines keep their empty field and are not moved
        through a byte matrix as wide as the longest warnings."""
        packed = np.packbits(flags, axis=1)
        patterns: np.ndarray
        if packed.shape[1] <= 8:  # up to 64 features: one integer per row, a plain sort to find the patterns
            words = np.zeros((len(packed), 8), dtype=np.uint8)
            words[:, : packed.shape[1]] = packed
            distinct, which = np.unique(words.view(np.uint64)[:, 0], return_inverse=True)
            patterns = distinct.view(np.uint8).reshape(-1, 8)
        else:
            patterns, which = np.unique(packed, axis=0, return_inverse=True)
        fields = []
        for bits in np.unpackbits(patterns, axis=1, count=flags.shape[1]).astype(bool):
            keys = [self._warning_keys[j] for j in np.flatnonzero(bits).tolist()]
            fields.append(csv_field(";".join(keys)).encode().replace(b"\0", b""))  # zeros are padding
        which = which.reshape(-1)
        texts = padded_ids(fields)[which].ravel()
        sizes = np.array([len(f) for f in fields], dtype=np.int64)[which]
        return np.insert(body, np.repeat(ends, sizes), texts[texts != 0])

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
        (ids, label, probabilities, version, an empty warnings field) and the padding zeros are dropped in
        one pass; the few rows with warnings get them spliced in after (see _with_warnings).
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
        with config_context(assume_finite=True, skip_parameter_validation=True):
            outcome = self.runner.run(matrix, warnings)
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
        parts = [ids] if with_ids else []
        version = np.broadcast_to(self._version, (m, self._version.size))
        tail = np.broadcast_to(self._no_warnings, (m, self._no_warnings.size))
        flat = np.concatenate([*parts, label, numbers, version, tail], axis=1).ravel()
        body = flat[flat != 0]
        warned_rows = None if flags is None else flags.any(axis=1)
        if warned_rows is None or not warned_rows.any():
            return ScoredRows(body.tobytes(), tracked, kept, rejected)
        assert flags is not None
        per_feature = np.count_nonzero(flags, axis=0).tolist()
        counts = {self._warning_keys[j]: int(c) for j, c in enumerate(per_feature) if c}
        # a line's length is its nonzero bytes; only the ids and the label hold padding
        fixed = numbers.shape[1] + np.count_nonzero(self._version) + np.count_nonzero(self._no_warnings)
        lengths = np.count_nonzero(label, axis=1) + fixed
        if with_ids:
            lengths += np.count_nonzero(ids, axis=1)
        newlines = np.cumsum(lengths)[warned_rows] - 1
        body = self._with_warnings(body, newlines, flags[warned_rows])
        warned = int(np.count_nonzero(warned_rows))
        return ScoredRows(body.tobytes(), tracked, kept, rejected, warned, counts)
