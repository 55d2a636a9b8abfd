"""What `modelops models import` reads: a joblib model file, and a sample CSV read with pandas (the CLI's
environment has it) into the columns and dtypes the fitted model expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelops.core.errors import ModelOpsError
from modelops.model import signature
from modelops.registry.registration import apply_fitted_dtypes


def load_model(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ModelOpsError(f"model file not found: {path}")
    import joblib

    try:
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        raise ModelOpsError(
            f"{path} needs module '{exc.name}' to load: install it here, or put its directory on PYTHONPATH"
        ) from None
    except AttributeError as exc:
        raise ModelOpsError(f"{path} cannot be loaded: {_first_line(exc)} (a class of the model is missing)") from None
    except Exception as exc:  # pickle raises almost anything on a file that is not one
        raise ModelOpsError(f"{path} is not a joblib file: {type(exc).__name__}: {_first_line(exc)}") from None


def read_sample_csv(path: str | Path, estimator: Any, target: str | None) -> tuple[Any, Any]:
    """(X, y) from a CSV with a header. Columns the model was fitted on are kept in its order (others are left
    out); text stays text where the model's encoders hold string categories, and category columns get the fitted
    categories where the model needs pandas category dtypes (HistGradientBoosting categorical_features="from_dtype")."""
    pd = signature.pandas()
    path = Path(path)
    if not path.is_file():
        raise ModelOpsError(f"data file not found: {path}")
    header = [str(c) for c in _read(pd, path, nrows=0).columns]
    if target is not None and target not in header:
        raise ModelOpsError(f"{path}: target column '{target}' not found (columns: {', '.join(header)})")
    fitted = signature.fitted_columns(estimator)
    if fitted is not None:
        missing = [c for c in fitted if c not in header]
        if missing:
            raise ModelOpsError(f"{path} has no column '{missing[0]}', which the model was fitted on")
    categories, as_dtype = signature.fitted_categories(estimator)
    text = {c for c, cats in categories.items() if cats and all(isinstance(v, str) for v in cats)} | as_dtype
    frame = _read(pd, path, dtype={c: str for c in text if c in header})
    if len(frame) < 2:
        raise ModelOpsError(f"{path} has {len(frame)} data rows: at least 2 are needed")
    y = frame.pop(target) if target is not None else None
    X = frame[fitted] if fitted is not None else frame
    return apply_fitted_dtypes(X, estimator), y


def _read(pd: Any, path: Path, **kwargs: Any) -> Any:
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise ModelOpsError(f"{path} is empty: a header row and at least 2 data rows are needed") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ModelOpsError(f"cannot read {path} as CSV: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
