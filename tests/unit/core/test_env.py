"""modelops.core.env: one meaning for every setting word, and the only module that reads the environment."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from modelops.core import env
from modelops.core.env import ConfigError
from modelops.core.errors import ModelOpsError
from support.paths import ROOT

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
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    names = ("environ", "getenv", "putenv", "environb")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names and getattr(node.value, "id", None) == "os":
            found.append(f"{where}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            imported = {a.name for a in node.names} & set(names)
            found += [f"{where}:{node.lineno} from os import {n}" for n in sorted(imported)]
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


# ---- the readers use it: same words everywhere, and a bad value surfaces as each function reports configuration


@pytest.mark.parametrize(("word", "expected"), [("enabled", True), ("on", True), ("disabled", False), ("0", False)])
def test_capture_and_batch_flags_take_the_same_words(word, expected):
    from modelops.batch.config import BatchConfig
    from modelops.serving.capture import capture_enabled

    base = {"MODELOPS_DATA_BUCKET": "b", "MODELOPS_REGISTRY": "s3://b/r", "MODELOPS_MODEL_NAME": "m"}
    assert capture_enabled({"MODELOPS_CAPTURE": word}) is expected
    assert BatchConfig.from_env({**base, "MODELOPS_BATCH_REQUIRE_PREVIOUS": word}).require_previous is expected


def test_a_flag_typo_is_refused_not_read_as_off():
    from modelops.batch.config import BatchConfig
    from modelops.serving.capture import capture_enabled

    base = {"MODELOPS_DATA_BUCKET": "b", "MODELOPS_REGISTRY": "s3://b/r", "MODELOPS_MODEL_NAME": "m"}
    with pytest.raises(ConfigError, match="MODELOPS_CAPTURE='onn'"):
        capture_enabled({"MODELOPS_CAPTURE": "onn"})
    with pytest.raises(ConfigError, match="MODELOPS_BATCH_REQUIRE_PREVIOUS='ture'"):
        BatchConfig.from_env({**base, "MODELOPS_BATCH_REQUIRE_PREVIOUS": "ture"})


def test_capture_max_bytes_below_its_floor_is_refused_not_replaced():
    from modelops.serving.capture import MIN_MAX_LINE_BYTES, max_line_bytes

    assert max_line_bytes({"MODELOPS_CAPTURE_MAX_BYTES": str(MIN_MAX_LINE_BYTES)}) == MIN_MAX_LINE_BYTES
    with pytest.raises(ConfigError, match="MODELOPS_CAPTURE_MAX_BYTES=10 is below the minimum 1024"):
        max_line_bytes({"MODELOPS_CAPTURE_MAX_BYTES": "10"})


@pytest.mark.parametrize(
    ("name", "value"),
    [("MODELOPS_DOCS", "maybe"), ("MODELOPS_MAX_ROWS", "lots"), ("MODELOPS_MAX_ROWS", "0"), ("MODELOPS_CAPTURE", "y")],
)
def test_a_bad_predict_setting_answers_503_with_the_variable_in_the_log(
    monkeypatch, caplog, classifier_dir, name, value
):
    from support.api import invoke, proxy_event, serve_model

    golden = json.loads((classifier_dir / "golden.json").read_text())["instances"][:2]
    app = serve_model(monkeypatch, classifier_dir)
    assert invoke(app, proxy_event("POST", "/predict", {"instances": golden}))[0] == 200
    with caplog.at_level("ERROR"):
        app = serve_model(monkeypatch, classifier_dir, **{name: value})
    status, headers, answer = invoke(app, proxy_event("POST", "/predict", {"instances": golden}))
    assert status == 503 and answer["error"]["code"] == "model_unavailable" and int(headers["retry-after"]) >= 1
    assert name not in json.dumps(answer)  # the reason is for the logs, not the client
    logged = [r.getMessage() for r in caplog.records if "misconfigured" in r.getMessage()]
    assert logged and logged[0].startswith(f"predict function misconfigured: {name}=") and value in logged[0]


def test_batch_wait_settings_are_checked(monkeypatch):
    from modelops.batch.events import run_request

    monkeypatch.setenv("MODELOPS_BATCH_WAIT_ATTEMPTS", "3")
    assert run_request({"run_date": "2026-01-02"}, "UTC").max_attempts == 3
    monkeypatch.setenv("MODELOPS_BATCH_WAIT_ATTEMPTS", "0")
    with pytest.raises(ConfigError, match="MODELOPS_BATCH_WAIT_ATTEMPTS=0 is below the minimum 1"):
        run_request({"run_date": "2026-01-02"}, "UTC")
    monkeypatch.setenv("MODELOPS_BATCH_WAIT_ATTEMPTS", "3")
    monkeypatch.setenv("MODELOPS_BATCH_WAIT_SECONDS", "15m")
    with pytest.raises(ConfigError, match="MODELOPS_BATCH_WAIT_SECONDS='15m' is not a whole number"):
        run_request({"run_date": "2026-01-02"}, "UTC")


def test_label_window_is_checked():
    from modelops.capture import labelsecret

    assert labelsecret.window_seconds({labelsecret.WINDOW_ENV: "0.5"}) == 1800
    for bad, message in (("abc", "is not a number"), ("-1", "below the minimum 0"), ("0", "never be accepted")):
        with pytest.raises(ConfigError, match=message):
            labelsecret.window_seconds({labelsecret.WINDOW_ENV: bad})


def test_retrain_settings_name_the_variable():
    from modelops.wiring import retrain as lifecycle

    with pytest.raises(ConfigError, match="^MODELOPS_APPROVAL_MODE='sometimes' is not one of auto, manual$"):
        lifecycle.config_from_env({"MODELOPS_APPROVAL_MODE": "sometimes"})
    with pytest.raises(ConfigError, match="^MODELOPS_RETRAIN_MIN_ROWS='50.5' is not a whole number$"):
        lifecycle.config_from_env({"MODELOPS_RETRAIN_MIN_ROWS": "50.5"})
    with pytest.raises(ConfigError, match="^MODELOPS_REGISTRY is not set$"):
        lifecycle.registry_from_env({"MODELOPS_MODEL_NAME": "m"})
