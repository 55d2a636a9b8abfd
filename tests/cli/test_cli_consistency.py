"""The CLI behaves the same way everywhere: --registry and --json in either place, one rule for model names,
--model on every batch command, and every user error in one line with a non-zero exit and no traceback.
Registries and batch buckets are local directories here (no AWS needed); test_cli.py covers S3."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from modelops.core.errors import ModelOpsError
from modelops.core.names import check_model_name, model_name_from
from modelops.registry import Registry

from modelops_cli import _leaves, build_parser, main

SCRIPT = Path(sys.executable).with_name("modelops")


@pytest.fixture(autouse=True)
def no_handlers_left_by_other_tests(monkeypatch):
    """The CLI installs no log handler; a Powertools Logger made by an earlier test keeps one on the 'modelops'
    logger, writing to that test's captured (now closed) stdout."""
    monkeypatch.setattr(logging.getLogger("modelops"), "handlers", [])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[")]  # [1/4] progress lines
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "error:" in lines[0], err
    return lines[0]


@pytest.fixture
def reg(tmp_path) -> str:
    path = tmp_path / "registry"
    path.mkdir()
    return str(path)


@pytest.fixture
def trained(reg, capsys) -> str:
    code, out, err = run(capsys, "--json", "train", "--registry", reg, "--alias", "champion")
    assert code == 0, err
    return json.loads(out)["version"]


# ---- --registry and --json, before or after the command ----------------------------------------------------
def test_every_command_takes_registry_and_json_after_its_name():
    leaves = _leaves(build_parser())
    assert len(leaves) > 15
    for leaf in leaves:
        assert "--registry" in leaf._option_string_actions, leaf.prog
        assert "--json" in leaf._option_string_actions, leaf.prog


def test_registry_works_in_both_places_and_the_later_one_wins(reg, trained, capsys, tmp_path):
    before = run(capsys, "--json", "--registry", reg, "models", "list")
    after = run(capsys, "models", "list", "--registry", reg, "--json")
    mixed = run(capsys, "--registry", str(tmp_path / "elsewhere"), "models", "list", "--json", "--registry", reg)
    assert before[0] == after[0] == mixed[0] == 0
    assert json.loads(before[1]) == json.loads(after[1]) == json.loads(mixed[1])
    assert json.loads(after[1])[0]["model"] == "breast-cancer"
    code, out, _ = run(capsys, "models", "show", "breast-cancer", "--registry", reg, "--json")
    assert code == 0 and json.loads(out)["version"] == trained


def test_registry_from_the_environment_still_applies(reg, trained, capsys, monkeypatch):
    monkeypatch.setenv("MODELOPS_REGISTRY", reg)
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0 and json.loads(out)[0]["model"] == "breast-cancer"


# ---- batch: --model on run, backfill and status --------------------------------------------------------------
def test_batch_status_and_backfill_take_model(reg, trained, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("MODELOPS_MODEL_NAME", raising=False)
    bucket = tmp_path / "data"
    bucket.mkdir()
    code, out, err = run(
        capsys, "batch", "status", "--bucket", str(bucket), "--registry", reg, "--model", "breast-cancer",
        "--date", "2026-01-01", "--json",
    )  # fmt: skip
    assert code == 1 and json.loads(out)["status"] == "pending", err
    code, out, err = run(
        capsys, "batch", "backfill", "--bucket", str(bucket), "--registry", reg, "--model", "breast-cancer",
        "--from", "2026-01-01", "--to", "2026-01-01", "--id-columns", "", "--chunk-rows", "10",
        "--upstream-marker", "", "--json",
    )  # fmt: skip
    assert code == 1 and "no input objects" in json.loads(out)[0]["detail"]
    for action in ("run", "backfill", "status"):
        leaf = next(p for p in _leaves(build_parser()) if p.prog == f"modelops batch {action}")
        assert "--model" in leaf._option_string_actions


# ---- one rule for model names -------------------------------------------------------------------------------
BAD_NAMES = ["a/b", "../x", "a b", "Upper", "-leading", "", "x" * 64, "a\nb"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_by_the_rule(name):
    with pytest.raises(ModelOpsError, match="is not valid"):
        check_model_name(name)


def test_good_names_pass_and_file_names_become_names():
    for name in ("breast-cancer", "m", "0abc", "a" * 63, "churn-2024"):
        assert check_model_name(name) == name
    assert model_name_from("My Churn_Data 2024") == "my-churn-data-2024"
    assert model_name_from("___") is None


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "show", "a/b"],
        ["models", "list", "../x"],
        ["models", "history", "a b"],
        ["models", "promote", "a/b", "20260101T000000000Z-abcdef"],
        ["models", "rollback", "../x"],
        ["train", "--model-name", "a b"],
        ["batch", "run", "--bucket", "/tmp", "--model", "a/b"],
        ["batch", "status", "--bucket", "/tmp", "--model", "../x"],
        ["retrain", "--dry-run", "--model-name", "a/b", "--data", "/tmp"],
    ],
)
def test_the_cli_refuses_bad_names_in_one_line(reg, capsys, argv):
    code, _, err = run(capsys, "--registry", reg, *argv)
    assert code == 1 and "is not valid" in one_line_error(err)


