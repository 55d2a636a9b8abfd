"""Layer build recipes, the package-size gate and samconfig, checked without network or Docker.

The real `sam build` downloads wheels, so it runs in `make build`. Here the layer Makefiles run for real against
a tiny wheel made on the spot (pip is pointed at a local folder with PIP_NO_INDEX/PIP_FIND_LINKS), which
exercises their clean-up, stripping and bytecode steps under python3.12 when that interpreter is available.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from support.paths import ROOT

from devtools import package_size
from devtools.layer_smoke import find_python312

TEMPLATE = ROOT / "template.yaml"


def _python312() -> str | None:
    try:
        return find_python312(None)
    except SystemExit:
        return None


PYTHON312 = _python312()
needs_python312 = pytest.mark.skipif(PYTHON312 is None, reason="python3.12 (the Lambda runtime) is not installed")


def _makefile_layers() -> dict[str, Path]:
    template = package_size.load_template(TEMPLATE)
    return {
        name: ROOT / res["Properties"]["ContentUri"]
        for name, res in template["Resources"].items()
        if res.get("Type") == "AWS::Serverless::LayerVersion"
        and (res.get("Metadata") or {}).get("BuildMethod") == "makefile"
    }


def test_every_makefile_layer_has_its_build_target():
    layers = _makefile_layers()
    assert {"MLRuntimeLayer", "ModelOpsLayer"} <= set(layers)
    for name, directory in layers.items():
        makefile = (directory / "Makefile").read_text()
        assert f"\nbuild-{name}:" in makefile, f"{directory}/Makefile has no build-{name} target"


@pytest.mark.parametrize("layer", ["MLRuntimeLayer", "ModelOpsLayer", "ParquetLayer"])
def test_layer_recipe_targets_lambda_arm64_python312(layer, tmp_path):
    directory = _makefile_layers()[layer]
    dry_run = subprocess.run(
        ["make", "-n", "-C", str(directory), f"build-{layer}", f"ARTIFACTS_DIR={tmp_path}", "STRIP=strip"],
        capture_output=True,
        text=True,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    recipe = dry_run.stdout
    # manylinux_2_28 must come first: with manylinux2014 alone pip picks old numpy/scipy/scikit-learn.
    assert "--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64" in recipe
    assert "--only-binary=:all: --python-version 3.12 --implementation cp" in recipe
    assert "-name tests" in recipe and "-prune -exec rm -rf" in recipe and "'*.pyi'" in recipe
    assert "--strip-unneeded" in recipe and "-not -path '*.libs/*'" in recipe
    assert "compileall" in recipe


def test_no_lambda_module_imports_the_cli():
    """The modelops layer ships without modelops_cli, so nothing else in the package may import it."""
    package = ROOT / "layers" / "modelops" / "modelops"
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                names = [base if node.level == 0 else "." * node.level + base]
            if any(n.startswith("modelops_cli") or n.lstrip(".").startswith("cli") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


# ---- the layer Makefiles, run for real on a local wheel ---------------------------------------------------------


def _write_wheel(folder: Path, name: str, files: dict[str, str]) -> None:
    """A minimal py3-none-any wheel (what pip needs: METADATA, WHEEL and RECORD)."""
    dist_info = f"{name}-1.0.dist-info"
    contents = {
        **files,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
        for path, text in contents.items():
            wheel.writestr(path, text)


def _run_layer_make(source: Path, layer: str, out: Path, wheels: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_CONSTRAINT": ""}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(
        ["make", "-C", str(source), f"build-{layer}", f"ARTIFACTS_DIR={out}", f"PYTHON312={PYTHON312}", "STRIP="],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def local_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    # Named like the runtime layer's pure-Python module that its Makefile imports to prove bytecode is used.
    _write_wheel(
        wheels,
        "threadpoolctl",
        {
            "threadpoolctl.py": "VALUE = 42\n",
            "threadpoolctl.pyi": "VALUE: int\n",
            "helper/__init__.py": "",
            "helper/tests/__init__.py": "",
            "helper/tests/test_helper.py": "def test_x():\n    pass\n",
        },
    )
    _write_wheel(
        wheels,
        "pandas",
        {"pandas/__init__.py": "FRAME = 'df'\n", "pandas/tests/__init__.py": "", "pandas/core.pyi": "FRAME: str\n"},
    )
    return wheels


@needs_python312
def test_mlruntime_layer_build_ships_bytecode_without_tests(tmp_path, local_wheels):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("Makefile", "zipdir.py"):
        shutil.copy(ROOT / "layers" / "mlruntime" / name, source / name)
    (source / "requirements.txt").write_text("threadpoolctl==1.0\n")
    (source / "requirements-dataframe.txt").write_text("pandas==1.0\n")
    out = tmp_path / "out"
    result = _run_layer_make(source, "MLRuntimeLayer", out, local_wheels)
    assert result.returncode == 0, result.stdout + result.stderr
    site = out / "python"
    assert (site / "threadpoolctl.pyc").is_file() and not (site / "threadpoolctl.py").exists()
    assert not (site / "threadpoolctl.pyi").exists()
    assert not (site / "helper" / "tests").exists()
    assert (site / "helper" / "__init__.pyc").is_file()
    assert "extension modules left unstripped" in result.stderr
    # pandas is not importable from the layer's path: it ships as an archive, cleaned up the same way
    assert not (site / "pandas").exists() and not list(site.glob("pandas-*"))
    with zipfile.ZipFile(out / "dataframe" / "pandas.zip") as archive:
        names = set(archive.namelist())
    assert "pandas/__init__.pyc" in names and "pandas/__init__.py" not in names
    assert not [n for n in names if "/tests/" in n or n.endswith((".pyi", "/RECORD"))]
    assert "pandas-1.0.dist-info/METADATA" in names
    # The shipped bytecode is what python3.12 imports.
    probe = subprocess.run(
        [
            PYTHON312,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(site)!r}); import threadpoolctl as t; "
            "print(t.VALUE, t.__spec__.loader.__class__.__name__)",
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.split() == ["42", "SourcelessFileLoader"], probe.stderr


@needs_python312
def test_modelops_layer_build_ships_package_sources_and_bytecode_without_cli(tmp_path, local_wheels):
    source = tmp_path / "src"
    shutil.copytree(ROOT / "layers" / "modelops", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (source / "requirements.txt").write_text("threadpoolctl==1.0\n")
    out = tmp_path / "out"
    result = _run_layer_make(source, "ModelOpsLayer", out, local_wheels)
    assert result.returncode == 0, result.stdout + result.stderr
    package = out / "python" / "modelops"
    assert (package / "core" / "errors.py").is_file()
    assert (package / "core" / "__pycache__" / "errors.cpython-312.pyc").is_file()
    assert not (out / "python" / "modelops_cli").exists()
    # Unchecked-hash pycs: flags word 0b01 (hash-based, do not check the source).
    flags = int.from_bytes((package / "core" / "__pycache__" / "errors.cpython-312.pyc").read_bytes()[4:8], "little")
    assert flags == 0b01
    assert (out / "python" / "threadpoolctl.pyc").is_file()


# ---- package-size gate on a synthetic build tree ---------------------------------------------------------------

BUILT_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Conditions:
  WithExtra: !Equals [!Ref Extra, "yes"]
Globals:
  Function:
    Runtime: python3.12
    Layers:
      - !Ref BaseLayer
Resources:
  PredictFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: PredictFunction
      Handler: app.lambda_handler
      Layers:
        - !If [WithExtra, !Ref ExtraLayer, !Ref "AWS::NoValue"]
        - arn:aws:lambda:us-east-1:123456789012:layer:external:1
  BatchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: BatchFunction.zip
      Handler: app.lambda_handler
  ImageFunction:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      ImageUri: somewhere
  BaseLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: BaseLayer
  ExtraLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: ExtraLayer
  Bucket:
    Type: AWS::S3::Bucket
"""


