"""Signs that the labels of a retrain window were steered rather than observed, checked before anything is trained
on them. Either sign pauses the retrain (modelops.retrain.run): nothing is trained, registered or rolled out, and a
person looks at the window.

    concentration   one writer (FeedbackRecord.writer: the API key id or principal that sent the labels) wrote
                    more than `max_writer_share` of the window's labels, among at least two writers. Labels
                    without a writer count as one unknown writer. A window with a single writer (one
                    labelling key) is not judged by this check.
    disagreement    (classification) the share of labels that disagree with the prediction that was served rose
                    more than `max_disagreement_jump` (absolute) above the champion's error rate on its trusted
                    evaluation set (or, for a champion without one, on its own training holdout).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

UNKNOWN_WRITER = "(unknown)"


@dataclass
class Suspicion:
    reasons: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def suspect(self) -> bool:
        return bool(self.reasons)


def writer_shares(records: Sequence[Any]) -> dict[str, float]:
    counts = Counter(getattr(r, "writer", None) or UNKNOWN_WRITER for r in records)
    total = sum(counts.values())
    return {w: n / total for w, n in counts.most_common()} if total else {}


def disagreement_rate(records: Sequence[Any]) -> float | None:
    if not records:
        return None
    return sum(str(r.actual) != str(r.prediction) for r in records) / len(records)


def inspect(
    records: Sequence[Any],
    *,
    classification: bool,
    baseline_error: float | None,
    max_writer_share: float,
    max_disagreement_jump: float,
    min_rows: int,
) -> Suspicion:
    """Check the labelled window. max_writer_share >= 1 or max_disagreement_jump >= 1 turns that check off."""
    out = Suspicion()
    shares = writer_shares(records)
    if shares:
        top, share = next(iter(shares.items()))
        out.detail["writers"] = len(shares)
        out.detail["top_writer"] = {"writer": top, "share": round(share, 4)}
        # Concentration needs several writers to mean anything: with one labelling key (the template makes one)
        # every label is that key's, and the disagreement check and the trusted set are what guard the window.
        if len(shares) > 1 and share > max_writer_share and len(records) >= min_rows and max_writer_share < 1:
            out.reasons.append(
                f"writer {top} wrote {share:.0%} of the {len(records)} labels in the window "
                f"(more than {max_writer_share:.0%})"
            )
    if classification:
        rate = disagreement_rate(records)
        if rate is not None:
            out.detail["disagreement"] = {"window": round(rate, 4), "baseline_error": baseline_error}
            if (
                baseline_error is not None
                and max_disagreement_jump < 1
                and rate - baseline_error > max_disagreement_jump
            ):
                out.reasons.append(
                    f"{rate:.0%} of the labels disagree with the served predictions, against an error rate of "
                    f"{baseline_error:.0%} on the champion's trusted evaluation (jump above {max_disagreement_jump:g})"
                )
    return out
