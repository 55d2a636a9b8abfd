"""The benchmark chart reads bench/results/*.json rows and draws each value against its target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools import bench_chart


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        ("<= 1.3", 1.1, (1.3, True)),
        ("≤ 1.2×", 1.0, (1.2, True)),
        (">= 2x", 3.0, (2.0, False)),
        ("≥ 75%", 0.8, (0.75, False)),  # a fraction measured against a percentage
        (">= 75%", 80.0, (75.0, False)),  # a percentage measured against a percentage
        ("<= 200.0", 175.8, (200.0, True)),
        ("= 20000", 20000.0, (20000.0, None)),
        ("= 0", 0.0, None),  # nothing to divide by
        ("report", 1.0, None),
        ("", 1.0, None),
        ("informational", 1.0, None),
    ],
)
def test_parse_target(target, value, expected):
    assert bench_chart.parse_target(target, value) == expected


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"title": name.title(), "rows": rows}))


def test_rows_are_ratios_to_their_targets(tmp_path: Path):
    _write(
        tmp_path,
        "online",
        [
            {"case": "1 row", "metric": "x raw", "value": 1.17, "target": "<= 1.3", "ok": True},
            {"case": "init", "metric": "x load", "value": 1.3, "target": "<= 1.15", "ok": False},
            {"case": "fetch", "metric": "ms", "value": 80, "target": "", "ok": True},
        ],
    )
    (tmp_path / "broken.json").write_text("{not json")
    rows = bench_chart.load_rows(tmp_path)
    assert [(r.case, r.ok) for r in rows] == [("1 row", True), ("init", False), ("fetch", True)]
    assert rows[0].ratio == pytest.approx(0.9) and rows[0].at_most
    assert rows[1].ratio == pytest.approx(1.3 / 1.15)
    assert rows[2].ratio is None


def test_draw_writes_a_png_and_skips_when_there_is_nothing(tmp_path: Path):
    out = tmp_path / "bench.png"
    assert bench_chart.draw(tmp_path, out) is None and not out.exists()
    _write(tmp_path, "batch", [{"case": "LR", "metric": "x pandas", "value": 2.6, "target": ">= 2", "ok": True}])
    _write(tmp_path, "size", [{"case": "predict", "metric": "MB", "value": 175.8, "target": "<= 200.0", "ok": True}])
    assert bench_chart.draw(tmp_path, out) == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_says_what_to_run_when_there_are_no_results(tmp_path: Path, capsys):
    assert bench_chart.main(["--results", str(tmp_path / "none")]) == 2
    assert "make bench" in capsys.readouterr().err
