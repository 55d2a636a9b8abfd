"""The documented API: a Powertools APIGatewayRestResolver with validation and an OpenAPI document
generated from these routes and from the served model's feature schema (every feature is a named,
typed property, and the worked example is a real row the model answers with 200).

The document is at /openapi.json and the Swagger UI page at /docs (docs_page.py: a small page that loads
pinned Swagger UI assets from a CDN); both answer with Cache-Control and an ETag, and 304 to If-None-Match.
Security is declared per operation, as the front door enforces it (template.yaml's ApiType, see front_door.py):
with the REST API, POST /predict and GET /model need the API key; GET /health, /openapi.json and /docs are open.

Built on the first request that is not POST /predict (see fastpath.py), and rebuilt if the model
becomes available later, so the document always describes the model being served.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.
import logging
from typing import TYPE_CHECKING, Annotated, Any, Union

from .. import __version__
from ..model.schema import MAX_STRING_LENGTH, NUMBER
from .docs_page import DOCS_MAX_AGE, DOCUMENT_MAX_AGE, cache_headers, etag, not_modified, swagger_page
from .errors import ApiError
from .negotiation import JSON, XML, choose_format, header, render
from .service import Backend, Reply

if TYPE_CHECKING:
    from .model_holder import ServedModel

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
logger = logging.getLogger(__name__)

XML_NOTE = (
    "Send `Accept: application/xml` to get the same data as XML: objects become elements named by "
    'their keys, lists become repeated `<item>` elements, null is an empty element with nil="true". '
    "Any Accept value other than JSON or XML gets 406."
)


def build_resolver(gateway: Backend, model: "ServedModel | None") -> Any:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.exceptions import NotFoundError
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
    from aws_lambda_powertools.event_handler.openapi.models import Server
    from aws_lambda_powertools.event_handler.openapi.params import Body

    models = _DocumentModels(model, gateway.limits.max_rows)
    door = gateway.front_door
    app = APIGatewayRestResolver(enable_validation=True)
    allowed = {"/predict": "POST", "/model": "GET", "/health": "GET"}
    if gateway.docs_enabled:
        allowed.update({OPENAPI_PATH: "GET", DOCS_PATH: "GET"})

    def reply_response(reply: Reply) -> Response:
        return Response(
            status_code=reply.status, content_type=reply.content_type, body=reply.body, headers=reply.headers or None
        )

    def negotiated() -> str:
        return choose_format(header(app.current_event.headers, "accept"))

    def error_response(exc: ApiError) -> Response:
        try:
            fmt = negotiated()
        except ApiError:
            fmt = JSON
        return reply_response(gateway.error_reply(exc, fmt, app.current_event.request_context.request_id))

    # ---- routes -----------------------------------------------------------------------------
    @app.post(
        "/predict",
        operation_id="predict",
        tags=["prediction"],
        summary="Score rows with the served model",
        description=(
            "Rows go in as `instances` (one object per row) or in columnar form (`columns` + `data`), "
            f"1 to {gateway.limits.max_rows} rows, every feature present, numbers finite. "
            "Classifiers also return the probability of each class. Values the model never saw in training "
            "(a category outside the training data, a number outside its training range) are scored and listed "
            "in `warnings`, one list per row; the field is absent when no row has any. " + XML_NOTE
        ),
        responses=models.responses(200, 400, 406, 413, 415, 500, 503),
        security=door.secured(),
    )
    def predict(
        request: Annotated[
            models.request_type,  # type: ignore[name-defined]
            Body(
                openapi_examples=models.examples(),
                description="rows to score",
            ),
        ],
    ) -> Any:
        event = app.current_event
        return reply_response(
            gateway.predict(event.headers, event.body, bool(event.is_base64_encoded), event.request_context.request_id)
        )

    @app.get(
        "/model",
        operation_id="getModel",
        tags=["model"],
        summary="The served model: version, features, metrics",
        responses=models.responses(200, 406, 503, ok_model=models.ModelSummary),
        security=door.secured(),
    )
    def get_model() -> Any:
        fmt = negotiated()
        served = gateway.holder.get()
        if served is None:
            raise gateway.unavailable()
        summary = {**served.manifest.summary(), "max_rows": gateway.limits.max_rows}
        return Response(200, fmt, render(summary, fmt))

    @app.get(
        "/health",
        operation_id="health",
        tags=["model"],
        summary="200 when the model is loaded and serving",
        responses=models.responses(200, 406, 503, ok_model=models.Health),
        security=door.open_route_security(),
    )
    def health() -> Any:
        event = app.current_event
        return reply_response(gateway.health(event.headers, event.request_context.request_id))

    openapi_kwargs: dict[str, Any] = {
        "title": "modelops prediction API",
        "version": __version__,
        "description": (
            f"Online predictions from model '{gateway.model_name}' version {gateway.model_version}. "
            + door.description()
        ),
        "security_schemes": door.security_schemes(),
    }
    if gateway.docs_enabled:
        documents: dict[str, tuple[str, str]] = {}  # stage prefix -> (body, ETag)
        pages: dict[str, tuple[str, str]] = {}

        def cached(body: str, tag: str, content_type: str, max_age: int) -> Response:
            headers = cache_headers(tag, max_age)
            if not_modified(app.current_event.headers, tag):
                return Response(status_code=304, content_type=None, body="", headers=headers)
            return Response(status_code=200, content_type=content_type, body=body, headers=headers)

        @app.get(OPENAPI_PATH, include_in_schema=False)
        def openapi_document() -> Any:
            base = _base_path(app.current_event)
            if base not in documents:
                spec = _without_unused_422(
                    app.get_openapi_json_schema(servers=[Server(url=base or "/")], **openapi_kwargs)
                )
                documents[base] = (spec, etag(spec))
            return cached(*documents[base], JSON, DOCUMENT_MAX_AGE)

        @app.get(DOCS_PATH, include_in_schema=False)
        def docs_page() -> Any:
            base = _base_path(app.current_event)
            if base not in pages:
                page = swagger_page(openapi_kwargs["title"], f"{base}{OPENAPI_PATH}")
                pages[base] = (page, etag(page))
            return cached(*pages[base], "text/html; charset=utf-8", DOCS_MAX_AGE)

    # ---- errors -----------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    def on_api_error(exc: ApiError) -> Any:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def on_validation_error(exc: RequestValidationError) -> Any:
        first = (exc.errors() or [{}])[0]
        field = _field_path(first.get("loc", ()))
        return error_response(ApiError(400, "invalid_input", f"{field}: {first.get('msg', 'invalid value')}", field))

    @app.not_found
    def on_not_found(exc: NotFoundError) -> Any:
        path, method = app.current_event.path, app.current_event.http_method
        if path in allowed:
            return error_response(
                ApiError(
                    405,
                    "method_not_allowed",
                    f"{method} is not allowed on {path}; use {allowed[path]}",
                    field="method",
                    headers={"Allow": allowed[path]},
                )
            )
        return error_response(ApiError(404, "not_found", f"no such resource: {path}", field="path"))

    @app.exception_handler(Exception)
    def on_unexpected(exc: Exception) -> Any:
        logger.exception("request failed")
        return error_response(ApiError(500, "internal_error", "internal error; see the logs for this request id"))

    return app


def _without_unused_422(spec_json: str) -> str:
    """Powertools documents a 422 on every validated route; this API answers validation failures with 400."""
    import json

    spec = json.loads(spec_json)
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return json.dumps(spec)


def _field_path(location: Any) -> str:
    """pydantic's error location as this API names fields: instances[0].mean_radius."""
    out = ""
    for part in location:
        if part == "body" or part in ("InstancesRequest", "ColumnsRequest"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _base_path(event: Any) -> str:
    """The stage prefix clients see (/live), or nothing behind a custom domain or a local server."""
    stage = event.request_context.stage
    if stage and stage != "$default" and (event.request_context.path or "").startswith(f"/{stage}"):
        return f"/{stage}"
    return ""


class _DocumentModels:
    """pydantic models that describe the API for the OpenAPI document (the predict path itself
    validates with the feature schema, not with these)."""

    def __init__(self, model: "ServedModel | None", max_rows: int):
        from pydantic import BaseModel, ConfigDict, Field, create_model

        self.model = model
        self.max_rows = max_rows
        scalar = Union[float, str, None]  # noqa: UP007
        if model is not None:
            example = model.example_instance()
            fields: dict[str, Any] = {}
            for i, feature in enumerate(model.schema.features):
                kind: Any = float if feature.dtype == NUMBER else Annotated[str, Field(max_length=MAX_STRING_LENGTH)]
                if feature.is_bool:  # fitted as a bool column: true/false (or 1/0)
                    kind = bool
                elif feature.is_integer:
                    kind = int
                if feature.nullable:
                    kind = Union[kind, None]  # noqa: UP007
                if feature.is_bool:
                    info = "boolean"
                elif feature.dtype == NUMBER:
                    info = f"{'whole ' if feature.is_integer else ''}number; training data range {feature.min} to {feature.max}"
                else:
                    info = f"category; seen in training: {', '.join(feature.allowed or ())}"
                fields[f"f{i}"] = (kind, Field(alias=feature.name, description=info, examples=[example[feature.name]]))
            instance: Any = create_model("Instance", __config__=ConfigDict(extra="forbid"), **fields)
        else:
            instance = dict[str, scalar]  # type: ignore[valid-type]

        class InstancesRequest(BaseModel):
            model_config = ConfigDict(extra="allow", title="InstancesRequest")
            instances: list[instance] = Field(
                min_length=1,
                max_length=max_rows,  # type: ignore[valid-type]
                description="one object per row, keyed by feature name",
            )

        class ColumnsRequest(BaseModel):
            model_config = ConfigDict(extra="allow", title="ColumnsRequest")
            columns: list[str] = Field(min_length=1, description="feature names, each once, in any order")
            data: list[list[scalar]] = Field(
                min_length=1,
                max_length=max_rows,  # type: ignore[valid-type]
                description="rows of values in the order of `columns`",
            )

        class ModelRef(BaseModel):
            name: str
            version: str

        class PredictionWarning(BaseModel):
            feature: str = Field(description="the feature whose value the model never saw in training")
            code: str = Field(description="out_of_range (a number outside the training range) or unseen_category")
            message: str

        class PredictResponse(BaseModel):
            model: ModelRef
            variant: str = Field(description="experiment variant that answered (A = champion)")
            predictions: list[Union[str, float, int, bool, None]]  # noqa: UP007
            probabilities: list[dict[str, float]] | None = Field(
                default=None, description="classifiers only: probability of each class, keyed by class label"
            )
            warnings: list[list[PredictionWarning]] | None = Field(
                default=None,
                description="one list per row of the values the model never saw in training (the row is "
                "scored all the same); absent when no row has any",
            )
            request_id: str
            label_token: str | None = Field(
                default=None,
                description="send with POST /feedback to label this answer (bound to this request, its rows "
                "and its entity id; accepted for MODELOPS_LABEL_WINDOW_HOURS after the answer)",
            )

        class ErrorDetail(BaseModel):
            code: str = Field(description="machine-readable error code")
            message: str
            field: str | None = Field(description="the request field (or header) at fault")

        class ErrorResponse(BaseModel):
            error: ErrorDetail
            request_id: str | None = None

        class FeatureRef(BaseModel):
            name: str
            dtype: str

        class ModelSummary(BaseModel):
            name: str
            version: str
            task: str
            estimator: str
            created_at: str
            classes: list[Union[str, int, float, bool]] | None = None  # noqa: UP007
            target: str
            features: list[FeatureRef]
            metrics: dict[str, float]
            max_rows: int

        class Health(BaseModel):
            status: str
            model: ModelRef

        self.request_type = Union[InstancesRequest, ColumnsRequest]  # noqa: UP007
        self.PredictResponse = PredictResponse
        self.ErrorResponse = ErrorResponse
        self.ModelSummary = ModelSummary
        self.Health = Health

    def examples(self) -> dict[str, Any]:
        from aws_lambda_powertools.event_handler.openapi.models import Example

        if self.model is None:
            return {}
        row = self.model.example_instance()
        names = list(self.model.schema.names)
        return {
            "instances": Example(
                summary="one row as an object (a real row this model answers)", value={"instances": [row]}
            ),
            "columns": Example(
                summary="the same row in columnar form", value={"columns": names, "data": [[row[n] for n in names]]}
            ),
        }

    def responses(self, *statuses: int, ok_model: Any = None) -> dict[int, Any]:
        descriptions = {
            200: "answered",
            400: "invalid request: a feature is missing, unknown, of the wrong type or not finite, "
            "no rows, or malformed JSON; or the model refuses a value it never saw in training",
            406: "the Accept header asks for something other than JSON or XML",
            413: "too many rows, or the body is too large",
            415: "the body is not application/json",
            500: "the model failed on valid rows that lie within its training data (a server-side fault)",
            503: "the model could not be loaded; retry after the Retry-After seconds",
        }
        xml = {"schema": {"type": "string", "description": "the same data as XML"}}
        out: dict[int, Any] = {}
        for status in statuses:
            model = (ok_model or self.PredictResponse) if status == 200 else self.ErrorResponse
            out[status] = {"description": descriptions[status], "content": {JSON: {"model": model}, XML: xml}}
        return out
