"""Calling a model on validated rows: one code path for the predict function and for batch scoring.

The model gets the input it was fitted on (modelops.model.frames). When it fails, who is at fault decides the
answer. Rows that match the schema and lie within the training data (every number inside its training
range, every category seen) are rows the model must score: a failure on them is a server-side fault
(ModelFault: 500 online, a failed batch run), never a client error. A row with a value the model never saw
may be refused: those rows are isolated and refused one by one with the model's own reason (400 online,
rejected.csv in batch), and the rest are scored. Non-finite outputs count as failures of their rows.

The rows have passed the feature schema (modelops.model.schema) before they get here: every value has its
feature's type, only a nullable feature can be NaN, nothing is infinite. So, when no row carries a NaN,
the model is called with scikit-learn's own input checks off (`assume_finite`: no finiteness scan per
pipeline step) and, for a numpy model, without its leading imputers (which change nothing in complete rows,
see without_idle_imputers); parameter validation is skipped always (the fitted model's parameters were
validated when it was fitted). A pipeline is called step by step, as Pipeline.predict_proba / predict do
without metadata, minus their per-call fitted check (see PipelineCall); on complete float rows its StandardScaler,
LogisticRegression and HistGradientBoostingClassifier steps are called without scikit-learn's input validation, through kernels checked at
load to give the steps' own bytes (modelops.model.step_kernels). The outputs are the same bytes
either way; only the time differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ModelFault
from .frames import DATAFRAME, input_spec, model_input
from .schema import FeatureSchema
from .step_kernels import Kernel, final_kernel, loaded_class, transform_kernel, verified

REJECTED_BY_MODEL = "rejected_by_model"
OUT_OF_RANGE = "out_of_range"
TOO_EXTREME = "values too extreme for the model to score"


@dataclass(frozen=True)
class Refusal:
    """One row the model refused. `reason` carries no location; each path prefixes its own."""

    row: int
    code: str
    feature: str | None
    reason: str


@dataclass
class Outcome:
    outputs: np.ndarray  # predict_proba rows (classifiers) or predictions, of the kept rows
    refused: list[Refusal]
    kept: np.ndarray | None = None  # boolean mask of the scored rows; None = all of them


class ModelRunner:
    def __init__(
        self,
        estimator: Any,
        schema: FeatureSchema,
        manifest_input: Mapping[str, Any] | None,
        proba: bool,
        *,
        fast: bool = True,
    ):
        from sklearn import config_context  # the model is loaded, so scikit-learn is already imported

        self.estimator = estimator
        self.schema = schema
        self.proba = proba
        self.spec = input_spec(manifest_input, estimator, schema)
        self.to_input = model_input(self.spec, schema)
        self.fast = fast  # False: every call is the model's plain predict_proba / predict
        self._config = config_context
        self._nullable = [j for j, f in enumerate(schema.features) if f.nullable]
        # a DataFrame model's imputers see named columns: nothing is skipped there
        self._complete_rows_estimator = None if self.takes_dataframe else without_idle_imputers(estimator)
        self._any_rows_call = PipelineCall.of(estimator, proba)
        self._complete_rows_call = PipelineCall.of(self._complete_rows_estimator or estimator, proba)
        if self._complete_rows_call is not None and self.to_input is None and schema.all_numeric:
            self._complete_rows_call.use_kernels(_probe_rows(schema))

    @property
    def takes_dataframe(self) -> bool:
        return self.spec["kind"] == DATAFRAME

    def raw(self, matrix: np.ndarray, estimator: Any = None) -> np.ndarray:
        """The model's outputs for schema-checked rows. Given another `estimator`, that one is called as it
        is, under the caller's scikit-learn configuration; else the runner's model, by the fast path when the
        rows are complete (no NaN)."""
        if not self.fast or (estimator is not None and estimator is not self.estimator):
            return self._call(self.estimator if estimator is None else estimator, matrix)
        if not self._complete(matrix):
            with self._config(skip_parameter_validation=True):
                return self._call(self.estimator, matrix, self._any_rows_call)
        model = self._complete_rows_estimator if self._complete_rows_estimator is not None else self.estimator
        with self._config(assume_finite=True, skip_parameter_validation=True):
            return self._call(model, matrix, self._complete_rows_call)

    def _call(self, model: Any, matrix: np.ndarray, steps: PipelineCall | None = None) -> np.ndarray:
        X = self.to_input(matrix) if self.to_input is not None else matrix
        if steps is not None:
            return steps(X)
        return model.predict_proba(X) if self.proba else np.asarray(model.predict(X))

    def _complete(self, matrix: np.ndarray) -> bool:
        """No NaN in the rows. The schema lets NaN into nullable features only, so only they are looked at
        in text-and-number rows; a float matrix is scanned whole (one vectorised pass)."""
        if matrix.dtype.kind == "f":
            return not np.isnan(matrix).any()
        if not self._nullable:
            return True
        return not any(v != v for v in matrix[:, self._nullable].ravel().tolist())  # NaN is the value unequal to itself

    def run(
        self,
        matrix: np.ndarray,
        warnings: Sequence[Sequence[Mapping[str, str]]] | None,
        estimator: Any = None,
    ) -> Outcome:
        try:
            outputs = self.raw(matrix, estimator)
        except Exception as exc:  # isolated below; the happy path pays nothing
            return self._after_failure(matrix, warnings, exc, estimator)
        bad = _non_finite_rows(outputs)
        if bad is None:
            return Outcome(outputs, [])
        flagged = _flagged(warnings, len(matrix))
        if (bad & ~flagged).any():
            row = int(np.flatnonzero(bad & ~flagged)[0])
            raise ModelFault(
                f"the model returned NaN or infinite values for row {row}, which matches its training data"
            )
        refused = [Refusal(r, OUT_OF_RANGE, None, TOO_EXTREME) for r in np.flatnonzero(bad).tolist()]
        return Outcome(outputs[~bad], refused, ~bad)

    def _after_failure(
        self,
        matrix: np.ndarray,
        warnings: Sequence[Sequence[Mapping[str, str]]] | None,
        failure: Exception,
        estimator: Any,
    ) -> Outcome:
        flagged = _flagged(warnings, len(matrix))
        if not flagged.any():
            raise _fault(failure)
        clean = np.flatnonzero(~flagged)
        if clean.size:
            try:
                clean_outputs = self.raw(matrix[clean], estimator)
            except Exception as exc:
                raise _fault(exc) from exc
            if _non_finite_rows(clean_outputs) is not None:
                raise ModelFault("the model returned NaN or infinite values for rows that match its training data")
        refused = self._isolate(matrix, np.flatnonzero(flagged), warnings, estimator)
        if not refused:  # flagged rows pass alone but not together with the rest
            raise _fault(failure)
        kept = np.ones(len(matrix), dtype=bool)
        kept[[r.row for r in refused]] = False
        try:
            outputs = self.raw(matrix[kept], estimator) if kept.any() else _empty(self.proba)
        except Exception as exc:
            raise _fault(exc) from exc
        return Outcome(outputs, refused, kept)

    def _isolate(
        self,
        matrix: np.ndarray,
        rows: np.ndarray,
        warnings: Sequence[Sequence[Mapping[str, str]]] | None,
        estimator: Any,
    ) -> list[Refusal]:
        """The rows among `rows` that fail, by halving; each refused row is scored alone for its reason."""
        try:
            outputs = self.raw(matrix[rows], estimator)
            failure: Exception | None = None
        except Exception as exc:
            outputs, failure = None, exc
        if failure is None and _non_finite_rows(outputs) is None:  # type: ignore[arg-type]
            return []
        if len(rows) > 1:
            half = len(rows) // 2
            return self._isolate(matrix, rows[:half], warnings, estimator) + self._isolate(
                matrix, rows[half:], warnings, estimator
            )
        row = int(rows[0])
        if failure is None:
            return [Refusal(row, OUT_OF_RANGE, None, TOO_EXTREME)]
        first = (warnings or [[]] * (row + 1))[row][0]
        reason = f"the model cannot score this value ({first['message']}): {type(failure).__name__}: {failure}"
        return [Refusal(row, REJECTED_BY_MODEL, first["feature"], reason)]


class PipelineCall:
    """A fitted Pipeline's predict_proba (or predict), step by step: each transformer's transform in order,
    then the final step's method, which is what Pipeline does when no metadata is routed. What it leaves out
    is Pipeline's check_is_fitted on every call (a copy of the estimator tags per request); the model was
    loaded fitted and its golden rows were scored at load."""

    def __init__(self, transforms: list[Any], final: Any, proba: bool):
        self.transforms = transforms
        self.final = final
        self.proba = proba
        self.width: int | None = None  # set by use_kernels
        self.kernels: list[Kernel | None] = [None] * len(transforms)
        self.final_kernel: Kernel | None = None

    @classmethod
    def of(cls, estimator: Any, proba: bool) -> PipelineCall | None:
        """The call of a Pipeline of fitted steps that ends in an estimator; any other estimator (a bare
        HistGradientBoostingClassifier saved from a notebook, a Pipeline subclass, which may predict otherwise) is
        the final step of a call with no transforms, so it gets its kernel too. None for a Pipeline without one."""
        if type(estimator) is not loaded_class("sklearn.pipeline", "Pipeline"):
            return cls([], estimator, proba)
        final = estimator.steps[-1][1]
        if final is None or isinstance(final, str):
            return None
        transforms = [step for _, step in estimator.steps[:-1] if step is not None and not isinstance(step, str)]
        return cls(transforms, final, proba)

    def use_kernels(self, probe: np.ndarray) -> None:
        """Call the steps that have a kernel (modelops.model.step_kernels) giving their own output on `probe`, float
        rows of the schema's width, through that kernel whenever the rows are such a float64 matrix."""
        X = probe
        for i, step in enumerate(self.transforms):
            self.kernels[i] = verified(transform_kernel(step), step.transform, X)
            X = step.transform(X)
        if self.proba:
            self.final_kernel = verified(final_kernel(self.final), self.final.predict_proba, X)
        self.width = probe.shape[1]

    def __call__(self, X: Any) -> np.ndarray:
        direct = self.width is not None and type(X) is np.ndarray and X.dtype == np.float64
        direct = direct and X.ndim == 2 and X.shape[1] == self.width
        for step, kernel in zip(self.transforms, self.kernels, strict=True):
            # a method replaced on the step itself (a wrapper, a test's spy) is called as it is
            X = kernel(X) if direct and kernel is not None and "transform" not in vars(step) else step.transform(X)
        final = self.final
        if direct and self.final_kernel is not None and "predict_proba" not in vars(final):
            return self.final_kernel(X)
        # looked up per call, so a method patched on the final step (a test's spy) is the one called
        return final.predict_proba(X) if self.proba else np.asarray(final.predict(X))


