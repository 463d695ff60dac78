"""The visits' SQL. VisitRepository is the one class services call; this module holds a visit's own
reads and writes, the pages of Leat's list, the deletes and the bulk import, and a module each holds
the rest: rows (the records and the join a visit answer is read from), counts (the kept counts),
feed (the changes feed), filters (the list's filters and sorts) and export (the export's chunks)."""

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    case,
    cast,
    delete,
    insert,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.schema import CreateTable

from footfall.contacts.repository import kept_visit_count
from footfall.db import (
    ConstraintViolation,
    Statement,
    Tx,
    binds,
    limit,
    listed_ids,
    listed_uuids,
    paged,
    per_dialect,
    upsert,
)
from footfall.db.types import UTCDateTime
from footfall.rules.repository import RuleRepository, RuleState, has_active_rules, states_once_counted
from footfall.tables import accounts, contacts, shops, visit_tombstones, visits
from footfall.visits.repository.counts import COUNT_SLOTS, ContactCount, CountQueries, Span, account_total, spans_of
from footfall.visits.repository.export import (
    ExportBound,
    ExportQueries,
    ExportRow,
    export_bound_statement,
    export_copy_statement,
    export_statement,
)
from footfall.visits.repository.feed import Change, FeedQueries, below_horizon, changed
from footfall.visits.repository.filters import (
    RANGE_COLUMNS,
    RANGE_OPERATORS,
    SORTS,
    FilteredQueries,
    FilteredStatements,
    VisitFilter,
    filtered_statements,
    filtered_where,
    in_range,
)
from footfall.visits.repository.rows import (
    ContactAndShop,
    DeletedVisit,
    PageRow,
    Visit,
    VisitRow,
    VisitToUpdate,
    visit_rows,
)
from footfall.webhooks.repository import subscribed

__all__ = [
    "COUNT_SLOTS", "IMPORTED", "RANGE_COLUMNS", "RANGE_OPERATORS", "SORTS", "STATEMENTS", "UPDATABLE", "Change",
    "ContactAndShop", "ContactCount", "DeletedVisit", "DuplicateExternalId", "ExportBound", "ExportRow",
    "FilteredStatements", "PageRow", "Span", "Visit", "VisitFilter", "VisitRepository", "VisitRow", "VisitStatements",
    "VisitToUpdate", "below_horizon", "changed", "export_bound_statement", "export_copy_statement",
    "export_statement", "filtered_statements", "filtered_where", "import_rows", "in_range", "spans_of",
]

UPDATABLE = ("external_id", "source", "starts_at", "ends_at")

_v, _c, _s = visits.c, contacts.c, shops.c

_VISIT = tuple(_v[name] for name in Visit._fields)
_DELETED = tuple(_v[name] for name in DeletedVisit._fields)
_NEWEST_FIRST = (_v.created_at.desc(), _v.id.desc())
_OLDEST_FIRST = (_v.created_at.asc(), _v.id.asc())

