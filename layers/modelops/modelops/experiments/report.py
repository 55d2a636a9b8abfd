"""The A/B report: compare variant B (challenger) with A (champion) from captured predictions and feedback.

Per variant: traffic share, error rate (5xx), latency p50/p99, and from labelled rows either accuracy
and AUC (classification) or MAE and RMSE (regression), each with a 95 % confidence interval.

Statistics:
  - proportions (traffic share, error rate, accuracy): Wilson score intervals; A vs B with a
    two-proportion z-test;
  - MAE: Welch's t-test on the absolute errors (no equal-variance assumption);
  - AUC and RMSE: percentile bootstrap intervals (seeded, so a report is reproducible).
The verdict uses the primary quality metric (accuracy, or MAE for regression) at significance level
alpha: "B better", "B worse", or "not enough data yet" (too few labelled rows per variant, or no
significant difference yet). A significantly higher error rate on B makes the verdict "B worse"
whatever its quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..capture.labelled import LabelledRow
from ..capture.records import PredictionRecord

VARIANTS = ("A", "B")
ALPHA = 0.05
MIN_LABELLED = 30
BOOTSTRAP = 1000
Z95 = 1.959963984540054
B_BETTER, B_WORSE, NOT_ENOUGH = "B better", "B worse", "not enough data yet"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def two_proportion_z(s1: int, n1: int, s2: int, n2: int) -> dict[str, Any]:
    """z-test for p2 - p1 with the pooled standard error; two-sided p-value."""
    from scipy import stats

    if n1 == 0 or n2 == 0:
        return {"diff": float("nan"), "z": float("nan"), "p_value": 1.0}
    p1, p2 = s1 / n1, s2 / n2
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p2 - p1
    if se == 0:
        return {"diff": diff, "z": 0.0, "p_value": 1.0}
    z = diff / se
    se_unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return {
        "diff": diff,
        "z": z,
        "p_value": float(2 * stats.norm.sf(abs(z))),
        "ci": [diff - Z95 * se_unpooled, diff + Z95 * se_unpooled],
    }


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Welch's t-test for mean(b) - mean(a); two-sided p-value and a 95 % interval of the difference."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return {"diff": float("nan"), "t": float("nan"), "p_value": 1.0}
    diff = float(b.mean() - a.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {"diff": diff, "t": 0.0, "p_value": 1.0 if diff == 0 else 0.0, "ci": [diff, diff]}
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = diff / se
    q = float(stats.t.ppf(0.975, dof))
    return {"diff": diff, "t": t, "p_value": float(2 * stats.t.sf(abs(t), dof)), "ci": [diff - q * se, diff + q * se]}


def bootstrap_ci(values: Sequence[np.ndarray], statistic: Any, rounds: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    n = len(values[0])
    stats_ = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        try:
            stats_.append(statistic(*(v[idx] for v in values)))
        except ValueError:  # e.g. a resample with one class has no AUC
            continue
    if not stats_:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(stats_, [2.5, 97.5])
    return [float(lo), float(hi)]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank statistic (ties count half), fast enough to bootstrap."""
    from scipy.stats import rankdata

    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes")
    ranks = rankdata(score)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


@dataclass
class ReportInput:
    task: str  # classification | regression
    predictions: list[PredictionRecord]
    labelled: list[LabelledRow]
    positive_class: Any = None  # classification: the class whose probability is the score


def traffic(predictions: list[PredictionRecord]) -> dict[str, dict[str, Any]]:
    total = len(predictions)
    out: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        rows = [p for p in predictions if p.variant == v]
        n = len(rows)
        errors = sum(1 for p in rows if p.status >= 500)
        latencies = [float(p.latency_ms) for p in rows if p.latency_ms is not None]
        out[v] = {
            "requests": n,
            "share": n / total if total else 0.0,
            "share_ci": list(wilson(n, total)),
            "errors": errors,
            "error_rate": errors / n if n else 0.0,
            "error_rate_ci": list(wilson(errors, n)),
            "latency_p50_ms": _percentile(latencies, 50),
            "latency_p99_ms": _percentile(latencies, 99),
            "model_versions": sorted({p.model_version for p in rows}),
        }
    return out


def classification_quality(rows: list[LabelledRow], positive: Any, rounds: int = BOOTSTRAP) -> dict[str, Any]:
    n = len(rows)
    correct = sum(1 for r in rows if str(r.prediction) == str(r.actual))
    out: dict[str, Any] = {
        "labelled": n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "accuracy_ci": list(wilson(correct, n)) if n else None,
        "auc": None,
        "auc_ci": None,
    }
    scored = [r for r in rows if r.score is not None]
    if positive is not None and scored:
        y = np.array([str(r.actual) == str(positive) for r in scored])
        s = np.array([float(r.score) for r in scored if r.score is not None])
        if 0 < y.sum() < len(y):
            out["auc"] = auc(y, s)
            out["auc_ci"] = bootstrap_ci([y, s], auc, rounds) if rounds else None
    return out


