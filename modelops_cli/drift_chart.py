"""Drift per feature as a picture: PSI bars of one batch run against the usual 0.1 / 0.25 bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODERATE = 0.1
SIGNIFICANT = 0.25


def draw_drift(manifest: dict[str, Any], path: str | Path, top: int = 30) -> list[tuple[str, float]]:
    """Draw the `top` most drifted features of a batch manifest to a PNG; returns the bars drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drift = manifest.get("drift") or {}
    bars = sorted((drift.get("feature_psi") or {}).items(), key=lambda kv: kv[1], reverse=True)[:top]
    if drift.get("prediction_psi") is not None:
        bars.insert(0, ("(prediction)", float(drift["prediction_psi"])))
    fig, ax = plt.subplots(figsize=(8, 0.28 * max(len(bars), 4) + 1.4))
    names = [n for n, _ in bars][::-1]
    values = [v for _, v in bars][::-1]
    colors = ["#c0392b" if v > SIGNIFICANT else "#e6a23c" if v > MODERATE else "#5b8def" for v in values]
    ax.barh(names, values, color=colors)
    ax.axvline(MODERATE, color="#e6a23c", linestyle="--", linewidth=1, label=f"moderate shift ({MODERATE})")
    ax.axvline(SIGNIFICANT, color="#c0392b", linestyle="--", linewidth=1, label=f"significant shift ({SIGNIFICANT})")
    model = manifest.get("model") or {}
    ax.set_title(
        f"Input drift (PSI) on {manifest.get('run_date')}: {model.get('name')}/{model.get('version')}", fontsize=10
    )
    ax.set_xlabel("population stability index vs the training baseline")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return bars
