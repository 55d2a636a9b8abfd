"""Content negotiation: JSON by default, the same data as XML for Accept: application/xml, 406 otherwise.

XML mapping (documented in the OpenAPI description too): the root element is <response>; an object
becomes child elements named by its keys (a key that is not a valid XML name becomes
<entry key="...">); a list becomes repeated <item> elements; null becomes an empty element with
nil="true"; booleans are true/false.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import ApiError

JSON = "application/json"
XML = "application/xml"
_XML_TYPES = {"application/xml", "text/xml"}
_JSON_TYPES = {"application/json", "*/*", "application/*"}
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY
# xml.sax.saxutils would pull in urllib and email at import time (~20 ms of cold start) for two replaces.
# Control characters are not allowed in XML 1.0 at all; client-sent names are shown as U+FFFD instead.
_NOT_XML = {c: "\ufffd" for c in (*range(0, 9), 11, 12, *range(14, 32))}
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", **_NOT_XML})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", **_NOT_XML})


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup (API Gateway keeps the client's spelling)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def choose_format(accept: str | None) -> str:
    """JSON or XML for an Accept header; raises 406 when neither is acceptable."""
    if not accept or accept == JSON or accept == "*/*":
        return JSON
    best, best_q = None, 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        fmt = JSON if media in _JSON_TYPES else XML if media in _XML_TYPES else None
        if fmt and (q > best_q or (q == best_q and fmt == JSON)):
            best, best_q = fmt, q
    if best is None:
        raise ApiError(
            406,
            "not_acceptable",
            f"cannot answer in '{accept[:80]}': accepted types are {JSON} and {XML}",
            field="Accept",
        )
    return best


def check_json_body(content_type: str | None) -> None:
    """A request body must be JSON; a missing Content-Type is read as JSON."""
    if not content_type:
        return
    media = content_type.partition(";")[0].strip().lower()
    if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"request body must be {JSON}, got '{content_type[:80]}'",
            field="Content-Type",
        )


def render(data: Any, fmt: str) -> str:
    if fmt == XML:
        return to_xml(data)
    return orjson.dumps(data, option=_ORJSON_OPTS).decode()


def to_xml(data: Any, root: str = "response") -> str:
    parts: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _element(parts, root, data)
    return "".join(parts)


def _element(parts: list[str], name: str, value: Any) -> None:
    if _XML_NAME.match(name) and not name.lower().startswith("xml"):
        open_tag, close_tag = f"<{name}", f"</{name}>"
    else:
        open_tag, close_tag = f'<entry key="{name.translate(_ATTR_ESCAPES)}"', "</entry>"
    if value is None:
        parts.append(f'{open_tag} nil="true"/>')
        return
    parts.append(open_tag + ">")
    if isinstance(value, Mapping):
        for key, child in value.items():
            _element(parts, str(key), child)
    elif isinstance(value, (list, tuple)):
        for child in value:
            _element(parts, "item", child)
    elif isinstance(value, bool):
        parts.append("true" if value else "false")
    else:
        parts.append(str(value).translate(_TEXT_ESCAPES))
    parts.append(close_tag)
