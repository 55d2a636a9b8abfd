"""Write a model fitted on a pandas DataFrame as a registry artifact, the way a registration step would:
the feature schema (with each column's pandas dtype) and the drift baseline from the DataFrame, the
manifest's `input` naming the fitted columns, golden rows from the frame itself.

    write_frame_artifact(directory, estimator, X, y, name) -> Manifest
    json_rows(X) -> list of request rows ({feature: JSON value})
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from modelops.model.artifact import CLASSIFICATION, REGRESSION, Manifest, runtime_versions, write_artifact
from modelops.model.baseline import baseline_for, numeric_baseline
from modelops.model.schema import CATEGORY, NUMBER, Feature
from modelops.model.versioning import new_version, utc_now_iso


def feature_of(column: pd.Series) -> Feature:
    name, dtype = str(column.name), column.dtype
    nullable = bool(column.isna().any())
    if isinstance(dtype, pd.CategoricalDtype):
        return Feature(
            name, CATEGORY, allowed=tuple(map(str, dtype.categories)), nullable=nullable, pandas_dtype="category"
        )
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        values = column.dropna().astype(np.float64)
        low, high = (float(values.min()), float(values.max())) if len(values) else (None, None)
        return Feature(name, NUMBER, low, high, nullable=nullable, pandas_dtype=str(dtype))
    allowed = tuple(sorted({str(v) for v in column.dropna()}))
    return Feature(name, CATEGORY, allowed=allowed, nullable=nullable, pandas_dtype=str(dtype))


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value)


def json_rows(X: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(c): _cell(v) for c, v in zip(X.columns, row, strict=True)}
        for row in X.astype(object).itertuples(index=False)
    ]


def write_frame_artifact(
    directory: Path, estimator: Any, X: pd.DataFrame, y: pd.Series, name: str, golden_rows: int = 10
) -> Manifest:
    features = [feature_of(X[c]) for c in X.columns]
    task = CLASSIFICATION if hasattr(estimator, "classes_") else REGRESSION
    baseline: dict[str, Any] = {}
    for f in features:
        values = X[f.name].astype(object).to_numpy()
        if f.dtype == NUMBER:
            values = np.array([np.nan if v is None or v != v else float(v) for v in values])
        baseline[f.name] = baseline_for(values, f.dtype)
    if task == CLASSIFICATION:
        baseline["__prediction__"] = numeric_baseline(estimator.predict_proba(X)[:, -1])
    else:
        baseline["__prediction__"] = numeric_baseline(estimator.predict(X))
    head = X.head(golden_rows)
    golden: dict[str, Any] = {
        "instances": json_rows(head),
        "predictions": [_cell(p) for p in estimator.predict(head)],
        "tolerance": 1e-6,
    }
    if task == CLASSIFICATION:
        golden["probabilities"] = estimator.predict_proba(head).tolist()
    manifest = Manifest(
        name=name,
        version=new_version(),
        created_at=utc_now_iso(),
        task=task,
        estimator=type(estimator).__name__,
        classes=[_cell(c) for c in estimator.classes_] if task == CLASSIFICATION else None,
        features=[f.to_dict() for f in features],
        target=str(y.name),
        metrics={},
        training_data={"uri": "dataframe", "sha256": "", "rows": len(X)},
        runtime=runtime_versions(),
        baseline=baseline,
        recipe={},
        input={"kind": "dataframe", "columns": [str(c) for c in X.columns]},
    )
    return write_artifact(directory, estimator, manifest, golden)


# ---- models that fail, for the tests of who is at fault ------------------------------------------------
def refuse_fine_fares(X: pd.DataFrame) -> pd.DataFrame:
    """A user transformer with a bug: it fails on fares with more than two decimals (50.125 lies inside the
    training range, and every training fare has two decimals)."""
    cents = X["fare"].to_numpy() * 100
    if (np.abs(np.round(cents) - cents) > 1e-6).any():
        raise ValueError("fare with more than two decimals")
    return X


def strict_model(n: int = 400) -> tuple[Any, pd.DataFrame, pd.Series]:
    """Refuses unseen ports (OneHotEncoder(handle_unknown="error")) and has the fare bug above."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    from support import user_models

    X = user_models.passengers(n)
    X["embarked"] = X["embarked"].fillna("Southampton")
    y = user_models.survived(X)
    prepare = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), ["age", "fare", "pclass"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["sex", "embarked"]),
        ]
    )
    steps = [("check", FunctionTransformer()), ("prepare", prepare), ("model", LogisticRegression(max_iter=1000))]
    model = Pipeline(steps).fit(X, y)
    model.named_steps["check"].func = refuse_fine_fares
    return model, X, y
