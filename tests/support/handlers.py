"""Loading a function's handler module, functions/<name>/app.py, the way the Lambda runtime does at init."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"


def handler_path(name: str) -> Path:
    return FUNCTIONS / name / "app.py"


def load_handler(
    name: str,
    *,
    module_name: str | None = None,
    env: Mapping[str, str] | None = None,
    monkeypatch: Any = None,
    cached: bool = False,
) -> ModuleType:
    """functions/<name>/app.py imported anew under `module_name` (default "<name>_app"), so its module-level set-up
    runs again; with `env`, those variables are set through `monkeypatch` first (undone after the test).

    A fresh module is not put in sys.modules, so it never shadows another test's copy. With `cached=True` the module is
    imported once, registered in sys.modules under `module_name` and reused by later calls (handlers that re-read
    their environment through a reset function of their own)."""
    if env:
        if monkeypatch is None:
            raise ValueError("load_handler: env needs monkeypatch, so the variables are restored after the test")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    module_name = module_name or f"{name}_app"
    if cached and module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, handler_path(name))
    assert spec and spec.loader, name
    module = importlib.util.module_from_spec(spec)
    if cached:
        sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
