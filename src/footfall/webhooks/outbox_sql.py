"""The outbox's one statement, as text both databases run: what `footfall status` reads with the
drivers alone (no SQLAlchemy, so the command starts in a fraction of a second), and what outbox.py
runs as a Statement for the metrics scrape."""

from datetime import datetime
from typing import NamedTuple

from footfall.db.urls import backend, postgres_dsn, sqlite_path

# Every account's. The WHERE lets the due index skip the succeeded rows, which the delivery log is
# mostly made of.
OUTBOX_SQL = (
    "SELECT count(*) FILTER (WHERE state = 'pending') AS pending, "
    "count(*) FILTER (WHERE state = 'failed') AS failed, "
    "min(created_at) FILTER (WHERE state = 'pending') AS oldest_pending_at "
    "FROM webhook_deliveries WHERE state IN ('pending', 'failed')"
)


class OutboxStatus(NamedTuple):
    pending: int
    failed: int
    oldest_pending_at: datetime | None


def oldest_pending_seconds(status: OutboxStatus, now: datetime) -> float | None:
    """How long the oldest pending delivery has waited; None when none is pending."""
    return None if status.oldest_pending_at is None else (now - status.oldest_pending_at).total_seconds()


async def read_outbox(url: str) -> OutboxStatus:
    """The outbox, on a connection of the driver's own."""
    if backend(url) == "sqlite":
        import sqlite3

        connection = sqlite3.connect(sqlite_path(url), timeout=30)
        try:
            pending, failed, oldest = connection.execute(OUTBOX_SQL).fetchone()
        finally:
            connection.close()
        # SQLite keeps UTC as text (db.types.sqlite_text).
        return OutboxStatus(pending, failed, None if oldest is None else datetime.fromisoformat(oldest + "+00:00"))
    import asyncpg

    pg = await asyncpg.connect(postgres_dsn(url), statement_cache_size=0)
    try:
        row = await pg.fetchrow(OUTBOX_SQL)
    finally:
        await pg.close()
    return OutboxStatus(row["pending"], row["failed"], row["oldest_pending_at"])
