"""What an operator watches of every account's webhook deliveries (`footfall status`, the metrics
scrape): the one statement that counts them, in a module of its own so that `footfall status` builds
it alone, not every statement of webhooks/repository.py."""

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, or_, select

from footfall.db import Statement, Tx, per_dialect
from footfall.kit.time import utcnow
from footfall.tables import webhook_deliveries

_d = webhook_deliveries.c


class OutboxStatus(NamedTuple):
    pending: int
    failed: int
    oldest_pending_at: datetime | None


class Outbox(NamedTuple):
    pending: int
    failed: int
    oldest_pending_seconds: float | None


@dataclass(frozen=True)
class OutboxStatements:
    status: Statement[OutboxStatus]


def _build(dialect: str) -> OutboxStatements:
    # Every account's. The WHERE lets the due index skip the succeeded rows, which the delivery log
    # is mostly made of.
    return OutboxStatements(status=Statement(
        select(
            func.count().filter(_d.state == "pending").label("pending"),
            func.count().filter(_d.state == "failed").label("failed"),
            func.min(_d.created_at).filter(_d.state == "pending").label("oldest_pending_at"),
        ).where(or_(_d.state == "pending", _d.state == "failed")),
        OutboxStatus,
        dialect=dialect,
        bulk=True,
    ))


STATEMENTS = per_dialect(_build)


async def outbox_status(tx: Tx) -> OutboxStatus:
    return await tx.fetchone(STATEMENTS[tx.dialect].status)


async def outbox(tx: Tx) -> Outbox:
    status = await outbox_status(tx)
    age = None if status.oldest_pending_at is None else (utcnow() - status.oldest_pending_at).total_seconds()
    return Outbox(status.pending, status.failed, age)
