"""modelops.core.env: one meaning for every setting word, and the only module that reads the environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from modelops.core import env
from modelops.core.env import ConfigError
from modelops.errors import ModelOpsError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "modelops" / "modelops"


@pytest.mark.parametrize("word", ["1", "true", "TRUE", "yes", "on", " On ", "enabled", "Enabled"])
def test_flag_true_words(word):
    assert env.flag("X", False, env={"X": word}) is True


@pytest.mark.parametrize("word", ["0", "false", "False", "no", "off", "OFF", "disabled", "", "  "])
def test_flag_false_words_and_empty(word):
    assert env.flag("X", True, env={"X": word}) is False


@pytest.mark.parametrize("default", [True, False])
def test_flag_unset_is_the_default(default):
    assert env.flag("X", default, env={}) is default


@pytest.mark.parametrize("word", ["y", "2", "truee", "enable", "o n"])
def test_flag_refuses_other_words_naming_the_variable_and_the_accepted_words(word):
    with pytest.raises(ConfigError) as caught:
        env.flag("MODELOPS_DOCS", True, env={"MODELOPS_DOCS": word})
    message = str(caught.value)
    assert message.startswith(f"MODELOPS_DOCS={word!r} is not a flag")
    for accepted in ("1", "true", "yes", "on", "enabled", "0", "false", "no", "off", "disabled"):
        assert accepted in message
    assert caught.value.name == "MODELOPS_DOCS"
    assert isinstance(caught.value, ModelOpsError)  # every handler and the CLI already report these


@pytest.mark.parametrize(("value", "expected"), [("12", 12), (" 7 ", 7), ("+3", 3), ("-4", -4), ("0", 0)])
def test_integer_reads_whole_numbers(value, expected):
    assert env.integer("N", 99, env={"N": value}) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_integer_unset_or_blank_is_the_default(value):
    assert env.integer("N", 99, env={} if value is None else {"N": value}) == 99


@pytest.mark.parametrize("value", ["1.5", "1e3", "1_000", "ten", "0x10", "12abc", "١٢"])
def test_integer_refuses_what_is_not_a_whole_number(value):
    with pytest.raises(ConfigError, match=r"^N='.*' is not a whole number$") as caught:
        env.integer("N", 1, env={"N": value})
    assert repr(value) in str(caught.value)


def test_integer_range_is_checked_both_ways():
    assert env.integer("N", 5, minimum=1, maximum=10, env={"N": "1"}) == 1
    assert env.integer("N", 5, minimum=1, maximum=10, env={"N": "10"}) == 10
    with pytest.raises(ConfigError, match=r"^N=0 is below the minimum 1$"):
        env.integer("N", 5, minimum=1, env={"N": "0"})
    with pytest.raises(ConfigError, match=r"^N=11 is above the maximum 10$"):
        env.integer("N", 5, maximum=10, env={"N": "11"})


@pytest.mark.parametrize(("value", "expected"), [("0.5", 0.5), ("24", 24.0), ("1e3", 1000.0), (" -2.5 ", -2.5)])
def test_number_reads_decimals(value, expected):
    assert env.number("F", 1.0, env={"F": value}) == expected


@pytest.mark.parametrize("value", ["abc", "1,5", "1_0", "nan", "inf", "-Infinity"])
def test_number_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(ConfigError, match=r"^F='.*' is not a (finite )?number$") as caught:
        env.number("F", 1.0, env={"F": value})
    assert repr(value) in str(caught.value)


def test_number_range_and_default():
    assert env.number("F", 0.3, env={}) == 0.3
    assert env.number("F", 0.3, env={"F": ""}) == 0.3
    with pytest.raises(ConfigError, match=r"^F=-0.1 is below the minimum 0$"):
        env.number("F", 0.3, minimum=0, env={"F": "-0.1"})
    with pytest.raises(ConfigError, match=r"^F=1.5 is above the maximum 1$"):
        env.number("F", 0.3, maximum=1, env={"F": "1.5"})


def test_a_long_value_is_cut_in_the_message():
    with pytest.raises(ConfigError) as caught:
        env.integer("N", 1, env={"N": "x" * 10_000})
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("value", [None, "", "  "])
def test_required_refuses_missing_or_blank(value):
    with pytest.raises(ConfigError, match=r"^MODELOPS_REGISTRY is not set$"):
        env.required("MODELOPS_REGISTRY", env={} if value is None else {"MODELOPS_REGISTRY": value})


def test_required_and_text_strip_blanks():
    assert env.required("R", env={"R": " s3://b/r "}) == "s3://b/r"
    assert env.text("T", "d", env={"T": " v "}) == "v"


def test_text_default_only_when_unset():
    assert env.text("T", "d", env={}) == "d"
    assert env.text("T", "d", env={"T": ""}) == ""  # set but empty is a value (e.g. no upstream marker)


def test_choice():
    assert env.choice("M", ("auto", "manual"), "auto", env={}) == "auto"
    assert env.choice("M", ("auto", "manual"), "auto", env={"M": " Manual "}) == "manual"
    with pytest.raises(ConfigError, match=r"^M='sometimes' is not one of auto, manual$"):
        env.choice("M", ("auto", "manual"), "auto", env={"M": "sometimes"})


def test_reads_the_process_environment_without_a_mapping(monkeypatch):
    monkeypatch.setenv("MODELOPS_TEST_SETTING", "enabled")
    assert env.flag("MODELOPS_TEST_SETTING", False) is True
    monkeypatch.setenv("MODELOPS_TEST_SETTING", "bad")
    with pytest.raises(ConfigError):
        env.integer("MODELOPS_TEST_SETTING", 1)
    assert env.snapshot()["MODELOPS_TEST_SETTING"] == "bad"


def test_core_env_imports_nothing_heavy():
    code = (
        "import sys; import modelops.core.env; "
        "heavy = {'numpy', 'boto3', 'botocore', 'sklearn', 'pandas', 'aws_lambda_powertools'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _environment_reads(path: Path) -> list[str]:
    """Every os.environ / os.getenv / os.putenv use, and `from os import environ|getenv`, in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"{path.name}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names} & {"environ", "getenv", "putenv", "environb"}
            found += [f"{path.name}:{node.lineno} from os import {n}" for n in sorted(names)]
    return sorted(found)


def test_the_scan_finds_environment_reads(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\nA = os.environ.get('X')\nB = os.getenv('Y')\nC = os.sep\n")
    assert _environment_reads(sample) == [
        "sample.py:2 from os import getenv",
        "sample.py:3 os.environ",
        "sample.py:4 os.getenv",
    ]


def test_only_core_env_reads_the_environment():
    """AWS runtime variables (AWS_LAMBDA_FUNCTION_NAME, POWERTOOLS_*) go through core.env too (env.raw or
    env.text), so this scan needs no allow-list."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "functions").glob("*/app.py"))
    reads = [hit for f in files if f != PACKAGE / "core" / "env.py" for hit in _environment_reads(f)]
    assert reads == []
