"""The AppSpec of a CodeDeploy Lambda deployment: which function, alias and versions it moves.

For Lambda deployments, GetDeployment's `revision.appSpecContent` may carry only the content's sha256, without the
content itself; GetApplicationRevision, called with that revision, returns the content. Public production hooks read
it that way, some from `revision.string.content` and some from `revision.appSpecContent.content`, so both are read
(tests/handlers/test_rollout_hook.py uses both documented response shapes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.aws import aws_errors


@dataclass(frozen=True)
class LambdaAppSpec:
    function: str | None
    alias: str | None
    current_version: str | None
    target_version: str | None


def _content(revision: Mapping[str, Any] | None) -> str:
    revision = revision or {}
    for key in ("appSpecContent", "string"):
        content = (revision.get(key) or {}).get("content")
        if content:
            return str(content)
    return ""


def parse(content: str) -> LambdaAppSpec | None:
    """The first Lambda resource of an AppSpec (SAM and modelops write JSON; YAML is read when PyYAML is there)."""
    try:
        spec = json.loads(content)
    except ValueError:
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            return None
        try:
            spec = yaml.safe_load(content)
        except yaml.YAMLError:
            return None
    if not isinstance(spec, Mapping):
        return None
    for resource in spec.get("Resources") or []:
        for body in (resource or {}).values():
            props = (body or {}).get("Properties") or {}

            def text(key: str, props: Mapping[str, Any] = props) -> str | None:
                return str(props[key]) if props.get(key) not in (None, "") else None

            return LambdaAppSpec(text("Name"), text("Alias"), text("CurrentVersion"), text("TargetVersion"))
    return None


def of_deployment(codedeploy: Any, deployment: Mapping[str, Any]) -> LambdaAppSpec | None:
    """The AppSpec of a deployment (GetDeployment's deploymentInfo), fetched from its revision when only the hash
    came back."""
    revision = deployment.get("revision") or {}
    content = _content(revision)
    if not content and revision:
        application = deployment.get("applicationName")
        with aws_errors(f"reading the AppSpec of deployment {deployment.get('deploymentId')}"):
            fetched = codedeploy.get_application_revision(applicationName=application, revision=revision)
        content = _content(fetched.get("revision"))
    return parse(content) if content else None
