"""The package's dependency rules, read from the source with `ast` (no module is imported). docs/architecture.md
explains them:

- boto3 and botocore are imported only under modelops/adapters/: every other module gets its clients from
  modelops.adapters.aws or has them injected, so tests swap AWS without patching module names;
- each part of the package imports only the parts below it (ALLOWED), lazily or not: `core` nothing, `ports` only
  `core`, `adapters` only `core` and `ports`, `model` no context, and nothing but `wiring` sits on top;
- the documented routes (serving.api) and the direct path (serving.fastpath) both depend on serving.service and
  never on each other, and the serving core (service, body, negotiation, errors) imports neither;
- nothing in the modelops package imports the command line (modelops_cli, which is not in the layer).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

PACKAGE = ROOT / "layers" / "modelops" / "modelops"

# What each part may import (besides itself). A new edge is a design decision: add it here and to the code map.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "ports": {"core"},
    "adapters": {"core", "ports"},
    "model": {"core", "ports", "adapters"},
    "monitoring": {"core", "model"},
    "registry": {"core", "ports", "adapters", "model"},
    "capture": {"core", "ports", "adapters"},
    "rollout": {"core", "ports", "adapters", "model", "registry", "serving"},
    "batch": {"core", "ports", "adapters", "model", "monitoring", "registry"},
    "retrain": {"core", "ports", "adapters", "model", "monitoring", "registry", "capture", "rollout"},
    "experiments": {"core", "ports", "adapters", "model", "monitoring", "registry", "capture", "batch"},
    "serving": {"core", "adapters", "model", "registry", "capture", "experiments"},
    "wiring": {
        "core",
        "ports",
        "adapters",
        "model",
        "monitoring",
        "registry",
        "capture",
        "rollout",
        "batch",
        "retrain",
        "experiments",
        "serving",
    },
}
SERVING_CORE = ("service.py", "body.py", "negotiation.py", "errors.py")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _part(path: Path) -> str:
    """The top-level part a module belongs to: its subpackage, or its own name for a top-level module."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    """Absolute names of what `path` imports (relative imports resolved), optionally outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PACKAGE)
    package = ["modelops", *rel.parent.parts]
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


def _parts_imported(path: Path) -> set[str]:
    """The package's parts that `path` imports (a name imported from the package root counts as its part)."""
    parts = set()
    for name in _imports(path):
        pieces = name.split(".")
        if pieces[0] != "modelops" or len(pieces) < 2:
            continue
        if (PACKAGE / pieces[1]).is_dir() or (PACKAGE / f"{pieces[1]}.py").is_file():
            parts.add(pieces[1])
    return parts - {_part(path)}


def test_the_rules_see_imports_of_every_form(tmp_path, monkeypatch):
    pkg = tmp_path / "modelops" / "serving"
    pkg.mkdir(parents=True)
    source = pkg / "x.py"
    source.write_text(
        "import boto3\nfrom botocore import exceptions\nfrom ..adapters import aws\nfrom . import api\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .fastpath import Gateway\n"
        "def f():\n    import botocore.session\n    from ..retrain.run import Retrainer\n"
    )
    (tmp_path / "modelops" / "adapters").mkdir()
    (tmp_path / "modelops" / "retrain").mkdir()
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "modelops")
    names = _imports(source, runtime_only=True)
    assert {"boto3", "botocore", "botocore.session", "modelops.adapters.aws", "modelops.serving.api"} <= names
    assert "modelops.serving.fastpath" not in names
    assert "modelops.serving.fastpath" in _imports(source)
    assert _parts_imported(source) == {"adapters", "retrain"}  # a lazy import counts; the module's own part not


def test_only_the_adapters_import_boto3_or_botocore():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if n.split(".")[0] in ("boto3", "botocore"))
        for path in _modules()
        if _part(path) != "adapters"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_part_of_the_package_has_a_rule():
    parts = {_part(p) for p in _modules()} - {"__init__"}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_parts_below_it(part):
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_parts_imported(path) - ALLOWED[part])
        for path in _modules()
        if _part(path) == part
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_rules_point_one_way():
    """No two parts may each import the other, directly or through others."""

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in ALLOWED[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert [p for p in ALLOWED if p in reaches(p)] == []


@pytest.mark.parametrize("core", SERVING_CORE)
def test_the_serving_core_does_not_depend_on_the_routes_or_the_direct_path(core):
    names = _imports(PACKAGE / "serving" / core)
    assert not {n for n in names if n.startswith(("modelops.serving.api", "modelops.serving.fastpath"))}


def test_the_routes_and_the_direct_path_never_import_each_other():
    assert not {n for n in _imports(PACKAGE / "serving" / "api.py") if n.startswith("modelops.serving.fastpath")}
    assert not {n for n in _imports(PACKAGE / "serving" / "fastpath.py") if n.startswith("modelops.serving.api")}


def test_the_package_does_not_import_the_command_line():
    offenders = {
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if any(n.startswith("modelops_cli") for n in _imports(path))
    }
    assert offenders == set()


def _documented_module(path: Path) -> str | None:
    """How the code map names a module: `part/module`, `module` at the top, `part` for a package whose
    __init__ holds code; None for an __init__ that holds only its docstring."""
    rel = path.relative_to(PACKAGE)
    if path.name == "__init__.py":
        body = ast.parse(path.read_text()).body
        holds_code = any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)
        return "/".join(rel.parent.parts) if holds_code and rel.parent.parts else None
    return "/".join(rel.with_suffix("").parts)


def test_the_code_map_lists_every_module_of_the_package():
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page.split("## The modules of `modelops`", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_/]+)` \|", section, re.M))
    present = {name for p in _modules() if (name := _documented_module(p))}
    assert present - listed == set(), "docs/architecture.md does not list these modules"
    assert listed - present == set(), "docs/architecture.md lists modules that do not exist"


def test_no_test_module_imports_another():
    """Shared test code lives in tests/support/, never in a test module."""
    tests = ROOT / "tests"
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
