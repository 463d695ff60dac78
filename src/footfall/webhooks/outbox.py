"""What an operator watches of every account's webhook deliveries (the metrics scrape, the demo): the
one statement that counts them (outbox_sql.py, which `footfall status` runs with the drivers alone),
in a module of its own, not among every statement of webhooks/repository.py."""

from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import BigInteger, column, text

from footfall.db import Statement, Tx, per_dialect
from footfall.db.types import UTCDateTime
from footfall.kit.time import utcnow
from footfall.webhooks.outbox_sql import OUTBOX_SQL, OutboxStatus, oldest_pending_seconds

__all__ = ["Outbox", "OutboxStatus", "outbox", "outbox_status"]


class Outbox(NamedTuple):
    pending: int
    failed: int
    oldest_pending_seconds: float | None


@dataclass(frozen=True)
class OutboxStatements:
    status: Statement[OutboxStatus]


def _build(dialect: str) -> OutboxStatements:
    # The text `footfall status` runs with the drivers, its columns typed: SQLite's times read as UTC.
    return OutboxStatements(status=Statement(
        text(OUTBOX_SQL).columns(column("pending", BigInteger), column("failed", BigInteger),
                                 column("oldest_pending_at", UTCDateTime)),
        OutboxStatus,
        dialect=dialect,
        bulk=True,
    ))


STATEMENTS = per_dialect(_build)


async def outbox_status(tx: Tx) -> OutboxStatus:
    return await tx.fetchone(STATEMENTS[tx.dialect].status)


async def outbox(tx: Tx) -> Outbox:
    status = await outbox_status(tx)
    return Outbox(status.pending, status.failed, oldest_pending_seconds(status, utcnow()))
