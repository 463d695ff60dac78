"""What an export answers with (GET /visits/export, GET /contacts/export and the console's links): the
streamed file, and how OpenAPI documents it."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from footfall.kit.rendering import EXPORT_MEDIA_TYPES


def file_response(chunks: AsyncIterator[bytes], format: str, name: str, *, no_store: bool = False) -> StreamingResponse:
    """The chunks, streamed as the attachment NAME.FORMAT; `no_store` for a page's download (a browser
    keeps no copy)."""
    headers = {"Content-Disposition": f'attachment; filename="{name}.{format}"'}
    if no_store:
        headers["Cache-Control"] = "no-store"
    return StreamingResponse(chunks, media_type=EXPORT_MEDIA_TYPES[format], headers=headers)


def file_responses(name: str, one: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of an export in OpenAPI: streamed text, never JSON, so a generated client reads it as a
    string in the format asked for."""
    return {200: {"description": f"The {name}, streamed: NDJSON (one {one} a line) or CSV (a header row)",
                  "headers": {"Content-Disposition": {
                      "description": f'attachment; filename="{name}.ndjson" (or {name}.csv)',
                      "schema": {"type": "string"}}},
                  "content": {media_type: {"schema": {"type": "string"}}
                              for media_type in ("application/x-ndjson", "text/csv")}}}
