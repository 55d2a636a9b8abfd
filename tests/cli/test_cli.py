"""The modelops CLI end to end against moto S3, including every user error it must report in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import one_line_error, run

from modelops_cli import main

REG = "s3://modelops-test/registry"


@pytest.fixture
def mixed_csv(tmp_path) -> Path:
    """A small churn-like table: numeric and categorical columns, some missing cells."""
    import random

    rng = random.Random(0)
    rows = ["tenure,monthly_charges,plan,region,churned"]
    for i in range(300):
        tenure = rng.randint(0, 72)
        charges = round(rng.uniform(20, 120), 2)
        plan = rng.choice(["basic", "plus", "pro"])
        region = rng.choice(["north", "south", ""])
        churned = "yes" if (charges > 80 and tenure < 24) or rng.random() < 0.1 else "no"
        rows.append(f"{tenure if i % 17 else ''},{charges},{plan},{region},{churned}")
    path = tmp_path / "churn.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_default_model_and_manage_aliases(s3, capsys):
    code, out, err = run(capsys, "--json", "train", "--registry", REG, "--alias", "champion")
    assert code == 0, err
    first = json.loads(out)
    assert first["name"] == "breast-cancer" and first["metrics"]["accuracy"] > 0.9
    code, out, _ = run(capsys, "--json", "train", "--registry", REG, "--estimator", "hgb")
    second = json.loads(out)["version"]

    code, out, _ = run(capsys, "--registry", REG, "models", "list")
    assert code == 0 and "breast-cancer" in out and first["version"] in out
    code, out, _ = run(capsys, "--json", "--registry", REG, "models", "list", "breast-cancer")
    versions = json.loads(out)
    assert [v["version"] for v in versions] == sorted([first["version"], second])
    assert versions[0]["aliases"] == ["champion"]

    code, out, _ = run(capsys, "--registry", REG, "models", "show", "breast-cancer")
    assert code == 0 and first["version"] in out and "mean_radius" in out

    code, out, err = run(
        capsys, "--registry", REG, "models", "promote", "breast-cancer", second, "--expect", first["version"]
    )
    assert code == 0, err
    code, out, err = run(
        capsys, "--registry", REG, "models", "promote", "breast-cancer", first["version"], "--expect", first["version"]
    )
    assert code == 1 and "not " in one_line_error(err)
    code, out, _ = run(capsys, "--json", "--registry", REG, "models", "rollback", "breast-cancer")
    assert json.loads(out)["version"] == first["version"]
    code, out, _ = run(capsys, "--json", "--registry", REG, "models", "history", "breast-cancer")
    assert [e["event"] for e in json.loads(out)][-1] == "rollback"


def test_train_on_a_csv_with_categoricals_infers_classification(s3, capsys, mixed_csv):
    code, out, err = run(capsys, "--json", "train", "--registry", REG, "--data", str(mixed_csv), "--target", "churned")
    assert code == 0, err
    result = json.loads(out)
    assert result["name"] == "churn" and result["task"] == "classification"
    code, out, _ = run(capsys, "--json", "--registry", REG, "models", "show", "churn", result["version"])
    manifest = json.loads(out)
    dtypes = {f["name"]: f["dtype"] for f in manifest["features"]}
    assert dtypes == {"tenure": "number", "monthly_charges": "number", "plan": "category", "region": "category"}
    assert manifest["classes"] == ["no", "yes"]


def test_train_regression_on_csv(s3, capsys, mixed_csv):
    code, out, err = run(
        capsys,
        "--json",
        "train",
        "--registry",
        REG,
        "--data",
        str(mixed_csv),
        "--target",
        "monthly_charges",
        "--model-name",
        "charges",
    )
    assert code == 0, err
    assert json.loads(out)["task"] == "regression"


@pytest.mark.parametrize(
    "case,expected",
    [
        ("missing_file", "data file not found"),
        ("missing_column", "target column 'nope' not found"),
        ("empty_csv", "is empty"),
        ("non_numeric_regression", "is not numeric"),
        ("data_without_target", "--data needs --target"),
    ],
)
def test_training_data_errors(s3, capsys, tmp_path, mixed_csv, case, expected):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    args = {
        "missing_file": ["--data", str(tmp_path / "nope.csv"), "--target", "y"],
        "missing_column": ["--data", str(mixed_csv), "--target", "nope"],
        "empty_csv": ["--data", str(empty), "--target", "y"],
        "non_numeric_regression": ["--data", str(mixed_csv), "--target", "plan", "--task", "regression"],
        "data_without_target": ["--data", str(mixed_csv)],
    }[case]
    code, _, err = run(capsys, "train", "--registry", REG, *args)
    assert code == 1
    assert expected in one_line_error(err)


def test_unknown_model_or_version(s3, capsys):
    code, _, err = run(capsys, "--registry", REG, "models", "show", "ghost", "20990101T000000Z-abcdef")
    assert code == 1 and "not found" in one_line_error(err)
    run(capsys, "train", "--registry", REG)
    code, _, err = run(capsys, "--registry", REG, "models", "show", "breast-cancer", "20990101T000000Z-abcdef")
    assert code == 1 and "version '20990101T000000Z-abcdef'" in one_line_error(err)


def test_missing_bucket(s3, capsys):
    code, _, err = run(capsys, "train", "--registry", "s3://no-such-bucket/registry")
    assert code == 1 and "bucket 'no-such-bucket' does not exist" in one_line_error(err)


def test_no_registry_option_uses_the_local_default_directory(capsys, tmp_path, monkeypatch):
    """Without --registry or MODELOPS_REGISTRY the CLI works on .modelops/registry, with no AWS at all."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and (tmp_path / ".modelops" / "registry").is_dir()


def test_no_credentials_in_a_real_process(tmp_path):
    """The installed console script, with no credentials anywhere: one line, exit 1, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(tmp_path),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    script = Path(sys.executable).with_name("modelops")
    proc = subprocess.run(
        [str(script), "--registry", "s3://any-bucket/x", "models", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no AWS credentials" in proc.stderr, proc.stderr


def test_every_command_has_help(capsys):
    from modelops_cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])
    assert exit_info.value.code == 0
    sub_actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name in sub_actions[0].choices:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
    assert "train" in capsys.readouterr().out
