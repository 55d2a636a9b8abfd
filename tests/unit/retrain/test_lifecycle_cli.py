"""`modelops retrain` against moto: dry run, status, and one-line errors for missing settings."""

from __future__ import annotations

import json

from modelops.registry import CHAMPION
from support.retrain_stack import deployed, stack

from modelops_cli import main

__all__ = ["deployed", "stack"]  # the fixtures (champion + captured, labelled traffic), used by name

REG = "s3://modelops-test/registry"


def test_dry_run_reports_the_decision_and_changes_nothing(stack, monkeypatch, capsys):
    monkeypatch.delenv("MODELOPS_PREDICT_FUNCTION")
    code = main(["--registry", REG, "--json", "retrain", "--dry-run", "--data", "s3://modelops-test/data"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["outcome"] == "dry_run" and out["reason"].startswith("would promote")
    assert out["metrics"]["candidate"]["accuracy"] > out["metrics"]["champion"]["accuracy"]
    assert stack.registry.list_versions("breast-cancer") == [stack.champion.version]
    assert stack.registry.resolve("breast-cancer", CHAMPION) == stack.champion.version


def test_status_shows_lock_and_recent_decisions(stack, monkeypatch, capsys):
    monkeypatch.delenv("MODELOPS_PREDICT_FUNCTION")
    history_before = stack.registry.history("breast-cancer")
    objects_before = sorted(o.key for o in stack.registry.store.list(""))
    main(["--registry", REG, "retrain", "--dry-run", "--data", "s3://modelops-test/data"])
    capsys.readouterr()
    # a dry run writes nothing: no history event, no lock, no version
    assert stack.registry.history("breast-cancer") == history_before
    assert sorted(o.key for o in stack.registry.store.list("")) == objects_before
    stack.registry.record("breast-cancer", "retrain_decision", {"outcome": "rejected", "reason": "r"})
    assert main(["--registry", REG, "--json", "retrain", "--status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["lock"]["locked"] is False
    assert status["recent"][-1]["event"] == "retrain_decision"


def test_missing_settings_give_one_line_errors(deployed, monkeypatch, capsys):
    monkeypatch.delenv("MODELOPS_DATA_URI")
    assert main(["--registry", REG, "retrain", "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "MODELOPS_DATA_URI" in err
    monkeypatch.delenv("MODELOPS_PREDICT_FUNCTION")
    assert main(["--registry", REG, "retrain", "--data", "s3://modelops-test/data"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "MODELOPS_PREDICT_FUNCTION" in err and "--dry-run" in err


def test_unknown_stack_is_a_one_line_error(deployed, capsys):
    assert main(["--registry", REG, "retrain", "--stack", "no-such-stack", "--data", "s3://modelops-test/data"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no-such-stack" in err
