"""The predict function's objects from its environment: the champion's (and an A/B challenger's) model holder,
the experiment, and the gateway with its documented routes. The function's init phase calls build(); tests and
local tools call it with overrides instead of patching names.

Environment (besides the model's, see modelops.serving.model_holder):
    MODELOPS_MAX_ROWS, MODELOPS_MAX_BODY_BYTES   request limits (default 1000 rows, 1 MiB)
    MODELOPS_DOCS          on|off: serve /openapi.json and the Swagger UI at /docs (default on)
    MODELOPS_CAPTURE       on|off: capture lines for every answered request (see modelops.serving.capture)
    MODELOPS_CAPTURE_MAX_BYTES  largest capture line in bytes (default 200,000); larger captures are split
    MODELOPS_CORS_ORIGIN   when set, responses carry Access-Control-Allow-Origin with this value
    MODELOPS_CHALLENGER_VERSION  A/B: a second pinned model version served as variant B to the share of
                           requests that modelops.experiments.assignment assigns to it (MODELOPS_CHALLENGER_DIR for a
                           local artifact directory); unset = no experiment and no per-request flag lookup
    MODELOPS_LABEL_TOKEN_SECRET  the secret that signs each answer's `label_token` (see modelops.capture.labelsecret),
                           which POST /feedback requires; MODELOPS_AB_ID_HEADER / MODELOPS_AB_ID_FIELD name the
                           entity id the token is bound to (with or without an experiment)
    MODELOPS_API_TYPE, MODELOPS_API_AUTH  the front door and its authentication, for the OpenAPI document
                           (modelops.serving.front_door)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..capture import labelsecret
from ..core import env as settings
from ..experiments.assignment import DEFAULT_ID_FIELD, DEFAULT_ID_HEADER
from ..serving.body import Limits
from ..serving.capture import DEFAULT_MAX_LINE_BYTES, capture_enabled, max_line_bytes
from ..serving.fastpath import Gateway, running_in_aws
from ..serving.front_door import FrontDoor
from ..serving.model_holder import ModelHolder, ServedModel
from ..serving.service import Backend

logger = logging.getLogger(__name__)


def documented_routes(backend: Backend, model: ServedModel | None) -> Any:
    """The documented routes, imported on the first request that is not POST /predict."""
    from ..serving.api import build_resolver

    return build_resolver(backend, model)


def build(env: Mapping[str, str] | None = None, **overrides: Any) -> Gateway:
    """Configure from the environment and load the pinned model now (the function's init phase). Any Gateway
    argument given in `overrides` replaces the one the environment gives (a holder, a logger, metrics...)."""
    env = settings.mapping(env)
    holder = overrides.pop("holder", None)
    try:
        limits, docs, capture = (
            Limits.from_env(env),
            settings.flag("MODELOPS_DOCS", True, env=env),
            capture_enabled(env),
        )
        capture_max_bytes = max_line_bytes(env)
    except settings.ConfigError as exc:  # like a missing model setting: 503 on every request, the reason logged
        logger.error("predict function misconfigured: %s", exc)
        limits, docs, capture, capture_max_bytes = Limits(), False, False, DEFAULT_MAX_LINE_BYTES
        holder = holder or ModelHolder(None, config_error=str(exc))
    if holder is None:
        holder = ModelHolder.from_env(env)
        holder.load()
    given = "experiment" in overrides or "challenger" in overrides
    experiment, challenger = (None, None) if given else _experiment_from_env(env)
    settings_from_env: dict[str, Any] = dict(
        holder=holder,
        limits=limits,
        docs_enabled=docs,
        capture=capture,
        capture_max_bytes=capture_max_bytes,
        cors_origin=settings.text("MODELOPS_CORS_ORIGIN", env=env) or None,
        model_name=settings.text("MODELOPS_MODEL_NAME", env=env),
        pinned_version=settings.text("MODELOPS_MODEL_VERSION", env=env),
        experiment=experiment,
        challenger=challenger,
        label_secret=lambda: labelsecret.secret(env),
        id_header=settings.text("MODELOPS_AB_ID_HEADER", env=env) or DEFAULT_ID_HEADER,
        id_field=settings.text("MODELOPS_AB_ID_FIELD", env=env) or DEFAULT_ID_FIELD,
        front_door=FrontDoor.from_env(env),
        docs_routes=documented_routes,
    )
    gateway = Gateway(**{**settings_from_env, **overrides})
    if running_in_aws(env):
        gateway.handle = _traced(gateway.handle)  # type: ignore[method-assign]
    return gateway


def _experiment_from_env(env: Mapping[str, str]) -> tuple[Any, ModelHolder | None]:
    """The A/B experiment and the challenger's model holder, or (None, None) without a challenger."""
    challenger_version = settings.text("MODELOPS_CHALLENGER_VERSION", env=env)
    if not challenger_version:
        return None, None
    from ..experiments.assignment import Experiment

    try:
        experiment = Experiment.from_env(env)
    except Exception as exc:  # a broken experiment setup must not take the champion down
        logger.error("A/B experiment disabled: %s", exc)
        return None, None
    holder = ModelHolder.from_env(
        {
            **env,
            "MODELOPS_MODEL_VERSION": challenger_version,
            "MODELOPS_MODEL_DIR": settings.text("MODELOPS_CHALLENGER_DIR", env=env),
        }
    )
    holder.load()
    return experiment, holder


def _traced(handler: Callable[..., Any]) -> Callable[..., Any]:
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(handler)
