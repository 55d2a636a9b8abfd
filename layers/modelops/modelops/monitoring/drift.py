"""Drift: the Population Stability Index (PSI) of a sample against a model's baseline statistics.

The baseline (modelops.model.baseline) holds each numeric feature's quantile bins and each categorical
feature's category counts from training. A later sample is binned the same way and compared: PSI = sum((a - e) * ln(a / e)) over bins, with a small floor on
proportions so that an empty bin does not produce an infinite value.
Rules of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.

A feature whose drift cannot be measured (no baseline, or no values on one side) gets no PSI at all, and
a reason (DriftAccumulator.not_measured), never a PSI of 0.0, which would read as "no drift"."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model.baseline import categorical_counts, numeric_counts

PROPORTION_FLOOR = 1e-4
NO_BASELINE = "the model's manifest has no baseline for this feature"
NO_VALUES = "no values to compare: every value was missing"
_BLOCK_BYTES = 1 << 21  # rows binned at a time: about 2 MB of values, which stay in cache
EMPTY_BASELINE = "the baseline holds no values (the feature was always missing in training)"


def psi(expected_counts: np.ndarray | list[float], actual_counts: np.ndarray | list[float]) -> float:
    expected = np.asarray(expected_counts, dtype=np.float64)
    actual = np.asarray(actual_counts, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"bin counts differ in length: {expected.shape} vs {actual.shape}")
    if expected.sum() <= 0 or actual.sum() <= 0:
        return 0.0
    e = np.maximum(expected / expected.sum(), PROPORTION_FLOOR)
    a = np.maximum(actual / actual.sum(), PROPORTION_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftAccumulator:
    """Counts values per baseline bin over many chunks, so drift needs no second pass.

    Numeric features are binned together: one comparison of the whole chunk per edge rank (a few
    vectorised passes) instead of a binary search per value, which is several times faster for wide inputs.
    """

    def __init__(self, baseline: dict[str, dict[str, Any]], feature_names: list[str] | tuple[str, ...]):
        self.all_names = list(feature_names)
        self.names = [n for n in self.all_names if n in baseline]  # the rest: not measured, NO_BASELINE
        self.baseline = baseline
        self._edges = {}
        self.counts: dict[str, np.ndarray] = {}
        for name in self.names:
            base = baseline[name]
            size = len(base["counts"]) + (1 if base["kind"] == "categorical" else 0)
            self.counts[name] = np.zeros(size, dtype=np.int64)
            if base["kind"] == "numeric":
                self._edges[name] = np.asarray(base["edges"], dtype=np.float64)
        self._numeric = [j for j, name in enumerate(self.names) if name in self._edges]
        width = max((self._edges[self.names[j]].size for j in self._numeric), default=0)
        # one row of edges per numeric feature, padded with +inf: a padded edge's bin stays empty
        self._edge_grid = np.full((len(self._numeric), width), np.inf)
        for row, j in enumerate(self._numeric):
            edges = self._edges[self.names[j]]
            self._edge_grid[row, : edges.size] = edges

    def add(self, matrix: np.ndarray) -> None:
        self.merge(self.bin_counts(matrix))

    def bin_counts(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """The counts of one chunk, without touching the totals (safe to call from several threads).
        matrix: one column per feature name given, in that order."""
        if len(self.names) != len(self.all_names):
            keep = [j for j, n in enumerate(self.all_names) if n in self.baseline]
            matrix = matrix[:, keep]
        out = self._numeric_counts(matrix) if self._numeric else {}
        for j, name in enumerate(self.names):
            if name not in self._edges:
                out[name] = categorical_counts(matrix[:, j], self.baseline[name]["categories"])
        return out

    def _numeric_counts(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        columns = matrix if len(self._numeric) == matrix.shape[1] else matrix[:, self._numeric]
        columns = np.asarray(columns, dtype=np.float64)
        names = [self.names[j] for j in self._numeric]
        if not np.isfinite(columns).all():  # rare: per-column counting drops the non-finite values
            values = columns.T
            return {name: numeric_counts(values[row], self._edges[name]) for row, name in enumerate(names)}
        # at_most[k, f] = values of feature f <= its k-th edge; bin counts are the differences. Rows are
        # turned to one feature per row a block at a time, so the block stays in cache for every edge.
        # Each feature's row of the mask is counted on its own: count_nonzero over a whole contiguous row
        # is a byte count, while with axis=1 numpy sums bools cast to integers (about twice the time).
        edges = self._edge_grid.shape[1]
        totals: list[list[Any]] = [[0] * len(names) for _ in range(edges)]
        step = max(256, _BLOCK_BYTES // (8 * len(names)))
        below = np.empty((len(names), step), dtype=bool)
        for start in range(0, len(columns), step):
            block = np.ascontiguousarray(columns[start : start + step].T)  # one feature per row
            mask = below[:, : block.shape[1]]
            feature_rows = list(mask)
            for k in range(edges):
                np.less_equal(block, self._edge_grid[:, k, None], out=mask)
                total = totals[k]
                for f, row in enumerate(feature_rows):
                    total[f] += np.count_nonzero(row)
        at_most = np.zeros((edges + 1, len(names)), dtype=np.int64)
        at_most[:edges] = totals
        at_most[-1] = len(columns)
        counts = np.diff(at_most, axis=0, prepend=0)
        return {name: counts[: self.counts[name].size, row] for row, name in enumerate(names)}

    def merge(self, other_counts: dict[str, list[int]] | dict[str, np.ndarray]) -> None:
        for name, counts in other_counts.items():
            if name in self.counts:
                self.counts[name] += np.asarray(counts, dtype=np.int64)

    def _expected(self, name: str) -> list[float]:
        base = self.baseline[name]
        return list(base["counts"]) + ([0] if base["kind"] == "categorical" else [])

    def psi_by_feature(self) -> dict[str, float]:
        """PSI of every feature whose drift can be measured (see not_measured for the others)."""
        out = {}
        for name in self.names:
            expected = self._expected(name)
            if sum(expected) > 0 and self.counts[name].sum() > 0:
                out[name] = psi(expected, self.counts[name])
        return out

    def not_measured(self) -> dict[str, str]:
        """Why a feature has no PSI, by feature."""
        out = {}
        for name in self.all_names:
            if name not in self.baseline:
                out[name] = NO_BASELINE
            elif sum(self._expected(name)) <= 0:
                out[name] = EMPTY_BASELINE
            elif self.counts[name].sum() <= 0:
                out[name] = NO_VALUES
        return out
