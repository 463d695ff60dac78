"""Export of an account's visits as NDJSON or CSV, a chunk at a time: neither the server nor the CLI
ever holds the whole result. The columns are the importer's, so an exported file imports back.

On PostgreSQL the database writes each chunk itself (COPY, repository.export_copy_statement), so no
value passes through Python one by one; on SQLite the rows are read and written here, to the same
bytes (tests/visits/test_export.py holds both to one expectation)."""

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple

from footfall.db import Database
from footfall.kit.rendering import dumps
from footfall.kit.time import format_iso8601
from footfall.visits.repository import ExportRow, VisitFilter, VisitRepository

COLUMNS = tuple(name for name in ExportRow._fields if name != "id")
CHUNK_ROWS = 10000


class Chunk(NamedTuple):
    visits: int
    data: bytes


async def export(
    database: Database, account_id: int, filters: VisitFilter, format: str, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[Chunk]:
    """The file: its header (CSV's row of column names), then the visits that pass the filters, in id
    order, a chunk per short read (none held open while the chunk before is written out): a visit
    created meanwhile may or may not be in it."""
    yield Chunk(0, (",".join(COLUMNS) + "\n").encode() if format == "csv" else b"")
    chunks = _copied if database.dialect == "postgresql" else _rendered
    async for chunk in chunks(database, account_id, filters, format, chunk_rows):
        yield chunk


async def _copied(database: Database, account_id: int, filters: VisitFilter, format: str,
                  chunk_rows: int) -> AsyncIterator[Chunk]:
    after_id = 0
    while True:
        async with database.transaction(write=False) as tx:
            repository = VisitRepository(tx)
            bound = await repository.export_bound(account_id, filters, after_id, chunk_rows)
            if bound.last_id is None:
                return
            copied = await repository.export_copy(account_id, filters, after_id, bound.last_id, format)
        yield Chunk(*copied)
        if bound.rows < chunk_rows:
            return
        after_id = bound.last_id


async def _rendered(database: Database, account_id: int, filters: VisitFilter, format: str,
                    chunk_rows: int) -> AsyncIterator[Chunk]:
    after_id = 0
    while True:
        async with database.transaction(write=False) as tx:
            rows = await VisitRepository(tx).export_chunk(account_id, filters, after_id, chunk_rows)
        if rows:
            yield Chunk(len(rows), render(rows, format))
        if len(rows) < chunk_rows:
            return
        after_id = rows[-1].id


def render(rows: Sequence[ExportRow], format: str) -> bytes:
    if format == "ndjson":
        return b"".join(dumps(dict(zip(COLUMNS, row[1:], strict=True))) + b"\n" for row in rows)
    text = io.StringIO()
    # csv writes None as an empty cell and a uuid as its text; only the times need Leat's format.
    # Lines end in "\n", as PostgreSQL's COPY ends them.
    csv.writer(text, lineterminator="\n").writerows(
        (row.uuid, row.contact_uuid, row.contact_email, row.shop_uuid, row.external_id, row.source,
         format_iso8601(row.starts_at), row.ends_at and format_iso8601(row.ends_at), format_iso8601(row.created_at),
         format_iso8601(row.updated_at))
        for row in rows
    )
    return text.getvalue().encode()