def test_registry_methods_refuse_bad_names(reg):
    registry = Registry(reg)
    calls = [
        lambda n: registry.list_versions(n),
        lambda n: registry.manifest(n, "champion"),
        lambda n: registry.manifest(n, "20260101T000000000Z-abcdef"),
        lambda n: registry.load(n, "champion"),
        lambda n: registry.get_alias(n, "champion"),
        lambda n: registry.aliases(n),
        lambda n: registry.resolve(n, "champion"),
        lambda n: registry.set_alias(n, "champion", "20260101T000000000Z-abcdef"),
        lambda n: registry.rollback(n, "champion"),
        lambda n: registry.record(n, "event", {}),
        lambda n: registry.history(n),
    ]
    for call in calls:
        for name in ("a/b", "../x", "a b"):
            with pytest.raises(ModelOpsError, match="is not valid"):
                call(name)
    assert not any(Path(reg).rglob("*.json"))  # nothing was written under a bad name


def test_training_refuses_bad_names():
    from modelops.model.dataset import load_builtin
    from modelops.model.training import train

    with pytest.raises(ModelOpsError, match="model name 'a/b' is not valid"):
        train(load_builtin("breast_cancer"), "a/b")


def test_the_default_name_is_made_from_the_file_name(reg, capsys, tmp_path):
    data = tmp_path / "My Churn_2024.csv"
    data.write_text("a,y\n" + "".join(f"{i},{'x' if i % 2 else 'z'}\n" for i in range(20)))
    code, out, err = run(capsys, "--json", "train", "--registry", reg, "--data", str(data), "--target", "y")
    assert code == 0, err
    assert json.loads(out)["name"] == "my-churn-2024"


