"""Lambda SnapStart runtime hooks for the predict function (template: PredictScalingMode=SnapStart).

With SnapStart, Lambda runs the function's init once when a version is published, snapshots the memory, and
resumes every new execution environment from that one snapshot. So:

before the snapshot (`warm_up`): the model is loaded and one prediction on its example row (the first golden
row, else the schema's midpoint row) runs through the gateway's request path, so lazy imports, numpy/sklearn
first-call costs and the orjson paths are paid once, in the snapshot, not on each restored environment's
first request. Its EMF metrics and capture lines are discarded (it is not traffic), no flag store or secret
is fetched, and the Powertools routes (GET /model, /openapi.json, /docs) are built too.

after each restore (`renew`): everything that must differ between environments or that may be stale is
renewed; see `renew` for each item and why.

The hooks come from the `snapshot_restore_py` module, which the AWS Lambda Python managed runtimes
(python3.12 and later) provide; it is not a dependency of the function. Where it is missing (local runs,
the local emulator, tests) `register` does nothing and the function behaves as before. Without SnapStart on
the function the runtime never calls the hooks.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import secrets
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..core import env as settings
from .events import rest_predict_event

if TYPE_CHECKING:
    from .fastpath import Gateway

WARM_UP_REQUEST_ID = "snapstart-warm-up"
logger = logging.getLogger(__name__)


def register(current: Callable[[], Gateway]) -> bool:
    """Register the hooks for the gateway `current()` returns when they run; False without the hooks module."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(lambda: warm_up(current()))
    register_after_restore(lambda: renew(current()))
    return True


# ---- before the snapshot ------------------------------------------------------------------------------------
def warm_up_event(instance: dict[str, Any]) -> dict[str, Any]:
    """A REST API proxy event for POST /predict with one row."""
    body = orjson.dumps({"instances": [instance]}).decode()
    return rest_predict_event(body, WARM_UP_REQUEST_ID, user_agent="modelops-snapstart-warm-up")


def warm_up(gateway: Gateway) -> int | None:
    """Load the model and answer one prediction through the request path; returns its status (None without a
    model). Never raises: a snapshot without a warm model still serves (it loads on the first request)."""
    model = gateway.holder.get() or gateway.holder.load()
    if model is None:
        logger.error("snapshot taken without a loaded model: %s", gateway.holder.error)
        return None
    event = warm_up_event(model.example_instance())
    experiment, label_secret = gateway.experiment, gateway.label_secret
    # No A/B flag document and no label token secret is fetched into the snapshot: the experiment is left out
    # of this one request, and its token is signed with a throwaway key (the signing code path still runs).
    throwaway = secrets.token_bytes(32)
    gateway.experiment, gateway.label_secret = None, lambda: throwaway
    try:
        # Metrics and capture lines are written to sys.stdout at call time: send them nowhere, so the warm-up
        # is not counted as traffic (Requests, Latency) nor captured for drift monitoring.
        with contextlib.redirect_stdout(io.StringIO()):
            # The class's handle, not the instance's: in AWS the instance's is wrapped by the X-Ray tracer,
            # which needs an invocation's trace segment, and there is none before the snapshot.
            response = type(gateway).handle(gateway, event, None)
            _warm_challenger(gateway, event)
    except Exception:  # a failed warm-up costs only the first request's latency: never fail the publish
        logger.exception("SnapStart warm-up prediction failed")
        return None
    finally:
        gateway.experiment, gateway.label_secret = experiment, label_secret
    status = int(response.get("statusCode", 0))
    if status != 200:
        logger.warning("SnapStart warm-up prediction answered %s: %s", status, response.get("body"))
    with contextlib.suppress(Exception):  # the routes behind GET /model and /docs: import and build them now
        gateway.resolver()
    _preimport_clients()
    return status


def _warm_challenger(gateway: Gateway, event: dict[str, Any]) -> None:
    """The A/B challenger's first prediction, when one is loaded (its estimator has first-call costs too)."""
    challenger = gateway.challenger.get() if gateway.challenger is not None else None
    if challenger is None:
        return
    from .service import CHALLENGER_VARIANT, handle_predict

    payload = {"instances": [challenger.example_instance()]}
    handle_predict(challenger, payload, str(event["requestContext"]["requestId"]), gateway.limits, CHALLENGER_VARIANT)


def _preimport_clients() -> None:
    """Import (but do not build) what the label token secret and the A/B flag store are read with: the imports
    are paid in the snapshot; the clients are built after restore, by the first request that needs them."""
    from ..capture import labelsecret

    if settings.text(labelsecret.SECRET_ENV) or settings.text("MODELOPS_CHALLENGER_VERSION"):
        with contextlib.suppress(ImportError):
            from ..adapters import aws

            aws.preimport()
            from aws_lambda_powertools.utilities import parameters  # noqa: F401


# ---- after each restore -------------------------------------------------------------------------------------
def renew(gateway: Gateway) -> None:
    """Renew, in every restored environment, what the snapshot would otherwise share or keep stale."""
    # Random number generators: `random` and numpy's global generator are seeded once, at init, so every
    # environment restored from one snapshot would draw the same sequence (the A/B bucket of requests without
    # an entity id, Powertools log sampling, anything a model draws at predict time). Reseed both from the OS.
    # `secrets`, `os.urandom` and `uuid.uuid4` (request ids) read the OS on every call and need nothing.
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    _renew_clients(gateway)
    # Cached timestamps: the time of the last failed load is a time.monotonic() value of the machine that took
    # the snapshot, meaningless here; forget it so a model missing from the snapshot is loaded on the next request.
    for holder in (gateway.holder, gateway.challenger):
        if holder is not None and holder.model is None:
            holder._last_attempt = None


def _renew_clients(gateway: Gateway) -> None:
    """Drop every AWS client, session and cached value built before the snapshot. A client holds credentials
    resolved at init (they may have expired since the snapshot was taken) and a pool of connections that
    were open on another machine; cached values (the label token secret, the A/B flag document) may have
    changed. Each is rebuilt on first use, in this environment."""
    # Powertools Parameters: the Secrets Manager (and any SSM or AppConfig) provider with its boto3 client
    # and its cache, which holds the label token secret once a request has read it.
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities.parameters import clear_caches

        clear_caches()
    from ..adapters import aws

    aws.forget_default_session()  # the module-level session boto3.client() builds clients from
    # The S3 client a registry load may have been given; the next load (only when the model is missing) builds
    # its own. The KMS client that verifies signatures is built per load, so none is kept.
    for holder in (gateway.holder, gateway.challenger):
        source = getattr(holder, "source", None) if holder is not None else None
        if source is not None and getattr(source, "s3", None) is not None:
            source.s3 = None
    if gateway.experiment is not None:
        _renew_flag_store(gateway.experiment)


def _renew_flag_store(experiment: Any) -> None:
    """A/B: rebuild the AppConfig flag store (its AppConfig client and its cached flag document). A local flag
    file store has neither. The assignment salt is the challenger version, not random, so it stays."""
    store = experiment.flags.store
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags

    if isinstance(store, AppConfigStore):
        fresh = AppConfigStore(
            environment=store.environment,
            application=store.application,
            name=store.name,
            max_age=store.cache_seconds,
        )
        experiment.flags = FeatureFlags(store=fresh)