def _file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


@pytest.fixture
def build_dir(tmp_path):
    (tmp_path / "template.yaml").write_text(BUILT_TEMPLATE)
    _file(tmp_path / "PredictFunction" / "app.py", 1_000)
    _file(tmp_path / "PredictFunction" / "pkg" / "data.bin", 2_000)
    _file(tmp_path / "BaseLayer" / "python" / "big.so", 50_000)
    _file(tmp_path / "ExtraLayer" / "python" / "extra.py", 7_000)
    with zipfile.ZipFile(tmp_path / "BatchFunction.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", "y" * 30_000)
    return tmp_path


def test_sizes_are_discovered_from_the_built_template(build_dir):
    sizes = {s.name: s for s in package_size.measure(build_dir)}
    assert set(sizes) == {"PredictFunction", "BatchFunction"}  # image functions have no zip limit
    predict = sizes["PredictFunction"]
    assert predict.code_bytes == 3_000
    assert predict.layers == {"BaseLayer": 50_000, "ExtraLayer": 7_000}  # global layers + every Fn::If branch
    assert predict.total == 60_000
    assert predict.unmeasured == ["arn:aws:lambda:us-east-1:123456789012:layer:external:1"]
    assert sizes["BatchFunction"].code_bytes == 30_000  # uncompressed size of the zip's members
    assert sizes["BatchFunction"].total == 80_000
    assert all(s.limit == package_size.LAMBDA_UNZIPPED_LIMIT for s in sizes.values())


