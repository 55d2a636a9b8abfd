"""The one rule for model names, shared by the CLI, the registry, training and the template's ModelName."""

from __future__ import annotations

import re

from .errors import ModelOpsError

# The same as the template's ModelName AllowedPattern: names become S3 key segments, SSM parameter names
# and metric dimensions, so '/', '..' and spaces must never reach them.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME = re.compile(MODEL_NAME_PATTERN)


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise ModelOpsError(
            f"model name {shown} is not valid: use 1 to 63 lowercase letters, digits and hyphens, "
            "starting with a letter or digit"
        )
    return name


def model_name_from(text: str) -> str | None:
    """A valid model name made from a file name ('Churn Data_2024' -> 'churn-data-2024'), or None."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].rstrip("-")
    return slug if slug and _NAME.fullmatch(slug) else None
