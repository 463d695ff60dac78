"""The kept visit counts' SQL: each contact's count, and the account's spread over COUNT_SLOTS rows,
moved in the transaction that inserts or deletes visits, so no list counts its rows."""

import json
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import JSON, BigInteger, Text, bindparam, cast, func, select, true

from footfall.contacts.repository import kept_visit_count
from footfall.db import Statement, Tx, per_dialect, upsert
from footfall.tables import account_visit_counts, contact_visit_counts, contacts

COUNT_SLOTS = 16  # rows an account's visit count is spread over

_c = contacts.c


class ContactCount(NamedTuple):
    id: int
    visit_count: int


@dataclass(frozen=True)
class CountStatements:
    # Both counts of one new visit, run in turn with the same parameters: one statement on
    # PostgreSQL (a data-modifying WITH, a round trip fewer per create), two on SQLite (no such WITH).
    count_one: tuple[Statement, ...]
    count_contacts: Statement  # many contacts at once, from a JSON object {contact id: added}
    count_account: Statement
    account_count: Statement
    contact_count: Statement[ContactCount]


def account_total() -> Any:
    """The account's kept visit count: the sum of its slots (see add_to_counts)."""
    counts = account_visit_counts.c
    return select(func.coalesce(func.sum(counts.count), 0).label("total")).where(
        counts.account_id == bindparam("account_id", type_=counts.account_id.type)
    )


def _build(dialect: str) -> CountStatements:
    statement = partial(Statement, dialect=dialect)
    counts = account_visit_counts.c

    # Its parameters are named apart from the columns of contacts: SQLAlchemy would read a parameter
    # named like a column as a SET of the UPDATE in the PostgreSQL count_one.
    count_account = upsert(dialect, account_visit_counts)
    count_account = count_account.values(
        account_id=bindparam("counted_account", type_=counts.account_id.type),
        slot=bindparam("counted_slot", type_=counts.slot.type),
        count=bindparam("added_visits", type_=counts.count.type),
    ).on_conflict_do_update(index_elements=["account_id", "slot"],
                            set_={"count": counts.count + count_account.excluded.count})
    contact_counts = contact_visit_counts.c
    count_contact = upsert(dialect, contact_visit_counts)
    count_contact = count_contact.values(
        contact_id=bindparam("counted_contact", type_=contact_counts.contact_id.type),
        count=bindparam("added", type_=contact_counts.count.type),
    ).on_conflict_do_update(index_elements=["contact_id"],
                            set_={"count": contact_counts.count + count_contact.excluded.count})
    if dialect == "postgresql":
        # The account's row is written from the contact's RETURNING, so the contact's row is locked
        # first, as every other writer of counts locks them (a WITH's statements otherwise run in
        # no set order, and a create deadlocked with a batch that held its contact's row).
        counted = count_contact.returning(contact_counts.contact_id).cte("counted_contact")
        account_after_contact = upsert(dialect, account_visit_counts).from_select(
            ["account_id", "slot", "count"],
            select(bindparam("counted_account", type_=counts.account_id.type),
                   bindparam("counted_slot", type_=counts.slot.type),
                   bindparam("added_visits", type_=counts.count.type)).select_from(counted),
        )
        account_after_contact = account_after_contact.on_conflict_do_update(
            index_elements=["account_id", "slot"], set_={"count": counts.count + account_after_contact.excluded.count})
        count_one: tuple[Statement, ...] = (statement(account_after_contact.add_cte(counted)),)
        added = func.json_each_text(cast(bindparam("counts", type_=Text), JSON)).table_valued("key", "value")
    else:
        count_one = (statement(count_contact), statement(count_account))
        added = func.json_each(bindparam("counts", type_=Text)).table_valued("key", "value")
    added = added.alias("added")
    # `WHERE true`: SQLite reads an upsert's SELECT without a WHERE as ambiguous.
    count_contacts = upsert(dialect, contact_visit_counts).from_select(
        ["contact_id", "count"],
        select(cast(added.c.key, BigInteger), cast(added.c.value, BigInteger)).where(true()),
    )
    count_contacts = count_contacts.on_conflict_do_update(
        index_elements=["contact_id"], set_={"count": contact_counts.count + count_contacts.excluded.count})

    return CountStatements(
        count_one=count_one,
        count_contacts=statement(count_contacts, bulk=True),
        count_account=statement(count_account),
        account_count=statement(account_total()),
        contact_count=statement(
            select(_c.id, kept_visit_count(_c.id).label("visit_count"))
            .where(_c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid")),
            ContactCount,
        ),
    )


STATEMENTS = per_dialect(_build)


class CountQueries:
    """VisitRepository's reads and writes of the kept counts, on its transaction."""

    tx: Tx

    async def contact_count(self, account_id: int, contact_uuid: UUID) -> ContactCount | None:
        """The account's contact's id and visit count, or None when no such contact."""
        return await self.tx.fetchrow(
            STATEMENTS[self.tx.dialect].contact_count, {"account_id": account_id, "contact_uuid": contact_uuid}
        )

    async def account_count(self, account_id: int) -> int:
        """The kept count (see add_to_counts): no count(*) that grows with the table."""
        return int(await self.tx.fetchval(STATEMENTS[self.tx.dialect].account_count, {"account_id": account_id}))

    async def add_to_counts(self, account_id: int, per_contact: dict[int, int], slot: int) -> None:
        """Adds new visits to the counts, in the transaction that inserts them."""
        statements = STATEMENTS[self.tx.dialect]
        account = {"counted_account": account_id, "counted_slot": slot % COUNT_SLOTS,
                   "added_visits": sum(per_contact.values())}
        if len(per_contact) == 1:
            [(contact_id, added)] = per_contact.items()
            for statement in statements.count_one:
                await self.tx.execute(statement, {**account, "counted_contact": contact_id, "added": added})
            return
        # In contact id order: two writers lock the count rows of the contacts they share in the same order.
        counts = json.dumps({str(contact_id): added for contact_id, added in sorted(per_contact.items())})
        await self.tx.execute(statements.count_contacts, {"counts": counts})
        await self.tx.execute(statements.count_account, account)
