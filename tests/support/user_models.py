"""Models and data as a user brings them, built by the tests themselves (no downloads): pandas DataFrames with
missing values and categoricals, and pipelines fitted the way a notebook fits them.

    passengers(n)               a Titanic-like table: float with NaN, int, bool, pandas category, object with NaN
    column_transformer_model()  ColumnTransformer selecting columns by name (imputer + scaler, one-hot) + logistic
    hgb_from_dtype_model()      HistGradientBoostingClassifier(categorical_features="from_dtype") on category columns
    regressor_model()           a ColumnTransformer pipeline + Ridge on a numeric target
    multiclass_model()          a random forest with string labels (three classes)
Each builder returns (fitted estimator, X, y); X is the DataFrame it was fitted on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PORTS = ["Cherbourg", "Queenstown", "Southampton"]


def passengers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(30, 12, n).clip(1, 80).round(1)
    age[rng.random(n) < 0.15] = np.nan
    embarked = rng.choice(PORTS, n).astype(object)
    embarked[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "age": age,
            "fare": rng.gamma(2.0, 15.0, n).round(2),
            "pclass": rng.integers(1, 4, n),
            "sex": pd.Categorical(rng.choice(["female", "male"], n)),
            "embarked": embarked,
            "alone": rng.random(n) < 0.4,
        }
    )


def survived(X: pd.DataFrame, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    score = (
        (X["sex"] == "female") * 2.0 - (X["pclass"] - 2) * 0.8 - X["age"].fillna(30) / 40 + rng.normal(0, 0.7, len(X))
    )
    return pd.Series(np.where(score > 0, "survived", "died"), name="outcome")


def column_transformer_model(n: int = 400) -> tuple[Any, pd.DataFrame, pd.Series]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = passengers(n)
    y = survived(X)
    prepare = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                ["age", "fare", "pclass"],
            ),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                ["sex", "embarked"],
            ),
        ]
    )
    model = Pipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=1000))]).fit(X, y)
    return model, X, y


def hgb_from_dtype_model(n: int = 400) -> tuple[Any, pd.DataFrame, pd.Series]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = passengers(n).drop(columns=["alone"])
    X["embarked"] = pd.Categorical(X["embarked"], categories=PORTS)
    y = survived(X)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=50, random_state=0).fit(X, y)
    return model, X, y


def regressor_model(n: int = 400) -> tuple[Any, pd.DataFrame, pd.Series]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = passengers(n)
    rng = np.random.default_rng(2)
    y = pd.Series(X["fare"] * 1.5 + (X["pclass"] == 1) * 40 + rng.normal(0, 5, n), name="price")
    prepare = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), ["age", "fare", "pclass"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"]),
        ]
    )
    model = Pipeline([("prepare", prepare), ("model", Ridge())]).fit(X, y)
    return model, X, y


def multiclass_model(n: int = 300) -> tuple[Any, pd.DataFrame, pd.Series]:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    species = rng.choice(["setosa", "versicolor", "virginica"], n)
    offset = pd.Series(species).map({"setosa": 0.0, "versicolor": 1.5, "virginica": 3.0}).to_numpy()
    X = pd.DataFrame(
        {
            "petal_length": (offset + rng.normal(1.5, 0.4, n)).round(2),
            "petal_width": (offset / 2 + rng.normal(0.3, 0.2, n)).round(2),
            "sepal_length": rng.normal(5.8, 0.8, n).round(2),
        }
    )
    y = pd.Series(species, name="species")
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    return model, X, y
