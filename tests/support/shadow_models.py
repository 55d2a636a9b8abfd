"""A candidate model that differs from its base on known rows: the shadow tests' champion and candidate.

data(n)            four independent uniform features f0..f3 and a label "yes" when f0 + f1 > 1
champion(X, y)     a scaler + logistic regression pipeline
FlipAbove          the base model with its two class probabilities swapped on rows where one feature is above
                   a threshold: it disagrees with the base exactly there
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

FEATURES = ["f0", "f1", "f2", "f3"]


def data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, len(FEATURES)))
    y = np.where(X[:, 0] + X[:, 1] > 1, "yes", "no")
    return X, y


def champion(X: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


class FlipAbove(ClassifierMixin, BaseEstimator):
    def __init__(self, base: Any = None, feature: int = 0, threshold: float = 0.5):
        self.base = base
        self.feature = feature
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> FlipAbove:
        self.classes_ = self.base.classes_
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = np.array(self.base.predict_proba(X), dtype=np.float64)
        flip = np.asarray(X, dtype=np.float64)[:, self.feature] > self.threshold
        proba[flip] = proba[flip][:, ::-1]
        return proba

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def register_pair(registry: Any, name: str) -> tuple[str, str, float]:
    """(champion version, candidate version, threshold): the candidate flips the champion where f2 > threshold, a
    bin edge of f2's baseline, so f2's bins split the agreeing rows from the disagreeing ones."""
    from modelops import register

    X, y = data()
    base = champion(X, y)
    first = register(base, X, y, name=name, registry=registry, alias="champion", feature_names=FEATURES, check=False)
    threshold = first.baseline["f2"]["edges"][6]
    flip = FlipAbove(base, feature=2, threshold=threshold).fit(X, y)
    second = register(flip, X, y, name=name, registry=registry, feature_names=FEATURES, check=False)
    return first.version, second.version, threshold


class ShiftAbove(RegressorMixin, BaseEstimator):
    def __init__(self, base: Any = None, feature: int = 0, threshold: float = 0.5, shift: float = 1.0):
        self.base = base
        self.feature = feature
        self.threshold = threshold
        self.shift = shift

    def fit(self, X: Any, y: Any = None) -> ShiftAbove:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        above = np.asarray(X, dtype=np.float64)[:, self.feature] > self.threshold
        return np.asarray(self.base.predict(X), dtype=np.float64) + np.where(above, self.shift, 0.0)
