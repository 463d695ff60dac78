"""Export of an account's visits as NDJSON or CSV, a chunk at a time: neither the server nor the CLI
ever holds the whole result. The columns are the importer's, so an exported file imports back."""

import csv
import io
from collections.abc import AsyncIterator, Sequence

from footfall.db import Database
from footfall.kit.rendering import dumps
from footfall.kit.time import format_iso8601
from footfall.visits.repository import ExportRow, VisitFilter, VisitRepository

FORMATS = ("ndjson", "csv")
MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
COLUMNS = tuple(name for name in ExportRow._fields if name != "id")
CHUNK_ROWS = 5000


async def export_chunks(
    database: Database, account_id: int, filters: VisitFilter, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[Sequence[ExportRow]]:
    """The visits that pass the filters, in id order, a chunk per short read transaction (none held
    open while the chunk before is written out): a visit created meanwhile may or may not be in it."""
    after_id = 0
    while True:
        async with database.transaction(write=False) as tx:
            rows = await VisitRepository(tx).export_chunk(account_id, filters, after_id, chunk_rows)
        if rows:
            yield rows
        if len(rows) < chunk_rows:
            return
        after_id = rows[-1].id


def header(format: str) -> bytes:
    return (",".join(COLUMNS) + "\r\n").encode() if format == "csv" else b""


def render(rows: Sequence[ExportRow], format: str) -> bytes:
    if format == "ndjson":
        return b"".join(dumps(dict(zip(COLUMNS, row[1:], strict=True))) + b"\n" for row in rows)
    text = io.StringIO()
    # csv writes None as an empty cell and a uuid as its text; only the times need Leat's format.
    csv.writer(text).writerows(
        (row.uuid, row.contact_uuid, row.contact_email, row.shop_uuid, row.external_id, row.source,
         format_iso8601(row.starts_at), row.ends_at and format_iso8601(row.ends_at), format_iso8601(row.created_at),
         format_iso8601(row.updated_at))
        for row in rows
    )
    return text.getvalue().encode()