# A bulk import's rows go here first (COPY on PostgreSQL), then into visits with one INSERT ... SELECT.
# Emptied at each commit on PostgreSQL: a temporary table is never vacuumed, and rows deleted from it
# would leave pages that every later batch's INSERT ... SELECT reads again; the DELETE after each
# use (insert_many) empties it on SQLite, which reuses the pages.
import_rows = Table(
    "visits_import",
    MetaData(),
    Column("n", Integer),
    Column("uuid", Uuid),
    Column("account_id", BigInteger),
    Column("contact_id", BigInteger),
    Column("shop_id", BigInteger),
    Column("external_id", String(255)),
    Column("source", String(255)),
    Column("starts_at", UTCDateTime),
    Column("ends_at", UTCDateTime),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
IMPORTED = tuple(column.name for column in import_rows.columns if column.name != "n")
_imported_values = itemgetter(*IMPORTED)


@dataclass(frozen=True)
class VisitStatements:
    contact_and_shop: Statement[ContactAndShop]
    contact_and_shop_held: Statement[ContactAndShop]
    get: Statement[VisitRow]
    get_to_update: Statement[VisitToUpdate]
    get_by_external_id: Statement[VisitRow]
    insert: Statement[Visit]
    insert_unless_external_id_exists: Statement[Visit]
    # The same, each with the account's rules as they will read the visit (RuleState's columns, named
    # rule_*, after the visit's; no rule: NULLs), one row a rule. None on SQLite (no data-modifying WITH).
    insert_reading_rules: dict[bool, Statement] | None  # by whether the visit has an external_id
    update: Statement[Visit]
    pages: dict[tuple[bool, bool], Statement[PageRow]]  # (by contact, newest first)
    first_pages: dict[bool, Statement[PageRow]]  # by contact
    touch_contact_visits: Statement
    delete_contact_visits: Statement[DeletedVisit]
    purge_contacts: Statement
    purge_batch: Statement[DeletedVisit]
    delete: Statement[DeletedVisit]
    insert_tombstone: Statement
    reshape: Statement
    create_import_rows: Statement
    analyze: Statement
    insert_imported: Statement[Visit]
    insert_imported_contacts: Statement  # the same, returning only the contact_id and starts_at of each row
    clear_import_rows: Statement
    uuids_there: Statement  # which of the given uuids are the account's visits'


def _reading_rules(inserting: Any) -> Any:
    """The visit's insert, and the account's rules as they will read it (rules.repository.states_once_counted):
    its contact is held, so the statement's snapshot has every earlier write of the contact's visits.

    The visit's row comes first, its rule columns null, then a row per rule, its visit columns null:
    each value is read once, where a join carried the visit's columns again in every rule's row."""
    inserted = inserting.returning(*_VISIT).cte("inserted")
    rules = states_once_counted().order_by(None).subquery("rule_state")  # ordered once, below
    visit_row = select(*inserted.c, *(cast(null(), column.type).label(f"rule_{column.key}") for column in rules.c))
    rule_rows = (select(*(cast(null(), column.type).label(column.key) for column in inserted.c),
                        *(column.label(f"rule_{column.key}") for column in rules.c))
                 .where(select(inserted.c.id).exists()))
    rows = union_all(visit_row, rule_rows).subquery("read")
    return select(*rows.c).order_by(rows.c.rule_id.nulls_first())


def _build(dialect: str) -> VisitStatements:
    statement = partial(Statement, dialect=dialect)
    account = _v.account_id == bindparam("account_id")

    shop_id = select(_s.id).where(_s.account_id == bindparam("account_id"), _s.uuid == bindparam("shop_uuid"))
    insert_visit = upsert(dialect, visits).values(
        binds(visits, "uuid", "account_id", "contact_id", "shop_id", "external_id", "source", "starts_at", "ends_at",
              "created_at", "updated_at")
    )
    insert_unless_external_id_exists = insert_visit.on_conflict_do_nothing(index_elements=["account_id", "external_id"])
    account_id = bindparam("account_id", type_=_v.account_id.type)

    # (by contact, newest first) -> a page at any offset, the contact given by id: the rows found on
    # the index alone, then joined (a deferred join). The total as a last column, read in the same
    # statement (so in the same snapshot) as the rows.
    pages = {}
    for by_contact in (False, True):
        for newest_first in (False, True):
            order = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
            filters = [account, _v.contact_id == bindparam("contact_id")] if by_contact else [account]
            ids = paged(select(_v.id).where(*filters).order_by(*order)).subquery()
            total = (kept_visit_count(bindparam("contact_id", type_=_v.contact_id.type)) if by_contact
                     else account_total().scalar_subquery())
            pages[(by_contact, newest_first)] = statement(
                visit_rows.join(ids, ids.c.id == _v.id).order_by(*order).add_columns(total.label("total")), PageRow
            )

    # Page 1 with its total as a last column, in one round trip: newest first needs no total to find
    # its rows, and an empty first page means a total of 0. No deferred join at offset 0: read
    # backwards along the index, the first `limit` rows are the page. The contact given by uuid.
    filter_contact = contacts.alias("filter_contact")
    by_uuid = (filter_contact.c.account_id == bindparam("account_id"),
               filter_contact.c.uuid == bindparam("contact_uuid", type_=_c.uuid.type))
    first = limit(visit_rows.order_by(*_NEWEST_FIRST))
    first_pages = {
        False: statement(first.where(account).add_columns(account_total().scalar_subquery().label("total")),
                         PageRow),
        True: statement(
            first.where(account, _v.contact_id == select(filter_contact.c.id).where(*by_uuid).scalar_subquery())
            .add_columns(kept_visit_count(select(filter_contact.c.id).where(*by_uuid).scalar_subquery())
                         .label("total")),
            PageRow,
        ),
    }

    from_import = select(*(import_rows.c[name] for name in IMPORTED)).order_by(import_rows.c.n)
    insert_imported = upsert(dialect, visits).from_select(IMPORTED, from_import).on_conflict_do_nothing(
        index_elements=["account_id", "external_id"]
    )
    create_import_rows = CreateTable(import_rows, if_not_exists=True)

    # Found on ix_visits_account_created.
    oldest = (
        select(_v.id)
        .where(account, _v.created_at < bindparam("before", type_=_v.created_at.type))
        .order_by(_v.created_at, _v.id)
        .limit(bindparam("limit", type_=Integer))
    )

    found = visits.alias("found")
    held_contact = (
        select(_c.id).select_from(found.join(contacts, _c.id == found.c.contact_id))
        .where(found.c.account_id == bindparam("account_id"), found.c.uuid == bindparam("uuid", type_=_v.uuid.type))
        .with_for_update(of=contacts, read=True).cte("held_contact")  # FOR SHARE: see get_to_update
    )

    contact_and_shop = select(
        _c.id,
        _c.uuid,
        _c.email,
        shop_id.scalar_subquery().label("shop_id"),
        subscribed(account_id, "visit_created").label("notify"),
        has_active_rules(account_id).label("rules"),
    ).where(_c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid"))

    return VisitStatements(
        contact_and_shop=statement(
            # Held against a delete: ContactRepository.share.
            contact_and_shop.with_for_update(of=contacts, key_share=True, read=True), ContactAndShop),
        # Held as visit rules need it: the contact's writes in turn (rules.service).
        contact_and_shop_held=statement(contact_and_shop.with_for_update(of=contacts, key_share=True),
                                        ContactAndShop),
        get=statement(visit_rows.where(account, _v.uuid == bindparam("uuid")), VisitRow),
        get_to_update=statement(
            visit_rows.add_columns(subscribed(account_id, "visit_updated").label("notify"))
            .where(account, _v.uuid == bindparam("uuid"))
            # FOR SHARE, as every change to a contact's existing visits holds it: against its delete
            # (as contact_and_shop), and against a create under rules (FOR NO KEY UPDATE), which so
            # waits for the change before its counting statement starts, not inside it, where its
            # snapshot would be older than the change it waited for.
            .with_for_update(of=contacts, read=True),
            VisitToUpdate,
        ),
        get_by_external_id=statement(
            visit_rows.where(account, _v.external_id == bindparam("external_id")), VisitRow
        ),
        insert=statement(insert_visit.returning(*_VISIT), Visit),
        insert_unless_external_id_exists=statement(insert_unless_external_id_exists.returning(*_VISIT), Visit),
        insert_reading_rules=None if dialect != "postgresql" else {
            external: statement(_reading_rules(insert_unless_external_id_exists if external else insert_visit))
            for external in (False, True)},
        # Every column a PUT may change, each set to itself unless given: one statement for all PUTs.
        update=statement(
            update(visits)
            .where(_v.id == bindparam("visit_id"))
            .values({
                name: case((bindparam(f"set_{name}", type_=Boolean), bindparam(f"new_{name}", type_=_v[name].type)),
                           else_=_v[name])
                for name in UPDATABLE
            })
            .values(updated_at=bindparam("updated_at", type_=_v.updated_at.type), **changed(dialect))
            .returning(*_VISIT),
            Visit,
        ),
        pages=pages,
        first_pages=first_pages,
        touch_contact_visits=statement(
            update(visits)
            .where(_v.contact_id == bindparam("contact_id", type_=_v.contact_id.type))
            .values(updated_at=bindparam("updated_at", type_=_v.updated_at.type), **changed(dialect)),
            bulk=True,
        ),
        delete_contact_visits=statement(
            delete(visits).where(_v.contact_id == bindparam("contact_id", type_=_v.contact_id.type))
            .returning(*_DELETED),
            DeletedVisit,
            bulk=True,
        ),
        # The contacts of the oldest `limit` visits created before a time, held against a delete as
        # every write for a contact is (ContactRepository.share); then those of their visits deleted.
        purge_contacts=statement(
            select(_c.id)
            .where(_c.id.in_(oldest.with_only_columns(_v.contact_id).scalar_subquery()))
            .order_by(_c.id)
            .with_for_update(of=contacts, read=True),  # FOR SHARE: see get_to_update
            bulk=True,
        ),
        purge_batch=statement(
            delete(visits)
            .where(_v.id.in_(
                oldest.where(_v.contact_id.in_(listed_ids(dialect, "contact_ids"))).scalar_subquery()
            ))
            .returning(*_DELETED),
            DeletedVisit,
            bulk=True,
        ),
        # The visit's contact held first (ContactRepository.share), as every write to a contact's
        # visits holds it: a contact's delete, which holds the contact and then deletes its visits,
        # and a visit's delete, whose counts then read the contact, otherwise wait for each other.
        delete=statement(
            delete(visits).where(account, _v.uuid == bindparam("uuid", type_=_v.uuid.type),
                                 _v.contact_id.in_(select(held_contact.c.id))).returning(*_DELETED),
            DeletedVisit,
        ),
        insert_tombstone=statement(
            insert(visit_tombstones).values(binds(visit_tombstones, "account_id", "uuid", "external_id", "deleted_at"))
        ),
        reshape=statement(
            update(accounts).where(accounts.c.id == bindparam("reshaped_account", type_=accounts.c.id.type))
            .values(visit_epoch=accounts.c.visit_epoch + 1)
        ),
        # On the uuid's index, in a statement of its own: joined into the import's insert, which has
        # no parameters, it would keep the plan of the first batch, made while visits may be small
        # (a hash of all its uuids), for every batch after.
        uuids_there=statement(select(_v.uuid).where(account, _v.uuid.in_(listed_ids(dialect, "uuids", _v.uuid.type))),
                              bulk=True),
        create_import_rows=statement(create_import_rows),
        analyze=statement(text("ANALYZE visits"), bulk=True),
        insert_imported=statement(insert_imported.returning(*_VISIT), Visit, bulk=True),
        insert_imported_contacts=statement(insert_imported.returning(_v.contact_id, _v.starts_at), bulk=True),
        clear_import_rows=statement(import_rows.delete(), bulk=True),
    )


STATEMENTS = per_dialect(_build)


class DuplicateExternalId(Exception):
    pass


class VisitRepository(CountQueries, FeedQueries, FilteredQueries, ExportQueries):
    """Every visits query, on the request's transaction: those of the counts, the feed, the filtered
    list and the export come from the parts of their modules."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def contact_and_shop(
        self, account_id: int, contact_uuid: UUID, shop_uuid: UUID, *, held: bool = False
    ) -> ContactAndShop | None:
        """The account's contact with the id of its shop (None when no such shop); None when no such
        contact. One round trip for what a create checks. `held`: the contact's row locked as visit
        rules hold it (ContactRepository.share in turn), not only against a delete."""
        params = {"account_id": account_id, "contact_uuid": contact_uuid, "shop_uuid": shop_uuid}
        statement = self.statements.contact_and_shop_held if held else self.statements.contact_and_shop
        return await self.tx.fetchrow(statement, params)

    async def insert(self, values: dict[str, Any]) -> Visit | None:
        """Inserts a visit; None when its external_id exists in the account already (nothing written)."""
        statements = self.statements
        statement = statements.insert if values["external_id"] is None else statements.insert_unless_external_id_exists
        return await self.tx.fetchrow(statement, values)

    async def insert_reading_rules(
        self, values: dict[str, Any], account_id: int
    ) -> tuple[Visit | None, list[RuleState]]:
        """insert, and the account's ACTIVE rules as they will read the visit (RuleState, before it is
        counted: RuleRepository.states_once_counted); nothing read when nothing was inserted."""
        statements = self.statements.insert_reading_rules
        if statements is None:
            inserted = await self.insert(values)
            if inserted is None:
                return None, []
            return inserted, await RuleRepository(self.tx).states_once_counted(account_id, inserted.contact_id)
        rows = await self.tx.fetch(statements[values["external_id"] is not None],
                                   {**values, "rule_account": account_id, "rule_contact": values["contact_id"]})
        if not rows:
            return None, []
        width = len(Visit._fields)  # the visit's columns, then its rule's (_reading_rules)
        return Visit._make(rows[0][:width]), [RuleState._make(row[width:]) for row in rows[1:]]

    async def insert_many(self, account_id: int, rows: list[dict[str, Any]], *, full: bool) -> list[Any]:
        """Inserts the account's visits in the given order, skipping those whose external_id the
        account has, or an earlier row had, and those whose `given_uuid` (when a row has one) is the
        uuid of one of the account's visits. Returns for each inserted row its Visit or, without
        `full`, a record of its contact_id and starts_at (what the counts need)."""
        statements = self.statements
        given = [row["given_uuid"] for row in rows if row.get("given_uuid") is not None]
        if given:
            there = {found.uuid for found in await self.tx.fetch(statements.uuids_there, {
                "account_id": account_id, "uuids": listed_uuids(given)})}
            rows = [row for row in rows if row.get("given_uuid") not in there]
        # COPY into a temporary table, then one INSERT ... SELECT: several times faster than a
        # multi-row INSERT, and still in the transaction.
        await self.tx.execute(statements.create_import_rows)
        await self.tx.copy_records(
            import_rows, ("n", *IMPORTED), [(n, *_imported_values(row)) for n, row in enumerate(rows)],
        )
        inserted = await self.tx.fetch(statements.insert_imported if full else statements.insert_imported_contacts)
        await self.tx.execute(statements.clear_import_rows)
        return inserted

    async def analyze(self) -> None:
        """Refreshes the planner's statistics of visits, after a bulk load."""
        await self.tx.execute(self.statements.analyze)

    async def get(self, account_id: int, uuid: UUID) -> VisitRow | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})

    async def get_to_update(self, account_id: int, uuid: UUID) -> VisitToUpdate | None:
        return await self.tx.fetchrow(self.statements.get_to_update, {"account_id": account_id, "uuid": uuid})

    async def get_by_external_id(self, account_id: int, external_id: str) -> VisitRow | None:
        return await self.tx.fetchrow(
            self.statements.get_by_external_id, {"account_id": account_id, "external_id": external_id}
        )

    async def update(self, visit_id: int, values: dict[str, Any], updated_at: datetime) -> Visit | None:
        """The visit updated; None when it is gone (a concurrent delete won)."""
        params: dict[str, Any] = {"visit_id": visit_id, "updated_at": updated_at}
        for name in UPDATABLE:
            params[f"set_{name}"] = name in values
            params[f"new_{name}"] = values.get(name)
        if "external_id" not in values:
            updated = await self.tx.fetchrow(self.statements.update, params)
        else:
            try:
                # A savepoint, so a refused external_id leaves the transaction usable on PostgreSQL.
                async with self.tx.savepoint():
                    updated = await self.tx.fetchrow(self.statements.update, params)
            except ConstraintViolation:
                raise DuplicateExternalId() from None
        return updated

    async def touch_contact_visits(self, contact_id: int, updated_at: datetime) -> None:
        """Moves the contact's visits to the end of the changes feed: they show the contact's email,
        which has changed."""
        await self.tx.execute(self.statements.touch_contact_visits,
                              {"contact_id": contact_id, "updated_at": updated_at})

    async def delete(self, account_id: int, uuid: UUID, deleted_at: datetime) -> DeletedVisit | None:
        """Deletes the account's visit, leaving its tombstone and taking it off the counts; None when
        there is no such visit (or a concurrent delete won)."""
        deleted = await self.tx.fetchrow(self.statements.delete, {"account_id": account_id, "uuid": uuid})
        if deleted is not None:
            await self._bury(account_id, [deleted], deleted_at)
        return deleted

    async def delete_contact_visits(self, account_id: int, contact_id: int, deleted_at: datetime) -> list[DeletedVisit]:
        """Deletes the contact's visits, as delete() deletes one."""
        deleted = await self.tx.fetch(self.statements.delete_contact_visits, {"contact_id": contact_id})
        await self._bury(account_id, deleted, deleted_at)
        return deleted

    async def purge_batch(self, account_id: int, before: datetime, limit: int, deleted_at: datetime) -> int:
        """Deletes up to `limit` of the account's oldest visits created before `before`, as delete()
        deletes one; the number deleted. Fewer than `limit` does not mean none are left: a visit
        whose contact was deleted meanwhile gives its place to one that waits for the next batch."""
        window = {"account_id": account_id, "before": before, "limit": limit}
        held = await self.tx.fetch(self.statements.purge_contacts, window)
        if not held:
            return 0
        contact_ids = json.dumps([row.id for row in held])
        purged = await self.tx.fetch(self.statements.purge_batch, {**window, "contact_ids": contact_ids})
        await self._bury(account_id, purged, deleted_at)
        return len(purged)

    async def _bury(self, account_id: int, deleted: list[DeletedVisit], deleted_at: datetime) -> None:
        """What every delete of visits leaves: a tombstone each, for the feed, and counts (and first and
        last visits) without them."""
        if not deleted:
            return
        await self.tx.executemany(self.statements.insert_tombstone, [
            {"account_id": account_id, "uuid": visit.uuid, "external_id": visit.external_id, "deleted_at": deleted_at}
            for visit in deleted
        ])
        per_contact = Counter(visit.contact_id for visit in deleted)
        # No spans given: the contacts' first and last visit are read afresh without these.
        await self.add_to_counts(account_id, {contact_id: -n for contact_id, n in per_contact.items()},
                                 slot=deleted[0].contact_id)

    async def reshaped(self, account_id: int) -> None:
        """Moves the account's visit_epoch: a visit starts elsewhere in time, which the changes feed
        (showing a visit as it is now) cannot tell the stats cache."""
        await self.tx.execute(self.statements.reshape, {"reshaped_account": account_id})

    async def first_page(
        self, account_id: int, contact_uuid: UUID | None, limit: int
    ) -> tuple[list[PageRow], int]:
        """Page 1 (limit > 0) and the total, of the account's visits or of its contact's (none, and 0,
        when the account has no such contact)."""
        params: dict[str, Any] = {"account_id": account_id, "limit": limit}
        if contact_uuid is not None:
            params["contact_uuid"] = contact_uuid
        rows = await self.tx.fetch(self.statements.first_pages[contact_uuid is not None], params)
        return rows, (int(rows[0].total) if rows else 0)

    async def page(
        self, account_id: int, contact_id: int | None, limit: int, offset: int, total: int
    ) -> list[PageRow]:
        """Newest first, each row with the total as the statement saw it (`total` is the one the page
        was cut from). A page in the older half is read from the oldest end, so the last page costs
        what the first does; the rows are found on the index alone, then joined."""
        from_end = offset > total - offset - limit
        if from_end:
            limit, offset = min(limit, total - offset), max(0, total - offset - limit)
        statement = self.statements.pages[(contact_id is not None, not from_end)]
        params = {"account_id": account_id, "limit": limit, "offset": offset}
        if contact_id is not None:
            params["contact_id"] = contact_id
        rows = await self.tx.fetch(statement, params)
        return rows[::-1] if from_end else rows
