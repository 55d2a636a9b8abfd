"""The Swagger UI page at /docs and HTTP caching for the open documentation routes.

The page is a few hundred bytes: it loads Swagger UI from a CDN at a pinned version, each asset with a
Subresource Integrity hash (a browser refuses an asset whose bytes differ), and the document from
/openapi.json. Powertools' enable_swagger either inlines the 1.7 MB of Swagger UI assets into every answer
or links them without integrity hashes, so the page is written here.

Pinned: swagger-ui-dist 5.31.0, the same bytes as the copy bundled with aws-lambda-powertools 3.37.0
(swagger-ui-bundle.min.js and swagger-ui.min.css there); the hashes are sha384 of those files.

Caching: both routes answer with Cache-Control and a strong ETag (a hash of the body); a request whose
If-None-Match names the current ETag gets 304 with no body.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping

from .negotiation import header

SWAGGER_UI_VERSION = "5.31.0"
SWAGGER_UI_BASE = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}"
SWAGGER_UI_JS = (
    f"{SWAGGER_UI_BASE}/swagger-ui-bundle.js",
    "sha384-cxafBeQ+zYROeFafGFxtFbnp1ICqeS9mG7+f0WWSHzhnrUvwg9Za5CCw6wgrHA7K",
)
SWAGGER_UI_CSS = (
    f"{SWAGGER_UI_BASE}/swagger-ui.css",
    "sha384-KX9Rx9vM1AmUNAn07bPAiZhFD4C8jdNgG6f5MRNvR+EfAxs2PmMFtUUazui7ryZQ",
)
DOCS_MAX_AGE = 3600  # the page changes only with the stage prefix
DOCUMENT_MAX_AGE = 300  # the document describes the deployed model version; revalidated with the ETag after this


def swagger_page(title: str, document_url: str) -> str:
    """The /docs page for the document at document_url."""
    css, css_sri = SWAGGER_UI_CSS
    js, js_sri = SWAGGER_UI_JS
    options = json.dumps({"url": document_url, "dom_id": "#swagger-ui", "deepLinking": True}).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{css}" integrity="{css_sri}" crossorigin="anonymous">\n'
        '</head>\n<body>\n<div id="swagger-ui"></div>\n'
        f'<script src="{js}" integrity="{js_sri}" crossorigin="anonymous"></script>\n'
        f"<script>window.ui = SwaggerUIBundle({options});</script>\n"
        "</body>\n</html>\n"
    )


def etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def cache_headers(tag: str, max_age: int) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={max_age}", "ETag": tag}


def not_modified(request_headers: Mapping[str, str] | None, tag: str) -> bool:
    """True when If-None-Match names tag (or is *); weak validators compare equal, as RFC 9110 asks for GET."""
    value = header(request_headers, "if-none-match")
    if not value:
        return False
    candidates = [v.strip().removeprefix("W/") for v in value.split(",")]
    return "*" in candidates or tag in candidates