def test_limit_patterns_apply_case_insensitively_and_tightest_wins(build_dir):
    sizes = {s.name: s for s in package_size.measure(build_dir, [("*predict*", 59_999), ("*", 70_000)])}
    assert sizes["PredictFunction"].limit == 59_999 and not sizes["PredictFunction"].ok
    assert sizes["BatchFunction"].limit == 70_000 and not sizes["BatchFunction"].ok


def test_main_fails_above_a_limit_and_writes_bench_rows(build_dir, tmp_path, capsys):
    out = tmp_path / "results" / "package_size.json"
    code = package_size.main(["--build-dir", str(build_dir), "--limit", "*predict*=59999", "--json", str(out)])
    assert code == 1
    captured = capsys.readouterr()
    assert "PredictFunction is 60,000 bytes unzipped, over its 59,999-byte limit" in captured.err
    assert "FUNCTION" in captured.out and "BatchFunction" in captured.out
    document = json.loads(out.read_text())
    rows = {r["case"]: r for r in document["rows"]}
    assert rows["PredictFunction"] == {
        "case": "PredictFunction",
        "metric": "unzipped MB",
        "value": 0.1,
        "target": "<= 0.1",
        "ok": False,
    }
    assert rows["BatchFunction"]["ok"] is True
    assert document["details"]["BatchFunction"]["total_bytes"] == 80_000


def test_main_passes_within_limits(build_dir, capsys):
    assert package_size.main(["--build-dir", str(build_dir), "--limit", "*predict*=60000"]) == 0


def test_main_reports_a_missing_build_in_one_line(tmp_path, capsys):
    assert package_size.main(["--build-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read") and "make build" in err and "\n" not in err


def test_missing_artifact_is_an_error_not_a_zero(build_dir):
    shutil.rmtree(build_dir / "ExtraLayer")
    with pytest.raises(package_size.BuildOutputError, match="ExtraLayer"):
        package_size.measure(build_dir)


def test_bad_limit_option_is_rejected(build_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        package_size.main(["--build-dir", str(build_dir), "--limit", "predict"])
    assert exc.value.code == 2
    assert "PATTERN=BYTES" in capsys.readouterr().err


# ---- samconfig ------------------------------------------------------------------------------------------------


def _overrides(text: str) -> dict[str, str]:
    import shlex

    return dict(item.split("=", 1) for item in shlex.split(text))


def test_the_layers_pandas_is_the_one_models_are_fitted_with():
    def pin(path: Path) -> str:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return next(line for line in lines if line.startswith("pandas=="))

    layer = pin(ROOT / "layers" / "mlruntime" / "requirements-dataframe.txt")
    assert layer == pin(ROOT / "requirements-dev.txt")


def test_samconfig_has_dev_and_prod_matching_the_template():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    parameters = package_size.load_template(TEMPLATE).get("Parameters", {})
    stacks = {"default": "modelops-dev", "prod": "modelops-prod"}
    for env, stack in stacks.items():
        assert config[env]["global"]["parameters"]["stack_name"] == stack
        assert config[env]["build"]["parameters"] == {"cached": True, "parallel": True}
        deploy = config[env]["deploy"]["parameters"]
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
        assert deploy["resolve_s3"] is True
        overrides = _overrides(deploy["parameter_overrides"])
        unknown = set(overrides) - set(parameters)
        assert not unknown, f"[{env}] overrides parameters the template does not declare: {sorted(unknown)}"
        for name, value in overrides.items():
            allowed = parameters[name].get("AllowedValues")
            assert allowed is None or value in [str(a) for a in allowed], f"[{env}] {name}={value}"
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


def test_main_module_runs_as_a_script(build_dir):
    result = subprocess.run(
        [sys.executable, "-m", "devtools.package_size", "--build-dir", str(build_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "PredictFunction" in result.stdout
