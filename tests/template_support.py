"""Reading IAM statements out of a (translated) template for the template tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

NO_VALUE = {"Ref": "AWS::NoValue"}


def flatten(statements: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every statement, a conditional one (Fn::If) counting with each of its branches that is a statement."""
    for statement in statements:
        if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
            _, yes, no = statement["Fn::If"]
            yield from flatten(branch for branch in (yes, no) if branch != NO_VALUE)
        else:
            yield statement


def policy_statements(policies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for policy in policies for s in flatten(policy["PolicyDocument"]["Statement"])]
