"""The kept visit counts' SQL: each contact's count and first and last visit start, and the account's
count spread over COUNT_SLOTS rows, moved in the transaction that inserts, moves or deletes visits, so
no list counts its rows.

New visits only widen a contact's first and last start: the least and greatest of the kept ones and
the new visits' own (given by the caller), under the count row's lock, so two creates for one
contact both land whichever commits first. Only the new visits' own starts may widen them: a start
read from the table in the same statement can be one a concurrent update has moved since (the
statement's snapshot is taken before it waits for the lock). A delete or a moved start can narrow
them: the count row is locked first, then they are read afresh from the visits (ix_visits_contact_starts:
two probes) in a statement of its own, which sees every visit committed before the lock was granted;
a writer still running widens them after, with its own."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import BigInteger, bindparam, cast, func, select, true, update

from footfall.contacts.repository import kept_visit_count
from footfall.db import KeyedRows, Statement, Tx, earlier_or_later, listed_ids, per_dialect, upsert
from footfall.db.types import UTCDateTime
from footfall.rules.repository import KeptState, RuleRepository, fire_params, fire_rows, keep_params, kept_rule_state
from footfall.tables import account_visit_counts, contact_visit_counts, contacts, visits

COUNT_SLOTS = 16  # rows an account's visit count is spread over

_c, _v = contacts.c, visits.c

Span = tuple[datetime, datetime]  # the first and last start of a contact's new visits


class ContactCount(NamedTuple):
    id: int
    visit_count: int


class VisitStart(NamedTuple):
    """What spans_of reads of a new visit."""

    contact_id: int
    starts_at: datetime


def spans_of(new_visits: Iterable[VisitStart | Any]) -> dict[int, Span]:
    """The first and last start of the new visits of each contact: what add_to_counts widens by."""
    spans: dict[int, Span] = {}
    for visit in new_visits:
        first, last = spans.get(visit.contact_id, (visit.starts_at, visit.starts_at))
        spans[visit.contact_id] = (min(first, visit.starts_at), max(last, visit.starts_at))
    return spans


@dataclass(frozen=True)
class CountStatements:
    # Both counts of one new visit, run in turn with the same parameters: one statement on
    # PostgreSQL (a data-modifying WITH, a round trip fewer per create), two on SQLite (no such WITH).
    count_one: tuple[Statement, ...]
    # count_one and the writes of the visit's rules, by (keeps, fires), in one statement on
    # PostgreSQL: a create under rules makes no more round trips than one without, and what they
    # keep of the contact goes into the count row it writes anyway. None on SQLite.
    count_one_recording: dict[tuple[bool, bool], Statement] | None
    # Many contacts at once, from a JSON object {contact id: [added, first start, last start]}.
    count_contacts: Statement
    count_account: Statement
    account_count: Statement
    contact_count: Statement[ContactCount]
    hold_contacts: Statement  # the contacts' count rows locked, in id order, before their spans are read afresh
    respan_contacts: Statement  # the contacts' first and last visit start, read afresh from their visits


def account_total() -> Any:
    """The account's kept visit count: the sum of its slots (see add_to_counts). A bigint: PostgreSQL's
    sum of bigints is a numeric, which the driver reads as a Decimal on every row of a page."""
    counts = account_visit_counts.c
    return select(cast(func.coalesce(func.sum(counts.count), 0), BigInteger).label("total")).where(
        counts.account_id == bindparam("account_id", type_=counts.account_id.type)
    )


def _visit_start(aggregate: Any, contact_id: Any) -> Any:
    """The contact's first (min) or last (max) visit start, read from its visits."""
    return select(aggregate(_v.starts_at)).where(_v.contact_id == contact_id).scalar_subquery()


