"""The predict function's request loop: API Gateway REST proxy events in, proxy responses out (HTTP API and
function URL events, payload format 2.0, are answered the same way in their own shape: events.py).

POST /predict takes a direct path (header checks, orjson, the feature schema's fast path, one
predict_proba, orjson) that calls the same `service.handle_predict` as the documented Powertools
route. Every other request (GET /model, GET /health, /openapi.json, /docs, unknown paths and
methods) goes to the documented routes (modelops.serving.api), a Powertools APIGatewayRestResolver that is
imported and built on first use, so a cold start pays only for what predictions need.

Built from the environment by modelops.wiring.predict, which also injects the documented routes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..capture import labelsecret, labeltoken
from ..core import env as settings
from ..core.errors import ModelFault
from ..experiments.assignment import DEFAULT_ID_FIELD, DEFAULT_ID_HEADER, entity_id_from
from . import events
from .body import Limits, read_json
from .capture import DEFAULT_MAX_LINE_BYTES, CaptureStats, emit_capture, emit_failure
from .errors import ApiError, model_unavailable
from .front_door import FrontDoor
from .metrics import RequestMetrics
from .model_holder import ModelHolder
from .negotiation import JSON, XML, check_json_body, choose_format, header, render
from .service import CHALLENGER_VARIANT, CHAMPION_VARIANT, DocsRoutes, Reply, handle_predict

PREDICT_PATH = "/predict"
HEALTH_PATH = "/health"
logger = logging.getLogger(__name__)


def running_in_aws(env: Mapping[str, str]) -> bool:
    """True inside a deployed Lambda with X-Ray available (not the local emulator, not tests)."""
    return bool(
        env.get("AWS_LAMBDA_FUNCTION_NAME")
        and env.get("AWS_XRAY_DAEMON_ADDRESS")
        and not env.get("AWS_SAM_LOCAL")
        and env.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")
    )


class Gateway:
    def __init__(
        self,
        holder: ModelHolder,
        limits: Limits,
        *,
        docs_enabled: bool = True,
        capture: bool = False,
        capture_max_bytes: int = DEFAULT_MAX_LINE_BYTES,
        cors_origin: str | None = None,
        model_name: str = "",
        pinned_version: str = "",
        log: Any = None,
        metrics: RequestMetrics | None = None,
        experiment: Any = None,
        challenger: ModelHolder | None = None,
        label_secret: Callable[[], bytes] | None = None,
        id_header: str = DEFAULT_ID_HEADER,
        id_field: str = DEFAULT_ID_FIELD,
        front_door: FrontDoor | None = None,
        docs_routes: DocsRoutes | None = None,
    ):
        self.holder = holder
        self.docs_routes = docs_routes  # builds the documented routes (modelops.serving.api); None: only POST /predict
        self.front_door = front_door or FrontDoor()  # what the OpenAPI document says about authentication
        self.label_secret = label_secret or labelsecret.secret
        self.id_header, self.id_field = id_header, id_field
        self.experiment = experiment  # modelops.experiments.assignment.Experiment, or None when no A/B test runs
        self.challenger = challenger
        self.limits = limits
        self.docs_enabled = docs_enabled
        self.capture = capture
        self.capture_max_bytes = capture_max_bytes
        self.extra_headers = {"Access-Control-Allow-Origin": cors_origin, "Vary": "Origin"} if cors_origin else {}
        model = holder.model
        self.model_name = model.model_ref["name"] if model else model_name or "unknown"
        self.model_version = model.model_ref["version"] if model else pinned_version or "unknown"
        self.log = log if log is not None else _powertools_logger()
        self.metrics = metrics or RequestMetrics(self.model_name, self.model_version)
        self.challenger_metrics = (
            RequestMetrics(self.model_name, experiment.challenger_version, CHALLENGER_VARIANT)
            if experiment is not None
            else None
        )
        self._resolver: Any = None
        self._resolver_model: Any = None

    # ---- entry point ---------------------------------------------------------------------------
    def handle(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """REST API proxy events, and HTTP API (payload format 2.0) and function URL events, which get the
        same answers in the 2.0 shape (see events.py). Anything else is refused with a 400."""
        if isinstance(event, Mapping) and events.is_v2(event):
            rest = events.rest_event(event)
            if rest is None:
                return events.v2_response(self.unsupported_event("a payload format 2.0 event without a method or path"))
            return events.v2_response(self.handle_rest(rest, context))
        if not isinstance(event, Mapping) or not events.is_rest(event):
            return self.unsupported_event("not an API Gateway or function URL event")
        return self.handle_rest(event, context)

    def unsupported_event(self, why: str) -> dict[str, Any]:
        self.log.warning("unsupported event", extra={"why": why})
        message = (
            f"{why}: expected an API Gateway REST proxy, HTTP API (payload format 2.0) or Lambda function URL event"
        )
        return self.error_reply(ApiError(400, "unsupported_event", message, field="event"), JSON).proxy(
            self.extra_headers
        )

    def handle_rest(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        if event.get("httpMethod") == "POST" and (
            event.get("path") == PREDICT_PATH or event.get("resource") == PREDICT_PATH
        ):
            return self.predict_event(event)
        if event.get("httpMethod") == "GET" and event.get("path") == HEALTH_PATH:  # probes skip the resolver
            request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
            return self.health(event.get("headers"), request_id).proxy(self.extra_headers)
        try:
            return self.route_event(event, context)
        except Exception:  # not an API Gateway event, or a bug: log it, never crash the runtime
            self.log.exception("request failed")
            reply = self.error_reply(ApiError(500, "internal_error", "internal error; see the logs"), JSON)
            return reply.proxy(self.extra_headers)

    def predict_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
        return self.predict(
            event.get("headers"), event.get("body"), bool(event.get("isBase64Encoded")), request_id
        ).proxy(self.extra_headers)

    # ---- GET /health --------------------------------------------------------------------------
    def health(self, headers: Mapping[str, str] | None, request_id: str) -> Reply:
        """200 with the served model when it is loaded, else 503 (also the documented route's answer)."""
        self.log.set_correlation_id(request_id)
        fmt = JSON
        try:
            fmt = choose_format(header(headers, "accept"))
            model = self.holder.get()
            if model is None:
                raise self.unavailable()
            return Reply(200, render({"status": "ok", "model": model.model_ref}, fmt), fmt)
        except ApiError as exc:
            return self.error_reply(exc, fmt, request_id)

    # ---- POST /predict -------------------------------------------------------------------------
    def predict(self, headers: Mapping[str, str] | None, body: Any, is_base64: bool, request_id: str) -> Reply:
        started = time.perf_counter()
        self.log.set_correlation_id(request_id)
        fmt, rows, score, metrics, warned = JSON, 0, None, self.metrics, 0
        variant = CHAMPION_VARIANT
        captured: CaptureStats | None = None
        try:
            fmt = choose_format(header(headers, "accept"))
            check_json_body(header(headers, "content-type"))
            payload = read_json(body, is_base64, self.limits.max_body_bytes)
            model = self.holder.get()
            variant, entity_id = CHAMPION_VARIANT, None
            if self.experiment is not None:
                model, variant, entity_id, metrics = self._assign(headers, payload, model, metrics)
            if model is None:
                raise self.unavailable()
            document, prediction = handle_predict(model, payload, request_id, self.limits, variant)
            rows, score, warned = len(prediction.predictions), prediction.score(), prediction.warning_count()
            if self.experiment is None:
                entity_id = self._entity_of(headers, payload)
            token = self.label_token(request_id, entity_id, rows, str(model.model_ref["version"]))
            if token is not None:
                document["label_token"] = token
            if self.capture:
                captured = emit_capture(
                    model,
                    prediction,
                    payload,
                    request_id,
                    variant,
                    entity_id=entity_id,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                    max_bytes=self.capture_max_bytes,
                    body=None if is_base64 else body,
                )
            reply = Reply(200, render(document, fmt), fmt)
        except ApiError as exc:
            reply = self.error_reply(exc, fmt, request_id)
        except ModelFault as exc:  # valid rows within the training data: the model (or its runtime) is at fault
            self.log.exception("the model failed on valid rows", extra={"reason": str(exc)})
            reply = self.error_reply(
                ApiError(500, "model_error", f"the model failed on valid rows (request {request_id}); see the logs"),
                fmt,
                request_id,
            )
        except Exception:  # a bug, never the client's input: log it with the request id, answer 500
            self.log.exception("POST /predict failed")
            reply = self.error_reply(
                ApiError(500, "internal_error", f"internal error (request {request_id})"), fmt, request_id
            )
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if self.capture and reply.status >= 500:  # failed requests count in each variant's error rate
            emit_failure(request_id, variant, metrics.dimensions["ModelVersion"], reply.status, elapsed_ms)
        metrics.emit(reply.status, elapsed_ms, rows, score, warned, captured)
        return reply

    def _entity_of(self, headers: Mapping[str, str] | None, payload: Any) -> str | None:
        """The entity id a request names when no experiment runs; an unusable one is ignored, as are other
        top-level fields (the label token is then bound to no entity)."""
        from ..core.errors import InputError

        try:
            return entity_id_from(
                headers, payload if isinstance(payload, dict) else None, self.id_header, self.id_field
            )
        except InputError:
            return None

    def label_token(self, request_id: str, entity_id: str | None, rows: int, model_version: str) -> str | None:
        """The answer's label token; None (the prediction is still answered, but cannot be labelled) when the
        signing secret cannot be read."""
        try:
            secret = self.label_secret()
        except labelsecret.LabelSecretUnavailable:
            self.log.error("label token secret unavailable; answered without a label_token", exc_info=True)
            return None
        return labeltoken.issue(
            secret, request_id=request_id, entity_id=entity_id, rows=rows, model_version=model_version
        )

    def _assign(
        self, headers: Mapping[str, str] | None, payload: Any, champion: Any, metrics: RequestMetrics
    ) -> tuple[Any, str, str | None, RequestMetrics]:
        """The model, variant, entity id and metrics for this request under the running A/B experiment.
        A challenger that cannot be loaded never fails a request: the champion answers (as variant A)."""
        from ..core.errors import InputError

        try:
            assignment = self.experiment.assign(headers, payload if isinstance(payload, dict) else None)
        except InputError as exc:
            raise ApiError(400, exc.code, str(exc), exc.field) from None
        if assignment.variant == CHALLENGER_VARIANT and self.challenger is not None:
            challenger = self.challenger.get()
            if challenger is not None:
                return challenger, CHALLENGER_VARIANT, assignment.entity_id, self.challenger_metrics or metrics
            self.log.warning("challenger unavailable; serving the champion", extra={"reason": self.challenger.error})
        return champion, CHAMPION_VARIANT, assignment.entity_id, metrics

    def error_reply(self, exc: ApiError, fmt: str, request_id: str | None = None) -> Reply:
        if exc.status < 500:
            self.log.info("request refused", extra={"status": exc.status, "code": exc.code, "field": exc.field})
        body = exc.body()
        if request_id:
            body["request_id"] = request_id
        return Reply(exc.status, render(body, fmt if fmt in (JSON, XML) else JSON), fmt, dict(exc.headers))

    def unavailable(self) -> ApiError:
        self.log.error("model unavailable", extra={"reason": self.holder.error})
        return model_unavailable(self.holder.retry_after())

    # ---- everything else -----------------------------------------------------------------------
    def route_event(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        self.log.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
        resolver = self.resolver()
        response = resolver.resolve(dict(event), context if context is not None else _NoContext())
        if self.extra_headers:
            response.setdefault("multiValueHeaders", {}).update({k: [v] for k, v in self.extra_headers.items()})
        return response

    def resolver(self) -> Any:
        model = self.holder.get()
        if self._resolver is None or self._resolver_model is not model:  # the document describes the loaded model
            if self.docs_routes is None:
                raise LookupError("this gateway was built without documented routes (modelops.wiring.predict)")
            self._resolver = self.docs_routes(self, model)
            self._resolver_model = model
        return self._resolver


class _NoContext:
    """Stands in for the Lambda context when the gateway is driven directly (local tools, tests)."""

    function_name = "predict"
    aws_request_id = "local"
    memory_limit_in_mb = 0
    invoked_function_arn = ""


def _powertools_logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service=settings.raw("POWERTOOLS_SERVICE_NAME") or "modelops")