def regression_quality(rows: list[LabelledRow], rounds: int = BOOTSTRAP) -> dict[str, Any]:
    err = np.array([float(r.prediction) - float(r.actual) for r in rows], dtype=float)  # type: ignore[arg-type]
    n = len(err)
    if n == 0:
        return {"labelled": 0, "mae": None, "mae_ci": None, "rmse": None, "rmse_ci": None}
    abs_err = np.abs(err)
    mae = float(abs_err.mean())
    half = Z95 * float(abs_err.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    return {
        "labelled": n,
        "mae": mae,
        "mae_ci": [mae - half, mae + half],
        "rmse": float(math.sqrt((err**2).mean())),
        "rmse_ci": bootstrap_ci([err], lambda e: math.sqrt(float((e**2).mean())), rounds) if rounds else None,
    }


def build_report(
    data: ReportInput, alpha: float = ALPHA, min_labelled: int = MIN_LABELLED, bootstrap: int = BOOTSTRAP
) -> dict[str, Any]:
    """The whole comparison as plain JSON types; bootstrap=0 skips the bootstrap intervals (AUC, RMSE)."""
    by_variant = {v: [r for r in data.labelled if r.variant == v] for v in VARIANTS}
    report: dict[str, Any] = {
        "task": data.task,
        "alpha": alpha,
        "min_labelled": min_labelled,
        "variants": traffic(data.predictions),
    }
    for v in VARIANTS:
        quality = (
            classification_quality(by_variant[v], data.positive_class, bootstrap)
            if data.task == "classification"
            else regression_quality(by_variant[v], bootstrap)
        )
        report["variants"][v].update(quality)
    a, b = report["variants"]["A"], report["variants"]["B"]
    tests: dict[str, Any] = {"error_rate": two_proportion_z(a["errors"], a["requests"], b["errors"], b["requests"])}
    if data.task == "classification":
        primary, better_if = "accuracy", "higher"
        tests["accuracy"] = two_proportion_z(a["correct"], a["labelled"], b["correct"], b["labelled"])
    else:
        primary, better_if = "mae", "lower"
        abs_a = np.array([abs(float(r.prediction) - float(r.actual)) for r in by_variant["A"]])
        abs_b = np.array([abs(float(r.prediction) - float(r.actual)) for r in by_variant["B"]])
        tests["mae"] = welch(abs_a, abs_b)
    report["tests"] = tests
    report["primary_metric"] = primary
    report["verdict"], report["reason"] = verdict(report, primary, better_if, alpha, min_labelled)
    return report


def verdict(report: dict[str, Any], primary: str, better_if: str, alpha: float, min_labelled: int) -> tuple[str, str]:
    a, b = report["variants"]["A"], report["variants"]["B"]
    err = report["tests"]["error_rate"]
    if err["p_value"] < alpha and err["diff"] > 0:
        return B_WORSE, (
            f"B fails more often: error rate {b['error_rate']:.2%} vs {a['error_rate']:.2%} (p={err['p_value']:.3g})"
        )
    if min(a["labelled"], b["labelled"]) < min_labelled:
        return NOT_ENOUGH, (
            f"{a['labelled']} labelled rows for A and {b['labelled']} for B; at least {min_labelled} each are needed"
        )
    test = report["tests"][primary]
    diff, p = test["diff"], test["p_value"]
    described = f"{primary} A {a[primary]:.4g} vs B {b[primary]:.4g} (B - A = {diff:+.4g}, p={p:.3g})"
    if p >= alpha:
        return NOT_ENOUGH, f"no significant difference yet at alpha={alpha}: {described}"
    b_is_better = diff > 0 if better_if == "higher" else diff < 0
    return (B_BETTER if b_is_better else B_WORSE), described


# ---- chart --------------------------------------------------------------------------------------
def write_chart(report: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    v = report["variants"]
    colors = ["#4c72b0", "#dd8452"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))

    def bars(ax, key, ci_key, title, fmt=lambda x: x):
        values = [v[x][key] if v[x][key] is not None else 0.0 for x in VARIANTS]
        if ci_key:
            cis = [v[x][ci_key] or [values[i], values[i]] for i, x in enumerate(VARIANTS)]
            yerr = [
                [max(0.0, values[i] - cis[i][0]) for i in range(2)],
                [max(0.0, cis[i][1] - values[i]) for i in range(2)],
            ]
        else:
            yerr = None
        ax.bar(
            VARIANTS,
            [fmt(x) for x in values],
            color=colors,
            yerr=None if yerr is None else [[fmt(e) for e in yerr[0]], [fmt(e) for e in yerr[1]]],
            capsize=6,
        )
        ax.set_title(title)

    bars(axes[0], "share", "share_ci", "traffic share (%)", lambda x: 100 * x)
    bars(axes[1], "error_rate", "error_rate_ci", "error rate (%)", lambda x: 100 * x)
    lat = [[v[x]["latency_p50_ms"] or 0 for x in VARIANTS], [v[x]["latency_p99_ms"] or 0 for x in VARIANTS]]
    xs = np.arange(2)
    axes[2].bar(xs - 0.2, lat[0], 0.4, label="p50", color=colors)
    axes[2].bar(xs + 0.2, lat[1], 0.4, label="p99", color=colors, alpha=0.55)
    axes[2].set_xticks(xs, VARIANTS)
    axes[2].set_title("latency p50 / p99 (ms)")
    primary = report["primary_metric"]
    bars(axes[3], primary, f"{primary}_ci", f"{primary} (95% CI)")
    fig.suptitle(f"A/B: {report['verdict']} - {report['reason']}"[:140], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
