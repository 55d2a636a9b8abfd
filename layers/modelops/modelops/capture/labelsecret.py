"""The secret that signs label tokens (modelops.capture.labeltoken) and the window in which a label is accepted.

Environment (the predict and feedback functions):
    MODELOPS_LABEL_TOKEN_SECRET   name or ARN of the AWS Secrets Manager secret (template: LabelTokenSecret),
                                  read with Powertools Parameters and cached for CACHE_SECONDS
    MODELOPS_LABEL_WINDOW_HOURS   labels are accepted for this many hours after the prediction (default 72)

Without MODELOPS_LABEL_TOKEN_SECRET (tests, the local tools driving the functions in-process) tokens are signed
with LOCAL_DEV_SECRET, a fixed value anyone can read: it proves nothing and must never sign a deployed API's
tokens. The template always sets the variable, and `make serve` / `make demo` create the template's secret in
the local AWS, so the deployed code path runs there too.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core import env as settings
from ..core.errors import ModelOpsError

SECRET_ENV = "MODELOPS_LABEL_TOKEN_SECRET"
WINDOW_ENV = "MODELOPS_LABEL_WINDOW_HOURS"
DEFAULT_WINDOW_HOURS = 72.0
CACHE_SECONDS = 3600
LOCAL_DEV_SECRET = b"modelops-LOCAL-DEV-ONLY-label-token-secret-not-for-deployed-stacks"


class LabelSecretUnavailable(ModelOpsError):
    """The label token secret could not be read (retryable)."""


def secret(env: Mapping[str, str] | None = None) -> bytes:
    name = settings.text(SECRET_ENV, env=env)
    if not name:
        return LOCAL_DEV_SECRET
    from aws_lambda_powertools.utilities.parameters import get_secret

    try:
        value = get_secret(name, max_age=CACHE_SECONDS)
    except Exception as exc:  # GetParameterError, botocore errors: the caller answers "retry later"
        raise LabelSecretUnavailable(f"label token secret {name} could not be read: {exc}") from exc
    key = value.encode() if isinstance(value, str) else value
    if not isinstance(key, bytes) or not key:
        raise LabelSecretUnavailable(f"label token secret {name} is empty")
    return key


def window_seconds(env: Mapping[str, str] | None = None) -> float:
    hours = settings.number(WINDOW_ENV, DEFAULT_WINDOW_HOURS, minimum=0, env=env)
    if hours == 0:
        raise settings.ConfigError(f"{WINDOW_ENV}=0: labels would never be accepted", WINDOW_ENV)
    return hours * 3600.0
