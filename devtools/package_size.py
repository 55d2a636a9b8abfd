"""Unzipped size of every Lambda function in a `sam build` output: its code plus all its layers.

Functions and layers are discovered from the built template (.aws-sam/build/template.yaml), so new functions are
measured without touching this script. Lambda's hard limit (262,144,000 bytes, function + layers, unzipped)
applies to every function; --limit PATTERN=BYTES sets a tighter one for functions whose logical id matches.

    python -m devtools.package_size [--build-dir .aws-sam/build] [--limit 'Predict*=200000000'] [--json out.json]

Exit status: 0 all within limits, 1 a function is over its limit, 2 the build output cannot be read.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import yaml_parse

LAMBDA_UNZIPPED_LIMIT = 262_144_000
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")


class BuildOutputError(Exception):
    """The build output is missing or cannot be interpreted."""


@dataclass
class FunctionSize:
    name: str
    code_bytes: int
    layers: dict[str, int]
    limit: int
    unmeasured: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.code_bytes + sum(self.layers.values())

    @property
    def ok(self) -> bool:
        return self.total <= self.limit


def load_template(path: Path) -> dict[str, Any]:
    try:
        template = yaml_parse(path.read_text())  # short tags in their long form, as SAM reads them
    except OSError as exc:
        raise BuildOutputError(f"cannot read {path}: {exc.strerror} (run `make build` first)") from exc
    except yaml.YAMLError as exc:
        raise BuildOutputError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise BuildOutputError(f"{path} has no Resources section")
    return template


def unzipped_size(path: Path) -> int:
    """Bytes Lambda would unpack: file contents under a directory, or the uncompressed members of a zip."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return sum(info.file_size for info in zf.infolist())
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        raise BuildOutputError(f"build artifact {path} does not exist")
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += (Path(root) / name).stat().st_size
    return total


def _refs(value: Any) -> list[Any]:
    """Layer entries: Refs to template resources (every branch of an Fn::If counts) or literal ARNs."""
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return [] if value["Ref"] == "AWS::NoValue" else [value["Ref"]]
        if "Fn::If" in value and isinstance(value["Fn::If"], list):
            return [ref for branch in value["Fn::If"][1:] for ref in _refs(branch)]
        return [json.dumps(value, sort_keys=True)]
    return [value] if isinstance(value, str) else []


def _code_location(props: dict[str, Any]) -> str | None:
    code = props.get("CodeUri", props.get("Code"))
    if isinstance(code, dict):
        return None
    return code if isinstance(code, str) else None


def measure(build_dir: Path, limits: list[tuple[str, int]] | None = None) -> list[FunctionSize]:
    """Measure every zip-packaged function of the built template in build_dir."""
    template = load_template(build_dir / "template.yaml")
    resources: dict[str, Any] = template["Resources"]
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    layer_sizes: dict[str, int] = {}
    results = []
    for name, resource in sorted(resources.items()):
        if not isinstance(resource, dict) or resource.get("Type") not in FUNCTION_TYPES:
            continue
        props = resource.get("Properties") or {}
        if props.get("PackageType", globals_fn.get("PackageType")) == "Image":
            continue
        if "InlineCode" in props:
            code_bytes = len(str(props["InlineCode"]).encode())
        else:
            location = _code_location(props) or _code_location(globals_fn)
            if location is None:
                raise BuildOutputError(f"{name} has no local CodeUri in the built template")
            code_bytes = unzipped_size(build_dir / location)
        layers: dict[str, int] = {}
        unmeasured: list[str] = []
        # SAM appends a function's Layers to the global ones.
        for ref in _refs(globals_fn.get("Layers", [])) + _refs(props.get("Layers", [])):
            layer = resources.get(ref)
            if isinstance(layer, dict) and layer.get("Type") in LAYER_TYPES:
                if ref not in layer_sizes:
                    layer_props = layer.get("Properties") or {}
                    content = layer_props.get("ContentUri", layer_props.get("Content"))
                    if not isinstance(content, str):
                        raise BuildOutputError(f"layer {ref} has no local ContentUri in the built template")
                    layer_sizes[ref] = unzipped_size(build_dir / content)
                layers[ref] = layer_sizes[ref]
            else:
                unmeasured.append(ref)
        results.append(FunctionSize(name, code_bytes, layers, _limit_for(name, limits or []), unmeasured))
    return results


def _limit_for(name: str, limits: list[tuple[str, int]]) -> int:
    matching = [limit for pattern, limit in limits if fnmatch.fnmatchcase(name.lower(), pattern.lower())]
    return min([LAMBDA_UNZIPPED_LIMIT, *matching])


def parse_limit(text: str) -> tuple[str, int]:
    pattern, sep, value = text.partition("=")
    try:
        limit = int(float(value))
    except ValueError:
        limit = 0
    if not sep or not pattern or limit <= 0:
        raise argparse.ArgumentTypeError(f"--limit must look like PATTERN=BYTES, got {text!r}")
    return pattern, limit


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def format_table(sizes: list[FunctionSize]) -> str:
    header = ("FUNCTION", "CODE MB", "LAYERS MB", "TOTAL MB", "LIMIT MB", "OK")
    rows = [
        (s.name, _mb(s.code_bytes), _mb(sum(s.layers.values())), _mb(s.total), _mb(s.limit), "yes" if s.ok else "NO")
        for s in sizes
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def results_document(sizes: list[FunctionSize]) -> dict[str, Any]:
    """The bench/results row format: one row per function, value in MB (10^6 bytes)."""
    return {
        "title": "Lambda package size (unzipped, function code + layers)",
        "rows": [
            {
                "case": s.name,
                "metric": "unzipped MB",
                "value": round(s.total / 1e6, 1),
                "target": f"<= {s.limit / 1e6:.1f}",
                "ok": s.ok,
            }
            for s in sizes
        ],
        "details": {
            s.name: {"code_bytes": s.code_bytes, "layers_bytes": s.layers, "total_bytes": s.total} for s in sizes
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--limit", type=parse_limit, action="append", default=[], metavar="PATTERN=BYTES")
    parser.add_argument("--json", type=Path, help="also write the figures in the bench/results format")
    args = parser.parse_args(argv)
    try:
        sizes = measure(args.build_dir, args.limit)
    except BuildOutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not sizes:
        print(f"note: no zip-packaged function in {args.build_dir / 'template.yaml'}; nothing to measure")
        return 0
    print(format_table(sizes))
    for s in sizes:
        for ref in s.unmeasured:
            print(f"warning: {s.name}: layer {ref} is not built by this template and is not counted", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results_document(sizes), indent=2) + "\n")
        tmp.replace(args.json)
    over = [s for s in sizes if not s.ok]
    for s in over:
        print(f"error: {s.name} is {s.total:,} bytes unzipped, over its {s.limit:,}-byte limit", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
