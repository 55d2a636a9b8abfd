"""Every scanner suppression in the IaC carries its reason next to it (checkov comment:, cfn-lint YAML comment)."""

from __future__ import annotations

import re

import yaml
from support.paths import ROOT

from devtools import package_size

TEMPLATE = ROOT / "template.yaml"
MIN_REASON = 20  # characters: long enough to say why, not just "n/a"


def test_every_checkov_skip_in_the_template_has_a_reason():
    resources = package_size.load_template(TEMPLATE)["Resources"]
    missing = []
    for name, resource in resources.items():
        skips = ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []
        for skip in skips:
            comment = str(skip.get("comment") or "") if isinstance(skip, dict) else ""
            if not re.fullmatch(r"CKV2?_[A-Z]+_\d+", str(skip.get("id") if isinstance(skip, dict) else skip)):
                missing.append(f"{name}: {skip!r} is not an id/comment entry")
            elif len(comment.strip()) < MIN_REASON:
                missing.append(f"{name}: {skip['id']} has no reason")
    assert missing == []


def ignore_check_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, check id, reason) for each cfn-lint ignore_checks entry; reason '' when none is written."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        flow = re.match(r"\s*ignore_checks:\s*\[([^\]]*)\]\s*(?:#\s*(.*))?$", line)
        if flow:
            found += [(i + 1, check.strip(), (flow.group(2) or "").strip()) for check in flow.group(1).split(",")]
            continue
        if re.match(r"\s*ignore_checks:\s*$", line):
            reason = ""
            for entry in lines[i + 1 :]:
                comment = re.match(r"\s*#\s*(.*)", entry)
                item = re.match(r"\s*-\s*([A-Z]+\d+)\s*(?:#\s*(.*))?$", entry)
                if comment:
                    reason = comment.group(1).strip()
                elif item:
                    found.append((i + 1, item.group(1), (item.group(2) or reason).strip()))
                    reason = ""
                else:
                    break
    return found


def test_every_cfn_lint_ignore_in_the_template_has_a_reason():
    entries = ignore_check_lines(TEMPLATE.read_text())
    missing = [f"template.yaml:{line} {check}" for line, check, reason in entries if len(reason) < MIN_REASON]
    assert missing == []


def test_the_cfn_lint_reason_reader_sees_both_styles():
    text = (
        "      ignore_checks: [ES6000]  # it is the dead-letter queue itself, nothing behind it\n"
        "      ignore_checks:\n"
        "        # stage access logging needs an account-level role\n"
        "        - ES2000\n"
        "        - WS1004\n"
    )
    assert ignore_check_lines(text) == [
        (1, "ES6000", "it is the dead-letter queue itself, nothing behind it"),
        (2, "ES2000", "stage access logging needs an account-level role"),
        (2, "WS1004", ""),
    ]


def test_every_project_wide_checkov_skip_has_a_reason_above_it():
    config_text = (ROOT / ".checkov.yaml").read_text()
    skipped = yaml.safe_load(config_text)["skip-check"]
    lines = config_text.splitlines()
    for check in skipped:
        index = next(i for i, line in enumerate(lines) if re.match(rf"\s*-\s*{check}\s*$", line))
        reason = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            reason.append(line.strip("# "))
        assert len(" ".join(reason)) >= MIN_REASON, f".checkov.yaml skips {check} without a reason"
