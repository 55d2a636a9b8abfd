"""Bring your own model: register any fitted scikit-learn estimator or Pipeline, with a sample of its input, as a
version the predict API, batch scoring, the canary and retraining handle like a model `modelops train` made.

    import modelops
    modelops.register(pipeline, X_sample, y_sample, name="churn", alias="champion")

What it follows:
  * MLflow's log_model(signature=infer_signature(X, ...), input_example=X[:n]): the input schema is inferred from
    the sample itself (column order and names, a type per column from the DataFrame's dtypes; a column with missing
    values is optional, here "nullable"), and an input example is stored as JSON the scoring server accepts (here
    golden.json, with NaN as null and numpy/pandas scalars as plain JSON values). Like MLflow, a numpy array has no
    column names of its own: they come from the model's feature_names_in_, else from feature_names=, else x0, x1, ...
    (scikit-learn's own default names).
  * skops' config.json: the ordered input columns, an example input, the task and the library versions the model
    was saved with (here manifest.features, golden.json, manifest.task and manifest.runtime).
  * BentoML's save_model(name, model, metadata=...): a named, versioned model in a store, with metadata (here the
    description). BentoML ships user code with the model (external_modules); here the runtime's layers are fixed, so
    a model that needs a module they lack is refused before anything is written (modelops.model.runtimecheck).

Beyond those: categories come from the fitted model where it says (modelops.model.signature), min/max and nullability
from the sample, baseline drift bins from the sample, predictions for the golden set from the estimator itself, and
held-out metrics (modelops.model.training.evaluate) when y is given: pass rows the model was not fitted on for honest
figures. With y, the sample is also kept with the version (training.csv, the CSV modelops.model.dataset.read_csv reads
back with the recorded dtypes, so retraining needs no pandas for array models) and its location and sha256 are
recorded, so that a retrain refits sklearn.base.clone(model) on it plus recent labels (refit()).
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import env as settings
from ..core.errors import ModelOpsError
from ..core.names import check_model_name
from ..model import signature, trusted
from ..model.artifact import (
    CLASSIFICATION,
    REGRESSION,
    TRAINING_DATA_FILE,
    LoadedModel,
    Manifest,
    runtime_versions,
    sha256_bytes,
    write_artifact,
)
from ..model.baseline import baseline_for, numeric_baseline
from ..model.schema import NUMBER
from ..model.versioning import new_version, utc_now_iso

if TYPE_CHECKING:
    from ..model.dataset import Dataset
    from ..model.training import TrainedModel
    from . import Registry

IMPORTED = "imported"  # recipe["source"] of a registered model: retrain refits a clone instead of training anew
GOLDEN_ROWS = 20
GOLDEN_TOLERANCE = 1e-6


@dataclass
class Sample:
    """A sample of the model's input in the two forms that matter: what the estimator is called with (model_X), and
    the rows as the predict API hands them over (matrix)."""

    names: list[str]
    features: list[dict[str, Any]]
    input: dict[str, Any]
    model_X: Any
    matrix: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

    def model_rows(self, index: np.ndarray) -> Any:
        return self.model_X.iloc[index] if signature.is_frame(self.model_X) else self.model_X[index]


def register(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    name: str,
    registry: Registry | str | Path | None = None,
    alias: str | None = None,
    task: str | None = None,
    description: str | None = None,
    feature_names: list[str] | None = None,
    check: bool = True,
    trigger: str = "register",
) -> Manifest:
    """Register a fitted estimator (or Pipeline) with a sample of its input as a new version of model `name`.

    X: a pandas DataFrame (the columns the model was fitted on; others are ignored), or a 2-D array whose column
       names are the model's feature_names_in_, else feature_names, else x0, x1, ...
    y: the sample's targets (optional): held-out metrics, and the data a retrain starts from.
    registry: a Registry, an s3://bucket/prefix URI or a local directory; default $MODELOPS_REGISTRY, else
       modelops.registry.DEFAULT_LOCAL_REGISTRY (a local directory is created when missing).
    alias: point this alias (e.g. "champion") at the new version.
    task: "classification" or "regression"; default: what the estimator is.
    check: first score the golden set in a fresh interpreter that has only the runtime layers' packages
       (modelops.model.runtimecheck) and refuse the model, writing nothing, when that fails; check=False skips it (the
       canary's pre-traffic hook still replays the golden set before any traffic reaches the model).
    Returns the registered Manifest.
    """
    check_name(name)
    check_fitted(estimator)
    task = resolve_task(estimator, task)
    sample = read_sample(estimator, X, feature_names)
    target, labels = read_target(estimator, y, sample, task)
    reg = _open_registry(registry)
    version = new_version()
    training_csv: bytes | None = None
    training_data: dict[str, Any] = {"uri": None, "sha256": None, "rows": sample.rows}
    stored: dict[str, Any] | None = None
    if labels is not None:
        training_csv = training_data_csv(sample, target, labels)
        key = reg.version_key(name, version, TRAINING_DATA_FILE)
        digest = sha256_bytes(training_csv)
        stored = {"version": version, "file": TRAINING_DATA_FILE, "sha256": digest, "rows": sample.rows}
        training_data = {"uri": reg.store.uri(key), "sha256": digest, "rows": sample.rows, "file": TRAINING_DATA_FILE}
    recipe = {
        "source": IMPORTED,
        "task": task,
        "estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "features": sample.names,
        "dtypes": [f["dtype"] for f in sample.features],
        "target": target,
        "training_data": stored,
    }
    manifest, golden = describe(
        estimator,
        sample,
        labels,
        name=name,
        version=version,
        task=task,
        target=target,
        training_data=training_data,
        recipe=recipe,
        description=description or "",
    )
    evaluation, evaluation_rows = evaluation_csv(sample, target, labels) if labels is not None else (None, 0)
    if evaluation is not None:
        manifest.evaluation = trusted.describe(evaluation, evaluation_rows, "sample")
    with tempfile.TemporaryDirectory(prefix="modelops-register-") as tmp:
        write_artifact(tmp, estimator, manifest, golden, evaluation)
        if training_csv is not None:
            (Path(tmp) / TRAINING_DATA_FILE).write_bytes(training_csv)
        if check:
            from ..model.runtimecheck import check_serves

            check_serves(tmp, f"model {name}")
        reg.register(tmp)
    if alias:
        reg.set_alias(name, alias, manifest.version, reason=f"registered with alias {alias}", trigger=trigger)
    return manifest


# ---- checks ------------------------------------------------------------------------------------------------------------
def check_name(name: Any) -> None:
    check_model_name(name)  # the one rule for model names (modelops.core.names)


def check_fitted(estimator: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict"):
        raise ModelOpsError(f"{type(estimator).__name__} is not a scikit-learn estimator (it has no predict method)")
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise ModelOpsError(f"the {type(estimator).__name__} is not fitted: fit it before registering it") from None
    except TypeError as exc:
        raise ModelOpsError(f"{type(estimator).__name__} is not a scikit-learn estimator: {exc}") from None


def resolve_task(estimator: Any, task: str | None) -> str:
    from sklearn.base import is_classifier, is_regressor

    if task is None:
        if is_classifier(estimator):
            task = CLASSIFICATION
        elif is_regressor(estimator):
            task = REGRESSION
        else:
            raise ModelOpsError(
                f"cannot tell whether the {type(estimator).__name__} is a classifier or a regressor: pass task="
            )
    if task not in (CLASSIFICATION, REGRESSION):
        raise ModelOpsError(f"unknown task '{task}' (choose classification or regression)")
    if task == CLASSIFICATION and not (hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")):
        raise ModelOpsError(
            f"the {type(estimator).__name__} has no predict_proba and classes_: the predict API answers "
            "class probabilities, so a classifier needs both"
        )
    return task


# ---- the sample ----------------------------------------------------------------------------------------------------------
def read_sample(estimator: Any, X: Any, feature_names: list[str] | None = None) -> Sample:
    """The sample as the model takes it. The model was fitted on a DataFrame when it has string feature_names_in_;
    on an array when it has n_features_in_ without them; when it has neither (a first step that records nothing,
    such as a user's own transformer), it takes what X is."""
    fitted = signature.fitted_columns(estimator)
    expected = getattr(estimator, "n_features_in_", None)
    if fitted is not None and feature_names is not None and list(feature_names) != fitted:
        raise ModelOpsError("feature_names differ from the columns the model was fitted on (its feature_names_in_)")
    if signature.is_frame(X):
        frame = X
    elif fitted is not None:  # an array for a DataFrame-fitted model: rebuild the frame with the fitted names
        frame = array_to_frame(estimator, _as_2d(X), fitted)
    else:
        frame = None
    if frame is not None:
        names = fitted if fitted is not None else [str(c) for c in frame.columns]
        takes_frame = fitted is not None or expected is None
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ModelOpsError(f"X has no column '{missing[0]}', which the model was fitted on")
        _check_names(names)
        if len(frame) < 2:
            raise ModelOpsError(f"X has {len(frame)} rows: a sample needs at least 2")
        categories, _ = signature.fitted_categories(estimator)
        features = signature.features_from_frame(frame, names, categories)
        if not takes_frame:  # fitted on an array: the DataFrame only named its columns
            features = [{k: v for k, v in f.items() if k != "pandas_dtype"} for f in features]
        matrix = signature.to_matrix(frame, features)
        spec = {"kind": signature.DATAFRAME, "columns": names} if takes_frame else {}
        model_X = frame[names] if takes_frame else matrix
    else:
        array = _as_2d(X)
        width = array.shape[1]
        names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(width)]
        if len(names) != width:
            raise ModelOpsError(f"feature_names has {len(names)} names for {width} columns")
        _check_names(names)
        if len(array) < 2:
            raise ModelOpsError(f"X has {len(array)} rows: a sample needs at least 2")
        features = signature.features_from_array(array, names)
        matrix = signature.to_matrix(array, features)
        spec, model_X = {}, matrix
    if expected is not None and int(expected) != len(names):
        raise ModelOpsError(f"the model was fitted on {expected} features, X has {len(names)}")
    return Sample(names, features, spec, model_X, matrix)


def array_to_frame(estimator: Any, array: np.ndarray, names: list[str]) -> Any:
    pd = signature.pandas()
    if array.shape[1] != len(names):
        raise ModelOpsError(f"the model was fitted on {len(names)} columns, X has {array.shape[1]}")
    frame = pd.DataFrame({n: array[:, j] for j, n in enumerate(names)})
    for n in names:
        if frame[n].dtype == object:
            with contextlib.suppress(ValueError, TypeError):
                frame[n] = pd.to_numeric(frame[n])
    return apply_fitted_dtypes(frame, estimator)


def apply_fitted_dtypes(frame: Any, estimator: Any) -> Any:
    """Give the columns the dtypes the fitted model expects where it says: category columns (with the fitted
    categories first) for HistGradientBoosting's categorical_features="from_dtype"."""
    pd = signature.pandas()
    categories, as_dtype = signature.fitted_categories(estimator)
    frame = frame.copy()
    for name in as_dtype:
        if name not in frame.columns or isinstance(frame[name].dtype, pd.CategoricalDtype):
            continue
        fitted = [str(c) for c in categories.get(name, [])]
        values = [None if signature.is_missing(v) else str(v) for v in frame[name]]
        extra = sorted({v for v in values if v is not None} - set(fitted))
        frame[name] = pd.Categorical(values, categories=fitted + extra)
    return frame


def read_target(estimator: Any, y: Any, sample: Sample, task: str) -> tuple[str, np.ndarray | None]:
    if y is None:
        return "", None
    target = getattr(y, "name", None)
    if not isinstance(target, str) or not target or target in sample.names:  # a Series derived from a feature
        target = "target"
    while target in sample.names:
        target += "_"
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
    if values.ndim != 1:
        raise ModelOpsError("y must be one column of targets")
    if len(values) != sample.rows:
        raise ModelOpsError(f"y has {len(values)} values for {sample.rows} rows of X")
    if any(signature.is_missing(v) for v in values):
        raise ModelOpsError("y has missing values")
    if task == REGRESSION:
        try:
            return target, values.astype(np.float64)
        except (TypeError, ValueError):
            raise ModelOpsError("y is not numeric, so it cannot be a regression target") from None
    return target, as_classes(values, list(estimator.classes_), "y")


def as_classes(values: np.ndarray, classes: list[Any], what: str) -> np.ndarray:
    """Labels typed like the model's classes ('1' in a CSV is class 1)."""
    classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    lookup = {str(c): c for c in classes}
    unknown = sorted({str(v) for v in values} - set(lookup))
    if unknown:
        raise ModelOpsError(f"{what} has classes the model does not know: {', '.join(unknown[:5])}")
    typed = [lookup[str(v)] for v in values]
    return np.asarray(typed, dtype=object if any(isinstance(c, str) for c in classes) else None)


def _as_2d(X: Any) -> np.ndarray:
    array = np.asarray(X)
    if array.ndim != 2:
        raise ModelOpsError(f"X must be a table (2 dimensions), not {array.ndim}")
    return array


def _check_names(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ModelOpsError("X has a repeated column name")
    for n in names:
        if not n or n != n.strip() or "\n" in n:
            raise ModelOpsError(f"column name {n!r} cannot travel in a CSV header: no leading or trailing spaces")


# ---- manifest + golden set -----------------------------------------------------------------------------------------
def describe(
    estimator: Any,
    sample: Sample,
    labels: np.ndarray | None,
    *,
    name: str,
    version: str,
    task: str,
    target: str,
    training_data: dict[str, Any],
    recipe: dict[str, Any],
    description: str,
) -> tuple[Manifest, dict[str, Any]]:
    from ..model import training

    scores = _score(estimator, task, sample.model_X)  # first, so a model that cannot score X fails in one line
    try:
        metrics = training.evaluate(task, estimator, sample.model_X, labels) if labels is not None else {}
    except (ValueError, TypeError) as exc:
        raise ModelOpsError(f"cannot compute the model's metrics on the sample: {exc}") from None
    baseline = {f["name"]: baseline_for(sample.matrix[:, j], f["dtype"]) for j, f in enumerate(sample.features)}
    baseline["__prediction__"] = numeric_baseline(
        scores[:, -1] if task == CLASSIFICATION else np.asarray(scores, dtype=np.float64)
    )
    runtime = runtime_versions()
    if signature.is_dataframe_input(sample.input):
        from importlib.metadata import version as installed

        runtime["pandas"] = installed("pandas")
    manifest = Manifest(
        name=name,
        version=version,
        created_at=utc_now_iso(),
        task=task,
        estimator=_final_step_name(estimator),
        classes=[_json_scalar(c) for c in estimator.classes_] if task == CLASSIFICATION else None,
        features=sample.features,
        target=target,
        metrics=metrics,
        training_data=training_data,
        runtime=runtime,
        baseline=baseline,
        recipe=recipe,
        input=sample.input or None,
        description=description,
    )
    return manifest, golden_set(estimator, sample, task)


def golden_set(estimator: Any, sample: Sample, task: str, rows: int = GOLDEN_ROWS) -> dict[str, Any]:
    """Sample rows with this model's own answers. Rows are spread over the sample, and a missing value of each
    nullable feature is included when the sample has one, so the canary replays nulls too."""
    index = golden_rows(sample, rows)
    matrix = sample.matrix[index]
    model_rows = sample.model_rows(index)
    predictions = [_json_scalar(p) for p in estimator.predict(model_rows)]
    golden: dict[str, Any] = {
        "instances": signature.instances(matrix, sample.features),
        "predictions": predictions,
        "tolerance": GOLDEN_TOLERANCE,
    }
    if task == CLASSIFICATION:
        golden["probabilities"] = np.asarray(estimator.predict_proba(model_rows), dtype=np.float64).tolist()
    _check_rebuilt(estimator, sample, matrix, golden, task)
    return golden


def golden_rows(sample: Sample, rows: int) -> np.ndarray:
    usable = np.flatnonzero(signature.acceptable_rows(sample.matrix, sample.features))
    if usable.size == 0:
        raise ModelOpsError("no row of X can be sent to the predict API (infinite numbers or over-long strings)")
    chosen = list(usable[np.unique(np.linspace(0, usable.size - 1, min(rows, usable.size)).round().astype(int))])
    for j, f in enumerate(sample.features):
        column = sample.matrix[chosen, j]
        if f["nullable"] and not any(signature.is_missing(v) for v in column):
            with_null = [i for i in usable if signature.is_missing(sample.matrix[i, j])]
            if with_null:
                chosen.append(with_null[0])
    return np.asarray(sorted(set(chosen)), dtype=np.int64)


def _check_rebuilt(estimator: Any, sample: Sample, matrix: np.ndarray, golden: dict[str, Any], task: str) -> None:
    """The golden rows, rebuilt from their JSON form the way the runtime rebuilds requests, must get the same answers:
    otherwise the schema misses something the model depends on."""
    rebuilt = signature.model_input(sample.features, sample.input, matrix)
    try:
        again = [_json_scalar(p) for p in estimator.predict(rebuilt)]
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelOpsError(f"the model cannot score its golden rows once they are rebuilt from JSON: {exc}") from None
    for i, (before, after) in enumerate(zip(golden["predictions"], again, strict=True)):
        same = before == after or (
            isinstance(before, float) and isinstance(after, float) and abs(before - after) <= GOLDEN_TOLERANCE
        )
        if not same:
            raise ModelOpsError(
                f"the model answers {after!r} instead of {before!r} for row {i} of the golden set once the row is "
                "rebuilt from JSON: a column's dtype or values cannot be reproduced from the inferred schema"
            )
    if task == CLASSIFICATION:
        proba = np.asarray(estimator.predict_proba(rebuilt), dtype=np.float64)
        if not np.allclose(proba, golden["probabilities"], rtol=0, atol=GOLDEN_TOLERANCE):
            raise ModelOpsError(
                "the model's probabilities change once the golden rows are rebuilt from JSON: a column's dtype or "
                "values cannot be reproduced from the inferred schema"
            )


def _score(estimator: Any, task: str, X: Any) -> np.ndarray:
    try:
        return np.asarray(estimator.predict_proba(X) if task == CLASSIFICATION else estimator.predict(X))
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelOpsError(f"the model cannot score X: {exc}") from None


def _final_step_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if isinstance(steps, list) and steps else estimator
    return type(final).__name__


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ---- training data --------------------------------------------------------------------------------------------------
def training_data_csv(sample: Sample, target: str, labels: np.ndarray) -> bytes:
    """The sample and its targets as a CSV modelops.model.dataset.read_csv reads back with the recorded dtypes: numbers
    written exactly (repr), booleans as 0/1, a missing value as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*sample.names, target])
    numeric = [f["dtype"] == NUMBER for f in sample.features]
    for row, label in zip(sample.matrix, labels, strict=True):
        cells = []
        for value, is_number in zip(row, numeric, strict=True):
            if signature.is_missing(value):
                cells.append("")
            elif is_number:
                number = float(value)
                cells.append(str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number))
            else:
                cells.append(str(value))
        label = _json_scalar(label)
        cells.append(repr(float(label)) if isinstance(label, float) else str(label))
        writer.writerow(cells)
    return out.getvalue().encode()


def evaluation_csv(sample: Sample, target: str, labels: np.ndarray) -> tuple[bytes | None, int]:
    """Every IMPORT_EVERY-th sample row with its label: the trusted evaluation set of an imported model. A retrain
    leaves these rows out of what the candidate is fitted on. None when the sample is too small to spare them."""
    index = np.arange(trusted.IMPORT_EVERY - 1, sample.rows, trusted.IMPORT_EVERY)
    if not len(index):
        return None, 0
    dtypes = [f["dtype"] for f in sample.features]
    body = trusted.rows_csv(sample.names, dtypes, sample.matrix[index], np.asarray(labels)[index], target)
    return body, len(index)


def is_imported(manifest: Manifest) -> bool:
    return manifest.recipe.get("source") == IMPORTED


def refit(champion: LoadedModel, data: Dataset, name: str) -> TrainedModel:
    """A retrain candidate for an imported model: sklearn.base.clone of the champion fitted on `data` (the recorded
    training sample plus recent labels), described like the champion (same recipe, schema inferred again)."""
    from sklearn.base import clone

    from ..model.training import TrainedModel

    m = champion.manifest
    X = signature.model_input(m.features, m.input, data.X)
    labels = (
        as_classes(np.asarray(data.y, dtype=object), list(m.classes or []), "the training data")
        if m.task == CLASSIFICATION
        else np.asarray(data.y, dtype=np.float64)
    )
    try:
        estimator = clone(champion.estimator).fit(X, labels)
    except (ValueError, TypeError) as exc:
        raise ModelOpsError(f"refitting a clone of {m.name}/{m.version} failed: {exc}") from None
    if signature.is_frame(X):
        sample = read_sample(estimator, X)
    else:
        features = signature.features_from_array(data.X, list(data.feature_names), list(data.dtypes))
        matrix = signature.to_matrix(data.X, features)
        sample = Sample(list(data.feature_names), features, {}, matrix, matrix)
    recipe = dict(m.recipe)
    manifest, golden = describe(
        estimator,
        sample,
        labels,
        name=name,
        version=new_version(),
        task=m.task,
        target=m.target,
        training_data={"uri": data.source, "sha256": data.sha256, "rows": data.rows},
        recipe=recipe,
        description=m.description,
    )
    return TrainedModel(estimator, manifest, golden)


def _open_registry(registry: Registry | str | Path | None) -> Registry:
    from ..adapters.objectstore import LocalObjectStore
    from . import Registry, require_registry

    if isinstance(registry, Registry):
        reg = registry
    else:
        reg = require_registry(str(registry) if registry else settings.text("MODELOPS_REGISTRY") or None)
    if isinstance(reg.store, LocalObjectStore):
        reg.store.root.mkdir(parents=True, exist_ok=True)
    return reg
