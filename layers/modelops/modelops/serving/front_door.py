"""What the OpenAPI document says about authentication: the front door template.yaml puts before the predict
function (its ApiType parameter) decides it, and the function is told through its environment.

    MODELOPS_API_TYPE   rest (default) | http | url
    MODELOPS_API_AUTH   api-key (default; rest) | iam (http, url) | jwt (http with a JWT authorizer)

rest and http leave /health, /openapi.json and /docs open; a function URL has one auth type for every path,
so under url they need SigV4 too. SigV4 is declared as AWS does in its own OpenAPI exports: an apiKey scheme
on the Authorization header marked x-amazon-apigateway-authtype awsSigv4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core import env as settings

API_TYPES = ("rest", "http", "url")
AUTHS = ("api-key", "iam", "jwt")
API_KEY_HEADER = "x-api-key"
SCHEME_NAMES = {"api-key": "apiKey", "iam": "sigv4", "jwt": "jwt"}
ALLOWED_AUTH = {"rest": ("api-key",), "http": ("iam", "jwt"), "url": ("iam",)}


@dataclass(frozen=True)
class FrontDoor:
    api_type: str = "rest"
    auth: str = "api-key"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FrontDoor:
        api_type = (settings.text("MODELOPS_API_TYPE", env=env) or "rest").lower()
        auth = (settings.text("MODELOPS_API_AUTH", env=env) or ALLOWED_AUTH.get(api_type, ("api-key",))[0]).lower()
        if api_type not in API_TYPES:
            raise ValueError(f"MODELOPS_API_TYPE must be one of {', '.join(API_TYPES)}, not {api_type!r}")
        if auth not in ALLOWED_AUTH[api_type]:
            allowed = " or ".join(ALLOWED_AUTH[api_type])
            raise ValueError(f"MODELOPS_API_AUTH must be {allowed} with MODELOPS_API_TYPE={api_type}, not {auth!r}")
        return cls(api_type, auth)

    @property
    def scheme_name(self) -> str:
        return SCHEME_NAMES[self.auth]

    @property
    def open_routes(self) -> bool:
        """Whether /health, /openapi.json and /docs answer without credentials."""
        return self.api_type != "url"

    def secured(self) -> list[dict[str, list[str]]]:
        """The security of an operation that needs credentials."""
        return [{self.scheme_name: []}]

    def open_route_security(self) -> list[dict[str, list[str]]] | None:
        return None if self.open_routes else self.secured()

    def security_schemes(self) -> dict[str, Any]:
        from aws_lambda_powertools.event_handler.openapi.models import APIKey, HTTPBearer

        if self.auth == "api-key":
            scheme: Any = APIKey.model_validate({"name": API_KEY_HEADER, "in": "header"})
        elif self.auth == "jwt":
            scheme = HTTPBearer(bearerFormat="JWT", description="A JWT from the API's issuer (JwtIssuer)")
        else:
            service = "lambda" if self.api_type == "url" else "execute-api"
            scheme = APIKey.model_validate(
                {
                    "name": "Authorization",
                    "in": "header",
                    "description": f"AWS Signature Version 4 for service {service}",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            )
        return {self.scheme_name: scheme}

    def description(self) -> str:
        needs = {
            "api-key": f"an API key in the `{API_KEY_HEADER}` header",
            "iam": "an AWS Signature Version 4 signature (service "
            + ("`lambda`" if self.api_type == "url" else "`execute-api`")
            + ") from a principal allowed to invoke it",
            "jwt": "a JWT in `Authorization: Bearer <token>`",
        }[self.auth]
        if self.open_routes:
            return f"POST /predict and GET /model need {needs}; GET /health, /openapi.json and /docs do not."
        return f"Every route, /health, /openapi.json and /docs included, needs {needs}."
