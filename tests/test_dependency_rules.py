"""The package's dependency rules, read from the source with `ast` (no module is imported):

- boto3 and botocore are imported only by modelops/adapters/aws.py, the adapter that builds clients and turns botocore
  failures into ModelOpsError; every other module gets its clients from it or has them injected, so tests swap
  AWS without patching module names;
- the serving core (service, body, negotiation, errors) never imports the Powertools routes or the gateway,
  and the routes import the gateway only for type checking;
- nothing in the modelops package imports the command line.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "layers" / "modelops" / "modelops"
AWS_ADAPTERS = {"aws.py"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    """Absolute names of what `path` imports (relative imports resolved), optionally outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    package = ["modelops", *path.relative_to(PACKAGE).parent.parts]
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_the_rules_see_imports_of_every_form(tmp_path, monkeypatch):
    pkg = tmp_path / "modelops" / "serving"
    pkg.mkdir(parents=True)
    source = pkg / "x.py"
    source.write_text(
        "import boto3\nfrom botocore import exceptions\nfrom ..aws import client\nfrom . import routes\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .gateway import Gateway\n"
        "def f():\n    import botocore.session\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "modelops")
    names = _imports(source, runtime_only=True)
    assert {"boto3", "botocore", "botocore.session", "modelops.adapters.aws.client", "modelops.serving.api"} <= names
    assert "modelops.serving.fastpath" not in names
    assert "modelops.serving.fastpath" in _imports(source)


def test_only_the_aws_adapter_imports_boto3_or_botocore():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if n.split(".")[0] in ("boto3", "botocore"))
        for path in _modules()
        if path.name not in AWS_ADAPTERS or path.parent != PACKAGE
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("core", ["service.py", "body.py", "negotiation.py", "errors.py"])
def test_the_serving_core_does_not_depend_on_the_routes_or_the_gateway(core):
    names = _imports(PACKAGE / "serving" / core)
    assert not {n for n in names if n.startswith(("modelops.serving.api", "modelops.serving.fastpath"))}


def test_the_routes_use_the_gateway_only_for_types():
    assert not {n for n in _imports(PACKAGE / "serving" / "routes.py", runtime_only=True) if "gateway" in n}


def test_the_package_does_not_import_the_command_line():
    offenders = {
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if "cli" not in path.relative_to(PACKAGE).parts and any(n.startswith("modelops_cli") for n in _imports(path))
    }
    assert offenders == set()


def test_the_code_map_lists_every_module_of_the_package():
    page = (PACKAGE.parents[2] / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", page, re.M))
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {
        p.parent.name for p in PACKAGE.glob("*/__init__.py")
    }
    assert present - listed == set(), "docs/architecture.md does not list these modules"
    assert listed - present == set(), "docs/architecture.md lists modules that do not exist"


def test_no_test_module_imports_another():
    """Shared test code lives in tests/support/ (and the *_support / *_helpers modules), never in a test module."""
    tests = PACKAGE.parents[2] / "tests"
    offenders = {}
    for path in sorted(tests.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = [
            n
            for node in ast.walk(tree)
            for n in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        ]
        bad = [n for n in names if n.split(".")[-1].startswith("test_") or n.startswith("tests.test_")]
        if bad:
            offenders[str(path.relative_to(tests))] = bad
    assert offenders == {}
