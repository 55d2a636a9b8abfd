"""Fitted scikit-learn steps called without their per-call input validation, for complete float rows.

A fitted StandardScaler's transform and a LogisticRegression's predict_proba spend most of a 100-row call in
scikit-learn's validate_data (dataframe detection, dtype and shape checks, feature-name checks): checks the
feature schema has already made for rows that reach the model as a float64 matrix of the fitted width. A kernel
here does only the arithmetic, with the same numpy and scipy operations in the same order as scikit-learn
(sklearn/preprocessing/_data.py StandardScaler.transform; sklearn/linear_model/_base.py decision_function and
_predict_proba_lr; sklearn/linear_model/_logistic.py predict_proba; HistGradientBoostingClassifier's
_raw_predict and predict_proba in sklearn/ensemble/_hist_gradient_boosting/gradient_boosting.py), so the outputs
are the same bytes.

Only the exact classes are matched (a subclass may compute differently), and `verified` compares each kernel
with the step's own method on probe rows before it is used; a mismatch (another scikit-learn version computing
differently) leaves the step to scikit-learn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

Kernel = Callable[[np.ndarray], np.ndarray]


def transform_kernel(step: Any) -> Kernel | None:
    """X -> step.transform(X) for a dense-fitted StandardScaler, else None."""
    if type(step) is not loaded_class("sklearn.preprocessing", "StandardScaler") or not getattr(step, "copy", True):
        return None
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None
    if (mean is not None and not _float_vector(mean)) or (scale is not None and not _float_vector(scale)):
        return None

    def transform(X: np.ndarray) -> np.ndarray:
        X = X - mean if mean is not None else X.copy()  # transform works on a copy (copy=True)
        if scale is not None:
            X /= scale
        return X

    return transform


def proba_kernel(step: Any) -> Kernel | None:
    """X -> step.predict_proba(X) for a dense LogisticRegression, else None."""
    if type(step) is not loaded_class("sklearn.linear_model", "LogisticRegression"):
        return None
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    coef, intercept = getattr(step, "coef_", None), getattr(step, "intercept_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim != 2 or coef.dtype != np.float64:
        return None
    if not isinstance(intercept, np.ndarray) or intercept.dtype != np.float64:
        return None
    coef_t = coef.T
    binary = np.size(step.classes_) <= 2

    def predict_proba(X: np.ndarray) -> np.ndarray:
        scores = X @ coef_t + intercept
        if binary:
            prob = scores.reshape((-1,)) if scores.shape[1] == 1 else scores
            prob = expit(prob, out=prob)
            return np.stack([1 - prob, prob], axis=1)
        return softmax(scores, copy=False)

    return predict_proba


def boosting_kernel(step: Any) -> Kernel | None:
    """X -> step.predict_proba(X) for a HistGradientBoostingClassifier fitted without categorical features
    (which would need its own encoder's transform first), else None. Its _raw_predict, _predict_iterations and
    predict_proba minus the validation, and minus _predict_iterations' per-call set-up: the category bitsets are
    built once, and each tree's values go into one reused buffer instead of a new array per tree (at 100 rows
    that set-up was most of the call). These are private functions, so `verified` decides whether this
    scikit-learn still has them."""
    if type(step) is not loaded_class("sklearn.ensemble", "HistGradientBoostingClassifier"):
        return None
    if getattr(step, "_preprocessor", True) is not None:
        return None
    try:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    except ImportError:
        return None

    baseline, predictors = getattr(step, "_baseline_prediction", None), getattr(step, "_predictors", None)
    if not isinstance(baseline, np.ndarray) or predictors is None:
        return None
    width = step.n_trees_per_iteration_
    # _predict_iterations' per-call work done once: the category bitsets, and each tree's arrays
    known_cat_bitsets, f_idx_map = step._bin_mapper.make_known_categories_bitsets()
    trees = [(k, tree.nodes, tree.raw_left_cat_bitsets) for iteration in predictors for k, tree in enumerate(iteration)]

    def predict_proba(X: np.ndarray) -> np.ndarray:
        raw = np.zeros(shape=(X.shape[0], width), dtype=baseline.dtype, order="F")
        raw += baseline
        columns = [raw[:, k] for k in range(width)]
        out = np.empty(X.shape[0], dtype=raw.dtype)  # one tree's values, reused for every tree
        threads = _openmp_effective_n_threads(None)
        for k, nodes, left_cat_bitsets in trees:  # the same additions in the same order as _predict_iterations
            _predict_from_raw_data(nodes, X, left_cat_bitsets, known_cat_bitsets, f_idx_map, threads, out)
            columns[k] += out
        return step._loss.predict_proba(raw)

    return predict_proba


def final_kernel(step: Any) -> Kernel | None:
    """The predict_proba kernel of a final step, if this module has one for its class."""
    return proba_kernel(step) or boosting_kernel(step)


def verified(kernel: Kernel | None, reference: Kernel, probe: np.ndarray) -> Kernel | None:
    """The kernel when it gives the reference's output on the probe rows, bit for bit; else None."""
    if kernel is None:
        return None
    try:
        ours, theirs = kernel(probe.copy()), reference(probe.copy())
    except Exception:
        return None
    if type(theirs) is not np.ndarray:  # e.g. a step set to output DataFrames: the next step gets what it expects
        return None
    same = ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes()
    return kernel if same else None


def loaded_class(module: str, name: str) -> Any:
    """The class, when its module is imported; a step of that class was unpickled, so its module would be
    (nothing is imported for a model that has no such step: that would lengthen its cold start)."""
    return getattr(sys.modules.get(module), name, None)


def _float_vector(values: Any) -> bool:
    return isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype == np.float64
