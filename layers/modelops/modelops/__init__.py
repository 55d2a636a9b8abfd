"""modelops: train, register, serve, batch-score and safely roll out scikit-learn models on AWS Lambda.

    import modelops
    modelops.register(fitted_pipeline, X_sample, y_sample, name="churn", alias="champion")

`register` is loaded on first use, so `import modelops` (and every Lambda function importing a submodule) does not
pay for scikit-learn, numpy or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["register"]

if TYPE_CHECKING:
    from .registry.registration import register


def __getattr__(name: str) -> Any:
    if name == "register":
        from .registry.registration import register

        return register
    raise AttributeError(f"module 'modelops' has no attribute {name!r}")
