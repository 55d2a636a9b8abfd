"""Simulated production traffic for the lifecycle demo and tests: requests to the breast-cancer model
after a new imaging device starts reporting every size feature (radius, perimeter, area) larger.
The true diagnosis does not change, so a model trained before the change over-predicts malignancy."""

from __future__ import annotations

from typing import Any

import numpy as np
from modelops.capture.labelled import LabelledRow
from modelops.model.dataset import Dataset

SIZE_WORDS = ("radius", "perimeter", "area")
WRITERS = ("clinic-a", "clinic-b", "clinic-c")  # the API keys that send ground truth, each a third


def trusted_rows_csv(dataset: Dataset, n: int, factor: float, seed: int = 11) -> bytes:
    """n rows from the new device with diagnoses confirmed by the data owners: curated trusted rows
    (modelops.model.trusted), as a CSV for <training prefix>/trusted/."""
    from modelops.model.trusted import rows_csv

    X, y = drifted_rows(dataset, n, factor, seed)
    return rows_csv(dataset.feature_names, dataset.dtypes, X, y, dataset.target)


def size_columns(names: list[str]) -> list[int]:
    return [j for j, n in enumerate(names) if any(w in n for w in SIZE_WORDS)]


def drifted_rows(dataset: Dataset, n: int, factor: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, dataset.rows, n)
    X = dataset.X[idx].astype(np.float64)
    X[:, size_columns(dataset.feature_names)] *= factor
    X *= rng.normal(1.0, 0.03, X.shape)  # measurement noise, so rows are not copies of training rows
    return X, dataset.y[idx]


def labelled_traffic(
    dataset: Dataset,
    served_by: Any,
    version: str,
    n: int,
    factor: float,
    start: float,
    spacing_seconds: float = 60.0,
    seed: int = 7,
    writers: tuple[str, ...] = WRITERS,
) -> list[LabelledRow]:
    """n served predictions (by `served_by`, a fitted classifier) joined to their true labels, sent by `writers` in
    turn."""
    X, y = drifted_rows(dataset, n, factor, seed)
    predictions = served_by.predict(X)
    scores = served_by.predict_proba(X)[:, -1]
    names = dataset.feature_names
    return [
        LabelledRow(
            request_id=f"sim-{seed}-{i}",
            row=0,
            at=start + i * spacing_seconds,
            variant="A",
            model_version=version,
            prediction=predictions[i],
            score=float(scores[i]),
            actual=y[i],
            feedback_at=start + i * spacing_seconds + 30,
            features=dict(zip(names, X[i].tolist(), strict=True)),
            writer=writers[i % len(writers)] if writers else None,
        )
        for i in range(n)
    ]
