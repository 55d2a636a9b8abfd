"""The local lifecycle demo runs the whole loop (real predict, monitor and retrain handlers on moto) and
ends with v2 promoted; it says where it emulates CodeDeploy and alarm evaluation."""

from __future__ import annotations

from devtools import demo_lifecycle


def test_demo_runs_the_whole_loop():
    lines: list[str] = []
    assert demo_lifecycle.main(lines.append) == 0
    text = "\n".join(lines)
    for n, title in enumerate(
        [
            "v1 serves",
            "drifted traffic and labels arrive",
            "the metric crosses the threshold and the alarm event fires",
            "the retrain runs and v2 goes out as a canary",
            "v2 is promoted",
        ],
        start=1,
    ):
        assert f"[{n}/5] {title}" in text
    assert "locally the deployer publishes the pinned Lambda version" in text
    assert "-> ALARM" in text and "retrain: promoted" in text
    assert "the alarm fires again during the canary -> skipped" in text
    assert "deployment succeeded -> promoted" in text
