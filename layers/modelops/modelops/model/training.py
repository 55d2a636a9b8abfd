"""Training: build a pipeline for a dataset, fit it, evaluate on a held-out split, and describe it
in a manifest (schema, metrics, baseline bins, golden requests, recipe). Seeded and deterministic."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ModelOpsError
from ..core.names import check_model_name
from .artifact import CLASSIFICATION, REGRESSION, Manifest, runtime_versions
from .baseline import baseline_for, numeric_baseline
from .dataset import Dataset, coerce_target, infer_task
from .schema import NUMBER, Feature, FeatureSchema
from .versioning import new_version, utc_now_iso

ESTIMATORS = {
    CLASSIFICATION: ("logistic", "hgb", "random_forest"),
    REGRESSION: ("ridge", "hgb", "random_forest"),
}
DEFAULT_ESTIMATOR = {CLASSIFICATION: "logistic", REGRESSION: "ridge"}
GOLDEN_ROWS = 20
SEED = 42
TEST_SIZE = 0.2


@dataclass
class TrainedModel:
    estimator: Any
    manifest: Manifest
    golden: dict[str, Any]
    evaluation: bytes | None = None  # evaluation.csv: the held-out split, the trusted set (modelops.model.trusted)


def make_estimator(task: str, kind: str, seed: int) -> Any:
    from sklearn import ensemble, linear_model

    if kind not in ESTIMATORS[task]:
        raise ModelOpsError(
            f"estimator '{kind}' is not available for {task} (choose from {', '.join(ESTIMATORS[task])})"
        )
    if task == CLASSIFICATION:
        return {
            "logistic": lambda: linear_model.LogisticRegression(max_iter=2000),
            "hgb": lambda: ensemble.HistGradientBoostingClassifier(random_state=seed),
            "random_forest": lambda: ensemble.RandomForestClassifier(n_estimators=100, random_state=seed),
        }[kind]()
    return {
        "ridge": lambda: linear_model.Ridge(alpha=1.0),
        "hgb": lambda: ensemble.HistGradientBoostingRegressor(random_state=seed),
        "random_forest": lambda: ensemble.RandomForestRegressor(n_estimators=100, random_state=seed),
    }[kind]()


def make_pipeline(dtypes: list[str], task: str, kind: str, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = make_estimator(task, kind, seed)
    numeric = [i for i, d in enumerate(dtypes) if d == NUMBER]
    categorical = [i for i, d in enumerate(dtypes) if d != NUMBER]
    if not categorical:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if kind in ("logistic", "ridge"):
            steps.append(("scale", StandardScaler()))
        return Pipeline([*steps, ("model", model)])
    transformers: list[tuple[str, Any, list[int]]] = []
    if numeric:
        transformers.append(
            (
                "num",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            )
        )
    transformers.append(
        (
            "cat",
            Pipeline(
                [
                    ("impute", SimpleImputer(strategy="most_frequent", missing_values=np.nan)),
                    ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                ]
            ),
            categorical,
        )
    )
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("model", model)])


def feature_schema(dataset: Dataset, X_train: np.ndarray) -> FeatureSchema:
    features = []
    for j, (name, dtype) in enumerate(zip(dataset.feature_names, dataset.dtypes, strict=True)):
        column = X_train[:, j]
        nullable = bool(any(v is None or v != v for v in column))
        if dtype == NUMBER:
            values = column.astype(np.float64)
            finite = values[np.isfinite(values)]
            features.append(
                Feature(
                    name,
                    NUMBER,
                    float(finite.min()) if finite.size else None,
                    float(finite.max()) if finite.size else None,
                    nullable=nullable,
                )
            )
        else:
            allowed = tuple(sorted({str(v) for v in column if isinstance(v, str)}))
            features.append(Feature(name, dtype, allowed=allowed, nullable=nullable))
    return FeatureSchema(tuple(features))


def evaluate(task: str, estimator: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn import metrics

    if task == REGRESSION:
        pred = estimator.predict(X)
        out = {
            "mae": float(metrics.mean_absolute_error(y, pred)),
            "rmse": float(math.sqrt(metrics.mean_squared_error(y, pred))),
            "rows": int(len(y)),
        }
        if len(y) >= 2:  # R² is undefined for a single row (NaN would not be valid JSON)
            out["r2"] = float(metrics.r2_score(y, pred))
        return out
    pred = estimator.predict(X)
    proba = estimator.predict_proba(X)
    classes = list(estimator.classes_)
    out = {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "f1_macro": float(metrics.f1_score(y, pred, average="macro")),
        "log_loss": float(metrics.log_loss(y, proba, labels=classes)),
        "rows": int(len(y)),
    }
    present = set(np.unique(y).tolist())
    if len(classes) == 2 and len(present) == 2:
        out["roc_auc"] = float(metrics.roc_auc_score(y == classes[1], proba[:, 1]))
    elif len(present) == len(classes) > 2:
        out["roc_auc"] = float(metrics.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    return out


def _json_value(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def golden_set(task: str, estimator: Any, names: list[str], X: np.ndarray, rows: int = GOLDEN_ROWS) -> dict[str, Any]:
    """Held-out rows with the predictions this exact model gives; the pre-traffic hook replays them."""
    X = X[:rows]
    instances = [{n: _json_value(v) for n, v in zip(names, row, strict=True)} for row in X]
    out: dict[str, Any] = {
        "instances": instances,
        "predictions": [_json_value(p) for p in estimator.predict(X)],
        "tolerance": 1e-6,
    }
    if task == CLASSIFICATION:
        out["probabilities"] = estimator.predict_proba(X).tolist()
    return out


def train(
    dataset: Dataset,
    name: str,
    task: str | None = None,
    estimator_kind: str | None = None,
    seed: int = SEED,
    test_size: float = TEST_SIZE,
    progress: Any = None,
) -> TrainedModel:
    from sklearn.model_selection import train_test_split

    check_model_name(name)
    task = task or infer_task(dataset.y)
    if task not in ESTIMATORS:
        raise ModelOpsError(f"unknown task '{task}' (choose classification or regression)")
    kind = estimator_kind or DEFAULT_ESTIMATOR[task]
    y = coerce_target(dataset, task)
    if task == CLASSIFICATION:
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ModelOpsError(f"target '{dataset.target}' has a single class: classification needs at least two")
        if counts.min() < 2:
            # a class seen once cannot be both trained on and tested
            rare = classes[int(np.argmin(counts))]
            raise ModelOpsError(
                f"target '{dataset.target}': class '{rare}' has only {counts.min()} row; "
                "every class needs at least 2 rows (one to train on, one to test)"
            )
    stratify = y if task == CLASSIFICATION else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            dataset.X, y, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelOpsError(f"cannot split {dataset.rows} rows into train and test: {first}") from None
    _step(progress, "fit")
    estimator = make_pipeline(dataset.dtypes, task, kind, seed)
    try:
        estimator.fit(X_train, y_train)
        _step(progress, "evaluate")
        metrics = evaluate(task, estimator, X_test, y_test)
    except ValueError as exc:  # scikit-learn's own checks (too few rows, and the like)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelOpsError(f"cannot train {kind} on {dataset.rows} rows: {first}") from None
    schema = feature_schema(dataset, X_train)
    baseline = {
        n: baseline_for(X_train[:, j], d)
        for j, (n, d) in enumerate(zip(dataset.feature_names, dataset.dtypes, strict=True))
    }
    if task == CLASSIFICATION:
        proba = estimator.predict_proba(X_train)
        baseline["__prediction__"] = numeric_baseline(proba[:, -1])
    else:
        baseline["__prediction__"] = numeric_baseline(estimator.predict(X_train))
    manifest = Manifest(
        name=name,
        version=new_version(),
        created_at=utc_now_iso(),
        task=task,
        estimator=type(estimator.steps[-1][1]).__name__,
        classes=[_json_value(c) for c in estimator.classes_] if task == CLASSIFICATION else None,
        features=schema.to_list(),
        target=dataset.target,
        metrics=metrics,
        training_data={"uri": dataset.source, "sha256": dataset.sha256, "rows": dataset.rows},
        runtime=runtime_versions(),
        baseline=baseline,
        recipe={
            "estimator": kind,
            "task": task,
            "seed": seed,
            "test_size": test_size,
            "features": dataset.feature_names,
            "dtypes": dataset.dtypes,
            "target": dataset.target,
            **({"missing_values": list(dataset.missing)} if dataset.missing else {}),
        },
    )
    _step(progress, "golden")
    golden = golden_set(task, estimator, dataset.feature_names, X_test)
    from . import trusted

    evaluation = trusted.rows_csv(dataset.feature_names, dataset.dtypes, X_test, y_test, dataset.target)
    manifest.evaluation = trusted.describe(evaluation, len(y_test), "holdout")
    return TrainedModel(estimator, manifest, golden, evaluation)


def _step(progress: Any, label: str) -> None:
    if progress is not None:
        progress(label)
