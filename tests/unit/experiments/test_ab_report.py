"""The A/B report on synthetic feedback whose answer is known in advance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from modelops.capture.labelled import LabelledRow
from modelops.capture.records import PredictionRecord
from modelops.experiments import report as abreport


def synthetic_classification(acc_a: float, acc_b: float, n: int, seed: int, share_b: float = 0.5, err_b: float = 0.0):
    rng = np.random.default_rng(seed)
    preds, rows = [], []
    for i in range(n):
        v = "B" if rng.random() < share_b else "A"
        status = 500 if (v == "B" and rng.random() < err_b) else 200
        preds.append(
            PredictionRecord(
                request_id=f"r{i}",
                at=float(i),
                model_version=f"v-{v}",
                variant=v,
                status=status,
                latency_ms=float(rng.gamma(4, 2 if v == "A" else 3)),
                predictions=[],
            )
        )
        if status != 200:
            continue
        actual = "malignant" if rng.random() < 0.4 else "benign"
        correct = rng.random() < (acc_a if v == "A" else acc_b)
        pred = actual if correct else ("benign" if actual == "malignant" else "malignant")
        # a score consistent with the prediction: more separable when correct
        score = float(np.clip((0.75 if pred == "malignant" else 0.25) + rng.normal(0, 0.15), 0, 1))
        rows.append(
            LabelledRow(
                request_id=f"r{i}",
                row=0,
                at=float(i),
                variant=v,
                model_version=f"v-{v}",
                prediction=pred,
                score=score,
                actual=actual,
                feedback_at=float(i) + 1,
            )
        )
    return abreport.ReportInput("classification", preds, rows, positive_class="malignant")


def synthetic_regression(mae_a: float, mae_b: float, n: int, seed: int):
    rng = np.random.default_rng(seed)
    preds, rows = [], []
    for i in range(n):
        v = "B" if i % 2 else "A"
        preds.append(
            PredictionRecord(
                request_id=f"r{i}", at=float(i), model_version=f"v-{v}", variant=v, latency_ms=5.0, predictions=[]
            )
        )
        actual = float(rng.normal(150, 50))
        # Laplace errors with scale s have mean absolute error s
        err = float(rng.laplace(0, mae_a if v == "A" else mae_b))
        rows.append(
            LabelledRow(
                request_id=f"r{i}",
                row=0,
                at=float(i),
                variant=v,
                model_version=f"v-{v}",
                prediction=actual + err,
                score=None,
                actual=actual,
                feedback_at=float(i),
            )
        )
    return abreport.ReportInput("regression", preds, rows)


def test_b_better_by_known_margin_is_detected():
    report = abreport.build_report(synthetic_classification(0.80, 0.86, 6000, seed=1))
    a, b = report["variants"]["A"], report["variants"]["B"]
    assert report["verdict"] == "B better"
    diff = report["tests"]["accuracy"]
    assert diff["p_value"] < 0.001
    lo, hi = diff["ci"]
    assert lo < 0.06 < hi and lo > 0  # the interval contains the true margin and excludes zero
    assert a["accuracy_ci"][0] < 0.80 < a["accuracy_ci"][1] and b["accuracy_ci"][0] < 0.86 < b["accuracy_ci"][1]
    assert b["auc"] > a["auc"] and b["auc_ci"][0] < b["auc"] < b["auc_ci"][1]


def test_equal_variants_are_not_significant():
    report = abreport.build_report(synthetic_classification(0.85, 0.85, 6000, seed=2))
    assert report["verdict"] == "not enough data yet"
    assert report["tests"]["accuracy"]["p_value"] > 0.05
    lo, hi = report["tests"]["accuracy"]["ci"]
    assert lo < 0 < hi
    assert "no significant difference" in report["reason"]


def test_false_positive_rate_is_near_alpha_over_many_equal_experiments():
    hits = sum(
        abreport.build_report(synthetic_classification(0.85, 0.85, 1000, seed=s), bootstrap=0)["verdict"]
        != "not enough data yet"
        for s in range(100)
    )
    assert hits <= 12  # alpha = 5 %: about 5 expected, 12 would be far beyond chance


def test_b_worse_is_detected():
    assert abreport.build_report(synthetic_classification(0.88, 0.82, 6000, seed=3))["verdict"] == "B worse"


def test_more_errors_on_b_make_it_worse_even_if_accuracy_is_higher():
    report = abreport.build_report(synthetic_classification(0.80, 0.90, 4000, seed=4, err_b=0.05))
    assert report["verdict"] == "B worse" and "error rate" in report["reason"]
    assert report["variants"]["B"]["error_rate"] == pytest.approx(0.05, abs=0.015)


def test_too_few_labels_is_not_enough_data():
    report = abreport.build_report(synthetic_classification(0.5, 0.99, 40, seed=5))
    assert report["verdict"] == "not enough data yet" and "labelled rows" in report["reason"]


def test_traffic_share_and_latency_percentiles():
    report = abreport.build_report(synthetic_classification(0.8, 0.8, 10000, seed=6, share_b=0.1))
    a, b = report["variants"]["A"], report["variants"]["B"]
    assert b["share"] == pytest.approx(0.1, abs=0.01) and a["share"] + b["share"] == pytest.approx(1.0)
    assert b["share_ci"][0] < b["share"] < b["share_ci"][1]
    # gamma(4, scale): medians about 7.3 (A) and 11.0 (B)
    assert a["latency_p50_ms"] == pytest.approx(7.34, rel=0.08) and b["latency_p50_ms"] == pytest.approx(11.0, rel=0.1)
    assert b["latency_p99_ms"] > b["latency_p50_ms"]


def test_regression_lower_mae_on_b_is_detected_and_equal_is_not():
    better = abreport.build_report(synthetic_regression(40.0, 34.0, 6000, seed=7))
    assert better["verdict"] == "B better" and better["primary_metric"] == "mae"
    assert better["variants"]["A"]["mae_ci"][0] < 40.0 < better["variants"]["A"]["mae_ci"][1]
    assert better["variants"]["B"]["rmse"] == pytest.approx(34.0 * np.sqrt(2), rel=0.08)
    equal = abreport.build_report(synthetic_regression(40.0, 40.0, 6000, seed=8))
    assert equal["verdict"] == "not enough data yet" and equal["tests"]["mae"]["p_value"] > 0.05


def test_rank_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.round(rng.random(500) + 0.3 * y, 2)  # rounded so there are ties
    assert abreport.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_wilson_interval_known_values():
    lo, hi = abreport.wilson(81, 263)  # textbook example: 0.2553 .. 0.3662
    assert lo == pytest.approx(0.2553, abs=5e-4) and hi == pytest.approx(0.3662, abs=5e-4)


def test_report_json_and_chart(tmp_path):
    report = abreport.build_report(synthetic_classification(0.80, 0.86, 2000, seed=9))
    json.dumps(report)  # plain JSON types only
    png = abreport.write_chart(report, tmp_path / "ab.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
