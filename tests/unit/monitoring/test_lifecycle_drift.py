"""PSI and drift statistics checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from modelops.capture.records import PredictionRecord
from modelops.model.artifact import Manifest
from modelops.model.baseline import categorical_baseline, numeric_baseline, numeric_counts
from modelops.monitoring import drift
from modelops.monitoring.quality import drift_report


def test_psi_matches_hand_computation():
    # expected 50/50, actual 90/10: 0.4*ln(0.9/0.5) + (-0.4)*ln(0.1/0.5)
    hand = 0.4 * math.log(1.8) + (-0.4) * math.log(0.2)
    assert drift.psi([50, 50], [90, 10]) == pytest.approx(hand, rel=1e-12)
    assert drift.psi([50, 50], [90, 10]) == pytest.approx(0.878890, abs=1e-6)


def test_psi_four_bins_and_symmetry_properties():
    expected, actual = [25, 25, 25, 25], [10, 20, 30, 40]
    e, a = np.full(4, 0.25), np.array([0.1, 0.2, 0.3, 0.4])
    # 0.15*ln(0.4)*-1 + 0.05*ln(0.8)*-1 + 0.05*ln(1.2) + 0.15*ln(1.6) = 0.137444 + 0.011157 + 0.009116 + 0.070500
    hand = float(np.sum((a - e) * np.log(a / e)))
    assert drift.psi(expected, actual) == pytest.approx(hand)
    assert drift.psi(expected, actual) == pytest.approx(0.228217, abs=1e-6)
    assert drift.psi(expected, expected) == 0.0
    # PSI is symmetric in its two arguments
    assert drift.psi(actual, expected) == pytest.approx(drift.psi(expected, actual))
    # counts are normalised, so scale does not matter
    assert drift.psi([1, 1, 1, 1], [100, 200, 300, 400]) == pytest.approx(hand)


def test_psi_empty_bin_uses_floor_not_infinity():
    value = drift.psi([50, 50, 0], [50, 40, 10])
    a3, e3 = 0.1, drift.PROPORTION_FLOOR
    hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (a3 - e3) * math.log(a3 / e3)
    assert math.isfinite(value)
    assert value == pytest.approx(hand)


def test_psi_rejects_mismatched_bins():
    with pytest.raises(ValueError, match="differ in length"):
        drift.psi([1, 2, 3], [1, 2])


def test_numeric_bins_put_edge_values_in_the_lower_bin():
    counts = numeric_counts(np.array([0.0, 1.0, 1.5, 2.0, 9.0, np.nan]), [1.0, 2.0])
    assert counts.tolist() == [2, 2, 1]  # (-inf,1] (1,2] (2,inf); NaN not counted


def test_accumulator_uniform_vs_shifted_known_psi():
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 1, 100_000)
    base = numeric_baseline(train, bins=10)
    assert len(base["edges"]) == 9 and base["edges"][0] == pytest.approx(0.1, abs=0.01)
    acc = drift.DriftAccumulator({"x": base}, ["x"])
    # same distribution, fed in two chunks: PSI near 0
    sample = rng.uniform(0, 1, 50_000)
    acc.add(sample[:20_000, None])
    acc.add(sample[20_000:, None])
    assert acc.counts["x"].sum() == 50_000
    assert acc.psi_by_feature()["x"] < 0.001
    # shifted by 0.5: half the mass piles up in the top open bin. With deciles of U(0,1):
    # bins 1-5 empty (floor), bins 6-9 hold 0.1 each, top bin holds 0.5 + 0.1 = 0.6.
    shifted = drift.DriftAccumulator({"x": base}, ["x"])
    shifted.add(rng.uniform(0.5, 1.5, 200_000)[:, None])
    f = drift.PROPORTION_FLOOR
    hand = 5 * (f - 0.1) * math.log(f / 0.1) + 4 * 0.0 + (0.6 - 0.1) * math.log(0.6 / 0.1)
    assert shifted.psi_by_feature()["x"] == pytest.approx(hand, rel=0.02)


def test_accumulator_categorical_counts_unseen_categories_as_other():
    base = categorical_baseline(np.array(["a", "a", "b", "b"], dtype=object))
    acc = drift.DriftAccumulator({"c": base}, ["c"])
    acc.add(np.array([["a"], ["b"], ["z"], ["z"]], dtype=object))
    assert acc.counts["c"].tolist() == [1, 1, 2]
    f = drift.PROPORTION_FLOOR
    hand = 2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - f) * math.log(0.5 / f)
    assert acc.psi_by_feature()["c"] == pytest.approx(hand)


def test_accumulator_merge_equals_single_pass():
    rng = np.random.default_rng(1)
    base = numeric_baseline(rng.normal(size=5000))
    data = rng.normal(0.3, 1, 3000)
    one = drift.DriftAccumulator({"x": base}, ["x"])
    one.add(data[:, None])
    a = drift.DriftAccumulator({"x": base}, ["x"])
    a.add(data[:1000, None])
    b = drift.DriftAccumulator({"x": base}, ["x"])
    b.add(data[1000:, None])
    a.merge({"x": b.counts["x"].tolist()})
    assert a.counts["x"].tolist() == one.counts["x"].tolist()
    assert a.psi_by_feature()["x"] == pytest.approx(one.psi_by_feature()["x"])


def test_accumulator_bins_many_features_at_once_like_one_column_at_a_time():
    rng = np.random.default_rng(2)
    train = np.column_stack([rng.normal(size=4000), rng.integers(0, 3, 4000), rng.exponential(size=4000)])
    names = ["normal", "three_values", "skewed"]
    baseline = {n: numeric_baseline(train[:, j]) for j, n in enumerate(names)}
    assert len(baseline["three_values"]["edges"]) < len(baseline["normal"]["edges"])  # padded edge rows
    data = np.column_stack([rng.normal(0.2, 1, 5000), rng.integers(0, 4, 5000), rng.exponential(2, 5000)])
    data[:50, 0] = baseline["normal"]["edges"][3]  # values exactly on an edge go to the lower bin
    acc = drift.DriftAccumulator(baseline, names)
    acc.add(data[:1234])
    acc.add(data[1234:])
    for j, name in enumerate(names):
        assert acc.counts[name].tolist() == numeric_counts(data[:, j], baseline[name]["edges"]).tolist()
    # a chunk of more rows than one block of binning (about 2 MB of values), the last block a partial one
    big = np.column_stack([rng.normal(0.2, 1, 200_001), rng.integers(0, 4, 200_001), rng.exponential(2, 200_001)])
    counts = drift.DriftAccumulator(baseline, names).bin_counts(big)
    for j, name in enumerate(names):
        assert counts[name].tolist() == numeric_counts(big[:, j], baseline[name]["edges"]).tolist()
    # a chunk with non-finite values takes the per-column path, which leaves them out
    data[0, 0], data[1, 2] = np.nan, np.inf
    other = drift.DriftAccumulator(baseline, names)
    other.add(data)
    assert other.counts["normal"].sum() == 4999 and other.counts["three_values"].sum() == 5000
    assert other.counts["skewed"].tolist() == numeric_counts(data[:, 2], baseline["skewed"]["edges"]).tolist()


def test_accumulator_mixed_numeric_and_categorical_columns():
    base = {
        "x": numeric_baseline(np.arange(100.0)),
        "c": categorical_baseline(np.array(["a", "b"] * 50, dtype=object)),
    }
    acc = drift.DriftAccumulator(base, ["c", "x"])
    acc.add(np.array([["a", 5.0], ["z", 95.0], ["b", 50.0]], dtype=object))
    assert acc.counts["c"].tolist() == [1, 1, 1]
    assert acc.counts["x"].tolist() == numeric_counts(np.array([5.0, 95.0, 50.0]), base["x"]["edges"]).tolist()


def test_drift_report_from_captured_requests_flags_the_shifted_feature(classifier_dir):
    manifest = Manifest.from_json((classifier_dir / "manifest.json").read_bytes())
    from modelops.model.dataset import load_builtin

    ds = load_builtin("breast_cancer")
    names = ds.feature_names
    rows = [dict(zip(names, r, strict=True)) for r in ds.X[:300].tolist()]
    for r in rows:
        r["mean_radius"] *= 1.5
    captured = [
        PredictionRecord(
            request_id=str(i),
            at=0,
            model_version=manifest.version,
            instances=rows[i : i + 50],
            predictions=["benign"] * 50,
            scores=[0.5] * 50,
        )
        for i in range(0, 300, 50)
    ]
    report = drift_report(manifest, captured)
    assert report["rows"] == 300
    assert report["psi_max_feature"] == "mean_radius"
    assert report["psi"]["mean_radius"] > 0.25
    assert report["psi"]["mean_texture"] < 0.1  # unshifted feature, in-sample rows
    assert report["prediction_psi"] > 0.25  # every score piled into one bin
