"""The decision rules: when a candidate beats the champion (margin, floors, the sign test, the recent
holdout's veto)."""

from __future__ import annotations

import math

from ..model.artifact import CLASSIFICATION, REGRESSION

LOWER_IS_BETTER = {"mae", "rmse", "log_loss"}
DEFAULT_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "mae"}


def better_by(metric: str, candidate: float, champion: float) -> float:
    """How much better the candidate is (positive = better), whatever the metric's direction."""
    return champion - candidate if metric in LOWER_IS_BETTER else candidate - champion


# The task each metric belongs to: a floor on another task's metric does not apply (the template sets an
# accuracy floor by default, which a regressor has no accuracy to meet).
METRIC_TASK = {
    **dict.fromkeys(("accuracy", "roc_auc", "f1_macro", "log_loss"), CLASSIFICATION),
    **dict.fromkeys(("mae", "rmse", "r2"), REGRESSION),
}


def floors_for(task: str, floors: dict[str, float]) -> dict[str, float]:
    return {m: bound for m, bound in floors.items() if METRIC_TASK.get(m, task) == task}


def floor_failures(floors: dict[str, float], metrics: dict[str, float]) -> list[str]:
    failures = []
    for metric, bound in sorted(floors.items()):
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric} not available")
        elif metric in LOWER_IS_BETTER and value > bound:
            failures.append(f"{metric} {value:.4f} above the limit {bound}")
        elif metric not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{metric} {value:.4f} below the floor {bound}")
    return failures


def decide_trusted(
    metric: str,
    margin: float,
    tolerance: float,
    floors: dict[str, float],
    trusted_scores: tuple[dict[str, float], dict[str, float]],
    recent_scores: tuple[dict[str, float], dict[str, float]],
) -> tuple[bool, str]:
    """(candidate, champion) metrics on the trusted set and on the recent-label holdout. The trusted set decides
    (margin, floors); the recent holdout, whose labels clients wrote, can only veto (tolerance)."""
    accept, reason = decide(metric, margin, floors, *trusted_scores, where="trusted set")
    reason = f"trusted set: {reason}"
    if not accept:
        return False, reason
    candidate, champion = recent_scores
    if metric not in candidate or metric not in champion:
        return False, f"{reason}; metric '{metric}' is not available on the recent holdout"
    gain = better_by(metric, candidate[metric], champion[metric])
    recent = f"recent holdout {metric}: candidate {candidate[metric]:.4f} vs champion {champion[metric]:.4f} (gain {gain:+.4f}, tolerance {tolerance})"
    if gain < -tolerance:
        return False, f"candidate loses on the recent holdout by more than the tolerance; {recent}; {reason}"
    return True, f"{reason}; {recent}"


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign (McNemar) test: the chance of at least `wins` of the wins + losses discordant rows
    going the candidate's way if both models were equally good. 1.0 when no row tells them apart."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def decide(
    metric: str,
    margin: float,
    floors: dict[str, float],
    candidate: dict[str, float],
    champion: dict[str, float],
    where: str = "holdout",
) -> tuple[bool, str]:
    if metric not in candidate or metric not in champion:
        return False, f"metric '{metric}' is not available on the {where}"
    gain = better_by(metric, candidate[metric], champion[metric])
    failures = floor_failures(floors, candidate)
    summary = f"{metric}: candidate {candidate[metric]:.4f} vs champion {champion[metric]:.4f} (gain {gain:+.4f}, margin {margin})"
    if failures:
        return False, f"candidate fails the floors ({'; '.join(failures)}); {summary}"
    if gain < margin:
        return False, f"candidate does not beat the champion by the margin; {summary}"
    return True, f"candidate beats the champion; {summary}"