def without_idle_imputers(estimator: Any) -> Any | None:
    """The pipeline after its leading imputers that return complete float rows unchanged, or None.

    Such an imputer replaces NaN only, adds no indicator columns and drops no column (every fitted
    statistic is a number); on rows without NaN its output equals its input.
    """
    pipeline = loaded_class("sklearn.pipeline", "Pipeline")
    if pipeline is None or not isinstance(estimator, pipeline):
        return None
    imputer = loaded_class("sklearn.impute", "SimpleImputer")
    if imputer is None:
        return None
    skip = 0
    for _, step in estimator.steps[:-1]:
        statistics = getattr(step, "statistics_", None)
        idle = (
            isinstance(step, imputer)
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


def _probe_rows(schema: FeatureSchema, count: int = 8) -> np.ndarray:
    """Float rows spread over each feature's training range (0 to 1 where none is recorded), both ends included."""
    low = np.array([f.min if f.min is not None else 0.0 for f in schema.features], dtype=np.float64)
    high = np.array([f.max if f.max is not None else 1.0 for f in schema.features], dtype=np.float64)
    spread = np.random.default_rng(0).random((count, len(low)))
    return np.vstack([low, high, low + spread * (high - low)])


def _flagged(warnings: Sequence[Sequence[Any]] | None, rows: int) -> np.ndarray:
    if warnings is None:
        return np.zeros(rows, dtype=bool)
    return np.fromiter((bool(w) for w in warnings), dtype=bool, count=rows)


def _non_finite_rows(outputs: np.ndarray) -> np.ndarray | None:
    """Rows with a NaN or infinite output, or None when every output is finite (or not a float)."""
    if outputs.dtype.kind != "f" or np.isfinite(outputs).all():
        return None
    finite = np.isfinite(outputs)
    return ~(finite.all(axis=1) if finite.ndim == 2 else finite)


def _fault(exc: Exception) -> ModelFault:
    return ModelFault(
        f"the model failed on rows that match its schema and its training data: {type(exc).__name__}: {exc}"
    )


def _empty(proba: bool) -> np.ndarray:
    return np.zeros((0, 0)) if proba else np.zeros(0)
