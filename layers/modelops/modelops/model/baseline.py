"""Baseline feature statistics, recorded with a model at training time: quantile bins (edges from the
training data) for each numeric feature, category counts for each categorical one, and the same binning for
any later sample (what modelops.monitoring.drift compares)."""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_BINS = 10
OTHER = "__other__"


def numeric_baseline(values: np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])) if values.size else np.array([])
    counts = numeric_counts(values, inner)
    return {"kind": "numeric", "edges": inner.tolist(), "counts": counts.tolist()}


def numeric_counts(values: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """Counts per bin; bin i holds edges[i-1] < x <= edges[i], with open outer bins."""
    edges = np.asarray(edges, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    index = np.searchsorted(edges, values, side="left")
    return np.bincount(index, minlength=edges.size + 1)


def categorical_baseline(values: np.ndarray) -> dict[str, Any]:
    cats, counts = np.unique(np.asarray([str(v) for v in values if v == v and v is not None]), return_counts=True)
    return {"kind": "categorical", "categories": cats.tolist(), "counts": counts.tolist()}


def categorical_counts(values: np.ndarray, categories: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    for v in values:
        if v is None or v != v:
            continue
        counts[index.get(str(v), len(categories))] += 1
    return counts


def baseline_for(values: np.ndarray, dtype: str) -> dict[str, Any]:
    return numeric_baseline(values) if dtype == "number" else categorical_baseline(values)
