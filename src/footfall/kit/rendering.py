"""JSON out, as Leat writes it: compact UTF-8, uuids as strings, times as 2024-05-01T20:00:00+00:00.

orjson renders records straight to bytes (uuids and aware UTC datetimes natively, whole seconds),
where FastAPI's path (validate the answer model again, then serialize, calling a Python function per
time field) cost more than the database work of a list. The response models still document every
answer in /openapi.json; tests check that what is rendered here is what they describe.
"""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from starlette.responses import Response

from footfall.kit.time import format_iso8601

# An export's formats (the visits', the contacts'), and the media type each is sent as.
EXPORT_FORMATS = ("ndjson", "csv")
EXPORT_MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}

_OPTIONS = orjson.OPT_OMIT_MICROSECONDS


def _default(value: Any) -> Any:
    if isinstance(value, UUID):  # asyncpg's own UUID type, a subclass orjson does not take as one
        return str(value)
    raise TypeError(f"{type(value).__name__} is not rendered as JSON")


def _default_slow(value: Any) -> Any:
    return format_iso8601(value) if isinstance(value, datetime) else _default(value)


def dumps(value: Any) -> bytes:
    """Datetimes must be aware and in UTC (as every statement reads them)."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits (a page number a client made up): the standard library has no limit.
        return json.dumps(value, default=_default_slow, separators=(",", ":"), ensure_ascii=False).encode()


def php_json_encode(value: Any) -> str:
    """JSON exactly as PHP's json_encode writes the same value with default flags: no spaces, "/" as
    "\\/", every non-ASCII character as a lowercase \\uXXXX escape (UTF-16 surrogate pairs beyond
    the BMP). Webhook bodies are written so: a receiver that follows Leat's guide re-encodes the
    payload it decoded, and its signature must match. Objects must not be empty (PHP decodes {} to an
    array, and encodes it back as [])."""
    text = json.dumps(value, default=_default_slow, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/")  # "/" stands only inside strings in JSON


def json_answer(value: Any, status_code: int = 200) -> Response:
    return Response(dumps(value), status_code=status_code, media_type="application/json")
