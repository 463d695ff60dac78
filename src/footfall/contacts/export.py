"""Export of an audience's contacts (GET /contacts/export) as NDJSON or CSV, for a mailing tool: a
chunk at a time, each a short read of its own, so neither the server nor the client holds the whole
result. The columns are uuid, email, visit_count, first_visit_at and last_visit_at.

On PostgreSQL the database writes each chunk itself (COPY), as the visits' export does; on SQLite the
rows are read and written here, to the same bytes (tests/contacts/test_audiences.py holds both to
one expectation)."""

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from footfall.contacts.repository import EVERYONE, Audience, Contact, ContactRepository
from footfall.db import Database
from footfall.kit.rendering import dumps
from footfall.kit.time import format_iso8601

COLUMNS = ("uuid", "email", "visit_count", "first_visit_at", "last_visit_at")
CHUNK_ROWS = 10000


async def export(
    database: Database, account_id: int, audience: Audience, format: str, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[bytes]:
    """The file: its header (CSV's row of column names), then the audience's contacts in id order
    (the order they were stored), a chunk per short read (none held open while the chunk before is
    written out): a contact whose visits change meanwhile is written as its chunk's read saw it."""
    if format == "csv":
        yield (",".join(COLUMNS) + "\n").encode()
    audience = replace(audience, sort=EVERYONE.sort)  # in id order, whatever the list's sort
    chunks = _copied if database.dialect == "postgresql" else _rendered
    async for chunk in chunks(database, account_id, audience, format, chunk_rows):
        yield chunk


async def _copied(database: Database, account_id: int, audience: Audience, format: str,
                  chunk_rows: int) -> AsyncIterator[bytes]:
    """PostgreSQL writes each chunk itself (COPY): no value passes through Python one by one."""
    after_id = 0
    while True:
        async with database.transaction(write=False) as tx:
            repository = ContactRepository(tx)
            bound = await repository.audience_bound(account_id, audience, after_id, chunk_rows)
            if bound.last_id is None:
                return
            _, data = await repository.audience_copy(account_id, audience, after_id, bound.last_id, format)
        yield data
        if bound.rows < chunk_rows:
            return
        after_id = bound.last_id


async def _rendered(database: Database, account_id: int, audience: Audience, format: str,
                    chunk_rows: int) -> AsyncIterator[bytes]:
    after_id = 0
    while True:
        async with database.transaction(write=False) as tx:
            rows = await ContactRepository(tx).audience_chunk(account_id, audience, after_id, chunk_rows)
        if rows:
            yield render(rows, format)
        if len(rows) < chunk_rows:
            return
        after_id = rows[-1].id


def render(rows: Sequence[Contact], format: str) -> bytes:
    if format == "ndjson":
        return b"".join(dumps({"uuid": row.uuid, "email": row.email, "visit_count": row.visit_count,
                               "first_visit_at": row.first_visit_at, "last_visit_at": row.last_visit_at}) + b"\n"
                        for row in rows)
    text = io.StringIO()
    # csv writes None as an empty cell and a uuid as its text; only the times need Leat's format.
    csv.writer(text, lineterminator="\n").writerows(
        (row.uuid, row.email, row.visit_count, row.first_visit_at and format_iso8601(row.first_visit_at),
         row.last_visit_at and format_iso8601(row.last_visit_at))
        for row in rows
    )
    return text.getvalue().encode()
