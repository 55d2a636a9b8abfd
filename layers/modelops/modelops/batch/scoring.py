"""Score a chunk and format its prediction lines in bulk.

Probabilities are written with six fixed decimals, built digit by digit with numpy (no per-value
string formatting), so the same model and input always give byte-identical output.
"""

from __future__ import annotations

import numpy as np

from ..artifact import LoadedModel
from .readers import csv_field

DECIMALS = 6
_SCALE = 10**DECIMALS
_PLACES = 10 ** np.arange(DECIMALS - 1, -1, -1, dtype=np.int64)


def fixed_decimals(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as '0.123456' byte strings: an (n, k) array -> n rows of k comma-led fields."""
    q = np.rint(np.clip(values, 0.0, 1.0) * _SCALE).astype(np.int64)
    n, k = q.shape
    out = np.empty((n, k, DECIMALS + 3), dtype=np.uint8)
    out[:, :, 0] = ord(",")
    out[:, :, 1] = (q // _SCALE) + ord("0")
    out[:, :, 2] = ord(".")
    out[:, :, 3:] = ((q % _SCALE)[:, :, None] // _PLACES) % 10 + ord("0")
    return out.reshape(n, k * (DECIMALS + 3))


class Scorer:
    def __init__(self, model: LoadedModel):
        self.model = model
        self.manifest = model.manifest
        self.estimator = model.estimator
        self.classes = list(self.manifest.classes or []) if self.manifest.task == "classification" else []
        self.version_field = ("," + csv_field(self.manifest.version)).encode()
        self.labels = [b"," + csv_field(str(c)).encode() for c in self.classes]
        self._suffix = np.frombuffer(self.version_field + b"\n", np.uint8)

    def columns(self, id_columns: tuple[str, ...]) -> list[str]:
        return [*id_columns, "prediction", *[f"proba_{c}" for c in self.classes], "model_version"]

    def header(self, id_columns: tuple[str, ...]) -> bytes:
        return (",".join(csv_field(c) for c in self.columns(id_columns)) + "\n").encode()

    def score(self, ids: list[bytes], matrix: np.ndarray, with_ids: bool = True) -> tuple[bytes, np.ndarray]:
        """Prediction lines for the rows, and the value whose drift is tracked (P(last class) or y)."""
        if len(ids) == 0:
            return b"", np.zeros(0)
        from sklearn import config_context

        n = len(ids)
        with config_context(assume_finite=True):
            if self.classes:
                proba = self.estimator.predict_proba(matrix)
                labels = [self.labels[i] for i in np.argmax(proba, axis=1).tolist()]
                tail = np.concatenate([fixed_decimals(proba), self._suffix[None, :].repeat(n, 0)], axis=1)
                tails = tail.view(f"S{tail.shape[1]}").ravel().tolist()
                tracked = proba[:, -1]
            else:
                tracked = np.asarray(self.estimator.predict(matrix), dtype=np.float64)
                labels = [b"," + repr(v).encode() for v in tracked.tolist()]
                tails = [self.version_field + b"\n"] * n
        # interleave [id, ",label", "...tail\n"] and join once: no per-row concatenation
        pieces: list[bytes] = [b""] * (3 * n)
        pieces[0::3] = ids
        pieces[1::3] = labels
        pieces[2::3] = tails
        body = b"".join(pieces)
        if not with_ids:  # lines start with the label: drop the separator in front of it
            body = body[1:].replace(b"\n,", b"\n")
        return body, tracked
