"""Retention: deleting an account's visits older than a time, a short transaction per batch, and the
daily run of it for every account that FOOTFALL_RETENTION_DAYS asks for."""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from footfall.accounts.repository import Account, AccountRepository
from footfall.db import Database
from footfall.kit.time import pause, utcnow
from footfall.visits.repository import VisitRepository

PURGE_BATCH = 1000  # visits a transaction: short, so requests never wait long behind a purge
RETENTION_INTERVAL = 24 * 3600

log = logging.getLogger("footfall.retention")


async def purge(
    database: Database, account: Account, before: datetime, on_batch: Callable[[int], None] = lambda purged: None
) -> int:
    """Deletes the account's visits created before `before`, oldest first: tombstones for the feed
    and counts kept right, and no webhook events (this is retention, not a client's delete). The
    number deleted."""
    total = 0
    while True:
        async with database.transaction(write=True) as tx:
            purged = await VisitRepository(tx).purge_batch(account.id, before, PURGE_BATCH, utcnow())
        total += purged
        on_batch(purged)
        if purged == 0:  # a short batch can leave some (VisitRepository.purge_batch)
            return total
        await asyncio.sleep(0)  # let requests in between batches


async def keep_days(database: Database, days: int, stop: asyncio.Event) -> None:
    """Once a day (and at start), every account's visits created more than `days` days ago are
    purged. A failure is logged and waits for the next day."""
    while not stop.is_set():
        try:
            async with database.transaction(write=False) as tx:
                accounts = await AccountRepository(tx).all()
            before = utcnow() - timedelta(days=days)
            for account in accounts:
                purged = await purge(database, account, before)
                if purged:
                    log.info("retention: %d visits of account %s created before %s purged", purged, account.uuid,
                             before.isoformat())
        except Exception:
            log.warning("retention: the daily purge failed", exc_info=True)
        await pause(stop, RETENTION_INTERVAL)