def _moved(dialect: str, inserted: Any) -> dict[str, Any]:
    """The ON CONFLICT assignments of a count row's span (the kept one widened by the new row's) and writes."""
    counts = contact_visit_counts.c
    new = inserted.excluded
    return {"first_visit_at": earlier_or_later(dialect, counts.first_visit_at, new.first_visit_at, True),
            "last_visit_at": earlier_or_later(dialect, counts.last_visit_at, new.last_visit_at, False),
            "writes": counts.writes + new.writes}


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
    new_count_row = upsert(dialect, contact_visit_counts).values(
        contact_id=bindparam("counted_contact", type_=contact_counts.contact_id.type),
        count=bindparam("added", type_=contact_counts.count.type),
        writes=func.abs(bindparam("added", type_=contact_counts.count.type)),
        account_id=bindparam("counted_account", type_=contact_counts.account_id.type),
        first_visit_at=bindparam("first_start", type_=UTCDateTime),
        last_visit_at=bindparam("last_start", type_=UTCDateTime),
    )
    moved = {"count": contact_counts.count + new_count_row.excluded.count, **_moved(dialect, new_count_row)}
    count_contact = new_count_row.on_conflict_do_update(index_elements=["contact_id"], set_=moved)
    if dialect == "postgresql":
        # The same, keeping what the visit's rules keep of the contact (RuleRepository.keep's value).
        count_contact_keeping = new_count_row.values(rule_state=kept_rule_state()).on_conflict_do_update(
            index_elements=["contact_id"], set_={**moved, "rule_state": kept_rule_state()})
        # The account's row is written from the contact's RETURNING, so the contact's row is locked
        # first, as every other writer of counts locks them (a WITH's statements otherwise run in
        # no set order, and a create deadlocked with a batch that held its contact's row).
        def account_after(counted: Any) -> Any:
            made = upsert(dialect, account_visit_counts).from_select(
                ["account_id", "slot", "count"],
                select(bindparam("counted_account", type_=counts.account_id.type),
                       bindparam("counted_slot", type_=counts.slot.type),
                       bindparam("added_visits", type_=counts.count.type)).select_from(counted),
            )
            return made.on_conflict_do_update(index_elements=["account_id", "slot"],
                                              set_={"count": counts.count + made.excluded.count})

        counted = count_contact.returning(contact_counts.contact_id).cte("counted_contact")
        count_one: tuple[Statement, ...] = (statement(account_after(counted).add_cte(counted)),)
        # With the visit's rules' writes (rules.service.decide), each only when there is one: what
        # they keep of the contact (in its count row) and their firings (fire_rows, RETURNING the new ones).
        recordings: dict[tuple[bool, bool], Statement] = {}
        for keeps, fires in ((True, False), (False, True), (True, True)):
            counted = (count_contact_keeping if keeps else count_contact).returning(
                contact_counts.contact_id).cte("counted_contact")
            if fires:
                fired = fire_rows(dialect).cte("fired")
                counted_account = account_after(counted).returning(counts.slot).cte("counted_account")
                recording = select(fired.c.rule_id).add_cte(counted, counted_account, fired)
            else:
                recording = account_after(counted).add_cte(counted)
            recordings[keeps, fires] = statement(recording)
        count_one_recording: dict[tuple[bool, bool], Statement] | None = recordings
    else:
        count_one = (statement(count_contact), statement(count_account))
        count_one_recording = None
    added = KeyedRows(dialect, "counts")  # {contact id: [added, first start, last start]}
    # `WHERE true`: SQLite reads an upsert's SELECT without a WHERE as ambiguous.
    count_contacts = upsert(dialect, contact_visit_counts).from_select(
        ["contact_id", "count", "writes", "account_id", "first_visit_at", "last_visit_at"],
        select(added.key, added.item(0), func.abs(added.item(0)),
               bindparam("counted_account", type_=contact_counts.account_id.type), added.time(1), added.time(2))
        .select_from(added.rows).where(true()),
    )
    count_contacts = count_contacts.on_conflict_do_update(
        index_elements=["contact_id"],
        set_={"count": contact_counts.count + count_contacts.excluded.count, **_moved(dialect, count_contacts)})
    listed_contacts = contact_counts.contact_id.in_(listed_ids(dialect, "contact_ids"))

    return CountStatements(
        count_one=count_one,
        count_one_recording=count_one_recording,
        count_contacts=statement(count_contacts, bulk=True),
        count_account=statement(count_account),
        account_count=statement(account_total()),
        contact_count=statement(
            select(_c.id, kept_visit_count(_c.id).label("visit_count"))
            .where(_c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid")),
            ContactCount,
        ),
        hold_contacts=statement(
            select(contact_counts.contact_id).where(listed_contacts).order_by(contact_counts.contact_id)
            .with_for_update()
        ),
        respan_contacts=statement(
            update(contact_visit_counts).where(listed_contacts).values(
                first_visit_at=_visit_start(func.min, contact_counts.contact_id),
                last_visit_at=_visit_start(func.max, contact_counts.contact_id),
                writes=contact_counts.writes + 1,
            ),
            bulk=True,
        ),
    )


STATEMENTS = per_dialect(_build)


def _count_one_params(account_id: int, contact_id: int, added: int, slot: int, span: Span | None) -> dict[str, Any]:
    """The parameters of count_one (and count_one_recording's counting): one contact's visits added."""
    first, last = span or (None, None)
    return {"counted_account": account_id, "counted_slot": slot % COUNT_SLOTS, "added_visits": added,
            "counted_contact": contact_id, "added": added, "first_start": first, "last_start": last}


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

    async def add_to_counts(
        self, account_id: int, per_contact: dict[int, int], slot: int, spans: Mapping[int, Span] | None = None
    ) -> None:
        """Adds new visits to the counts (or takes deleted ones off, negative), in the transaction that
        inserts (deletes) them. `spans`, each contact's new visits' first and last start (spans_of),
        widens its kept ones; without them (a delete), they are read afresh from the visits (respan)."""
        statements = STATEMENTS[self.tx.dialect]
        if len(per_contact) == 1:
            [(contact_id, added)] = per_contact.items()
            params = _count_one_params(account_id, contact_id, added, slot, spans[contact_id] if spans else None)
            for statement in statements.count_one:
                await self.tx.execute(statement, params)
        else:
            # In contact id order: two writers lock the count rows of the contacts they share in the same order.
            counts = KeyedRows.dumps(self.tx.dialect, {
                contact_id: [added, *(spans[contact_id] if spans else (None, None))]
                for contact_id, added in sorted(per_contact.items())
            })
            await self.tx.execute(statements.count_contacts, {"counts": counts, "counted_account": account_id})
            await self.tx.execute(statements.count_account, {
                "counted_account": account_id, "counted_slot": slot % COUNT_SLOTS,
                "added_visits": sum(per_contact.values())})
        if spans is None:
            await self.respan(per_contact, held=True)

    async def add_one_recording_rules(
        self, account_id: int, contact_id: int, visit_id: int, span: Span, kept: KeptState | None,
        firing: dict[int, int], fired_at: datetime,
    ) -> set[int]:
        """add_to_counts for one new visit, with what its rules decided (rules.service.Decisions): their
        kept state and their firings (RuleRepository.keep and fire). The rules whose firing was new."""
        statements = STATEMENTS[self.tx.dialect].count_one_recording
        if statements is None or not (kept or firing):
            await self.add_to_counts(account_id, {contact_id: 1}, visit_id, {contact_id: span})
            return await RuleRepository(self.tx).keep_and_fire(contact_id, visit_id, fired_at, kept, firing)
        params = _count_one_params(account_id, contact_id, 1, visit_id, span)
        if kept is not None:
            params.update(keep_params(contact_id, kept))
        if not firing:
            await self.tx.execute(statements[True, False], params)
            return set()
        params.update(fire_params(contact_id, visit_id, fired_at, firing))
        return {row.rule_id for row in await self.tx.fetch(statements[kept is not None, True], params)}

    async def respan(self, contact_ids: Iterable[int], *, held: bool) -> None:
        """Reads the contacts' first and last visit start afresh from their visits, after a delete, a
        moved start or a changed source, and moves their writes (what their rules kept is counted afresh).
        `held`: this transaction has locked their count rows already (add_to_counts does); otherwise
        they are locked here first, in id order."""
        statements = STATEMENTS[self.tx.dialect]
        ids = {"contact_ids": json.dumps(sorted(set(contact_ids)))}
        if not held:
            await self.tx.execute(statements.hold_contacts, ids)
        await self.tx.execute(statements.respan_contacts, ids)
