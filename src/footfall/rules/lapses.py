"""The lapse pass: the worker's look, every FOOTFALL_RULES_INTERVAL seconds, for contacts whose
latest qualifying visit is older than a lapse rule's after_days.

Each rule's contacts are read LAPSE_BATCH at a time, a transaction a batch, so a pass holds no long
transaction. Several workers (processes, hosts) may run passes at once: a contact is marked lapsed
by one upsert whose conflict clause leaves a row already lapsed alone, and only the rows it marked
are returned, so each lapse is told once."""

import asyncio
import logging
from datetime import datetime, timedelta

from footfall.db import Database
from footfall.kit.time import utcnow
from footfall.rules.repository import MAX_CONTACT_ID, RuleRepository
from footfall.rules.service import rule_ref
from footfall.webhooks import service as webhooks

log = logging.getLogger("footfall.rules")


async def lapse_pass(database: Database, now: datetime | None = None) -> int:
    """One pass over every ACTIVE lapse rule; the number of contacts that lapsed."""
    now = now or utcnow()
    async with database.transaction(write=False) as tx:
        rules = await RuleRepository(tx).lapse_rules()
    lapsed_total = 0
    for rule in rules:
        cutoff = now - timedelta(days=rule.after_days)
        after = 0
        while after != MAX_CONTACT_ID:
            async with database.transaction(write=True) as tx:
                repository = RuleRepository(tx)
                upto = await repository.batch_end(rule.account_id, after)
                lapsed = await repository.lapse(rule, after, upto, cutoff, now)
                if lapsed:
                    lapsed_total += len(lapsed)
                    subscription_ids = await webhooks.subscribers(tx, rule.account_id, "contact_lapsed")
                    if subscription_ids:
                        contacts = await repository.contacts_of(rule.id, [row.contact_id for row in lapsed])
                        await webhooks.emit_to(tx, rule.account_id, "contact_lapsed", subscription_ids, [
                            {"rule": rule_ref(rule), "contact": {"uuid": contact.uuid, "email": contact.email},
                             "last_visit_at": contact.last_visit_at, "days": (now - contact.last_visit_at).days}
                            for contact in contacts])
            after = upto
    return lapsed_total


async def find_lapses(database: Database, interval: float, stop: asyncio.Event) -> None:
    """Runs a lapse pass every `interval` seconds until `stop` is set; a failed pass is logged and
    the next one tries again."""
    while not stop.is_set():
        try:
            lapsed = await lapse_pass(database)
            if lapsed:
                log.info("contacts lapsed", extra={"lapsed": lapsed})
        except Exception:
            log.exception("lapse pass failed; the next one tries again")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