# ---- every user error: one line, non-zero, no traceback ------------------------------------------------------
CSV_CASES = {
    "one row per class": ("a,b,y\n1,2,x\n3,4,z\n", "class 'x' has only 1 row"),
    "all-empty column": ("a,b,y\n" + "".join(f"{i},,{'x' if i % 2 else 'z'}\n" for i in range(10)), "no values"),
    "numeric target with missing values": ("a,y\n1,1.5\n2,NA\n3,2.5\n4,3.5\n", "missing value(s)"),
    "stray value in a numeric column": (
        "a,y\n" + "".join(f"{'?' if i == 3 else i},{'x' if i % 2 else 'z'}\n" for i in range(10)),
        "column 'a' is numeric but has '?'",
    ),
    "only a header": ("a,y\n", "0 data rows"),
    "ragged row": ("a,y\n1,x\n2,z,3\n4,x\n", "line 3: 3 fields, expected 2"),
    "unterminated quote": ('a,y\n1,x\n"2,z\n', "line 3"),
    "too few rows to split": ("a,y\n1,x\n2,z\n3,x\n4,z\n", "cannot split 4 rows"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_training_data_errors_are_one_line(reg, capsys, tmp_path, case):
    text, expected = CSV_CASES[case]
    data = tmp_path / "tiny.csv"
    data.write_text(text)
    code, _, err = run(capsys, "train", "--registry", reg, "--data", str(data), "--target", "y")
    assert code == 1
    assert expected in one_line_error(err)


def test_a_two_row_regression_trains_with_valid_json_metrics(reg, capsys, tmp_path):
    data = tmp_path / "tiny.csv"
    data.write_text("a,y\n1,1.5\n2,2.5\n")
    code, out, err = run(capsys, "--json", "train", "--registry", reg, "--data", str(data), "--target", "y")
    assert code == 0, err
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the metrics"))
    assert result["task"] == "regression" and "r2" not in result["metrics"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["models", "list", "--bogus"], "unrecognized arguments: --bogus"),
        (["models", "history", "breast-cancer", "--limit", "abc"], "invalid int value: 'abc'"),
        (["nosuchcommand"], "invalid choice"),
        (["batch", "run", "--date", "2026-13-01", "--bucket", "/tmp", "--model", "m"], "not a date"),
        (["batch", "run", "--chunk-rows", "0", "--bucket", "/tmp", "--model", "m"], "--chunk-rows must be positive"),
        (["train", "--target", "y"], "--target is only used with --data"),
        (["train", "--as-missing", "?"], "--as-missing is only used with --data"),
        (["train", "--data", "/nonexistent.csv", "--target", "y"], "data file not found"),
        (["models", "show", "breast-cancer", "nope"], "no 'nope' alias"),
    ],
)
def test_usage_and_input_errors_are_one_line(reg, capsys, argv, expected):
    code, _, err = run(capsys, "--registry", reg, *argv)
    assert code != 0
    assert expected in one_line_error(err)


def test_an_unwritable_output_is_one_line(reg, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "train", "--registry", reg, "--out", str(blocker / "sub"))
    assert code == 1 and str(blocker) in one_line_error(err)


def test_retrain_dry_run_without_a_champion_is_one_line_and_writes_nothing(reg, capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    before = sorted(Path(reg).rglob("*"))
    code, _, err = run(capsys, "retrain", "--dry-run", "--registry", reg, "--data", str(data))
    assert code == 1 and "has no 'champion' alias" in one_line_error(err)
    assert sorted(Path(reg).rglob("*")) == before and not any(data.iterdir())


def test_retrain_dry_run_with_a_champion_writes_nothing(reg, trained, capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = {p: p.stat().st_mtime_ns for p in Path(reg).rglob("*")}
    code, out, err = run(capsys, "--json", "retrain", "--dry-run", "--registry", reg, "--data", str(data))
    assert code == 0, err
    assert json.loads(out)["outcome"] == "skipped"  # no labelled data yet
    assert {p: p.stat().st_mtime_ns for p in Path(reg).rglob("*")} == files
    assert not any(data.iterdir())


def test_a_labelled_data_location_that_does_not_exist_is_one_line(reg, trained, capsys, tmp_path):
    code, _, err = run(capsys, "retrain", "--dry-run", "--registry", reg, "--data", str(tmp_path / "nowhere"))
    assert code == 1 and "labelled data" in one_line_error(err)


# ---- a closed pipe on stdout ----------------------------------------------------------------------------------
def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    return env


def test_a_closed_pipe_ends_quietly(reg, trained, tmp_path):
    """`modelops models list | head -0`: the reader is gone before anything is written. The read end is closed
    before the process starts, so every write fails, as it would once head has exited."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [str(SCRIPT), "--registry", reg, "models", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=_env(tmp_path),
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == "" and proc.returncode == 141


def test_head_in_a_shell_pipeline_prints_no_traceback(reg, trained, tmp_path):
    proc = subprocess.run(
        f"'{SCRIPT}' --registry '{reg}' models history breast-cancer | head -0",
        shell=True,
        capture_output=True,
        env=_env(tmp_path),
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
