import functools
import operator
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Boolean, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from footfall.db import ConstraintViolation, Tx
from footfall.models import AccountVisitCount, Contact, Shop, Visit
from footfall.webhooks.repository import subscribed

COUNT_SLOTS = 16  # rows an account's visit count is spread over

# What a visit answer needs, read in one joined Core query: no ORM entities on the hot path.
_v, _c, _s = Visit.__table__.c, Contact.__table__.c, Shop.__table__.c
VISIT_COLUMNS = (
    _v.id,
    _v.uuid,
    _v.contact_id,
    _v.shop_id,
    _c.uuid.label("contact_uuid"),
    _c.email.label("contact_email"),
    _v.external_id,
    _v.source,
    _v.starts_at,
    _v.ends_at,
    _v.created_at,
)
_visits = select(*VISIT_COLUMNS).select_from(Visit.__table__.join(Contact.__table__, _c.id == _v.contact_id))


_COPY_COLUMNS = [
    "n", "account_id", "contact_id", "shop_id", "external_id", "source", "starts_at", "ends_at", "created_at"
]
_copy_values = operator.itemgetter(*_COPY_COLUMNS[1:])


class VisitRow(NamedTuple):
    """A visit with its contact's uuid and email: what a visit answer is made of (VISIT_COLUMNS)."""

    id: int
    uuid: UUID
    contact_id: int
    shop_id: int
    contact_uuid: UUID
    contact_email: str
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime


class ContactAndShop(NamedTuple):
    id: int
    uuid: UUID
    email: str
    shop_id: int | None
    notify: bool  # the account subscribes to visit_created


class VisitToUpdate(NamedTuple):
    visit: VisitRow
    notify: bool  # the account subscribes to visit_updated


_WRITTEN = (_v.id, _v.uuid, _v.contact_id, _v.shop_id, _v.external_id, _v.source, _v.starts_at, _v.ends_at,
            _v.created_at)
_INSERTED_COLUMNS = ("uuid", "account_id", "contact_id", "shop_id", "external_id", "source", "starts_at", "ends_at",
                     "created_at")


def with_contact(row: Sequence[Any], contact_uuid: UUID, contact_email: str) -> VisitRow:
    """A row of _WRITTEN, with the contact's uuid and email the caller has."""
    return VisitRow(row[0], row[1], row[2], row[3], contact_uuid, contact_email, *row[4:])


_NEWEST_FIRST = (_v.created_at.desc(), _v.id.desc())
_OLDEST_FIRST = (_v.created_at.asc(), _v.id.asc())


def _page(filters, order):
    """A page: the rows found on the index alone, then joined (a deferred join)."""
    ids = select(_v.id).where(*filters).order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    ids = ids.subquery()
    return _visits.join(ids, ids.c.id == _v.id).order_by(*order)


def _pages() -> dict[tuple[bool, bool], Any]:
    """(by contact, newest first) -> a page at any offset, the contact given by id."""
    account = _v.account_id == bindparam("account_id")
    return {
        (contact, newest_first): _page(
            [account, _v.contact_id == bindparam("contact_id")] if contact else [account],
            _NEWEST_FIRST if newest_first else _OLDEST_FIRST,
        )
        for contact in (False, True)
        for newest_first in (False, True)
    }


_filter_contact = Contact.__table__.alias("filter_contact")


def _account_total():
    """The account's kept visit count: the sum of its slots (see add_to_counts)."""
    counts = AccountVisitCount.__table__.c
    return select(func.coalesce(func.sum(counts.count), 0)).where(counts.account_id == bindparam("account_id"))


def _first_pages() -> dict[bool, Any]:
    """by contact -> page 1 with its total as a last column, in one round trip: newest first needs no
    total to find its rows, and an empty first page means a total of 0. The contact given by uuid."""
    account = _v.account_id == bindparam("account_id")
    account_total = _account_total()
    contact = (_filter_contact.c.account_id == bindparam("account_id"),
               _filter_contact.c.uuid == bindparam("contact_uuid"))
    contact_id = select(_filter_contact.c.id).where(*contact).scalar_subquery()
    contact_total = select(_filter_contact.c.visit_count).where(*contact)
    # No deferred join at offset 0: read backwards along the index, the first `limit` rows are the
    # page; joining ids back to their rows only pays where an offset skips rows.
    first = _visits.order_by(*_NEWEST_FIRST).limit(bindparam("limit"))
    return {
        False: first.where(account).add_columns(account_total.scalar_subquery().label("total")),
        True: first.where(account, _v.contact_id == contact_id).add_columns(
            contact_total.scalar_subquery().label("total")
        ),
    }


def _count_many_contacts():
    ids = postgresql.ARRAY(BigInteger)
    added = select(
        func.unnest(bindparam("contact_ids", type_=ids)).label("contact_id"),
        func.unnest(bindparam("added_counts", type_=ids)).label("added"),
    ).subquery()
    return (
        update(Contact.__table__)
        .where(_c.id == added.c.contact_id)
        .values(visit_count=_c.visit_count + added.c.added)
    )


@functools.cache
def _statements(dialect: str) -> SimpleNamespace:
    """Every statement of the hot paths, built once per dialect: building a statement and keying it
    for the compiled cache cost more CPU than running it (py-spy, under wrk), and on PostgreSQL each
    is compiled once to the text asyncpg runs (db.DriverTx)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    counts = AccountVisitCount.__table__
    upsert = insert(counts)
    shop_id = select(_s.id).where(_s.account_id == bindparam("account_id"), _s.uuid == bindparam("shop_uuid"))
    new_visit = {name: bindparam(name) for name in _INSERTED_COLUMNS}
    count_contacts = (
        update(Contact.__table__)
        .where(_c.id == bindparam("contact_id"))
        .values(visit_count=_c.visit_count + bindparam("added"))
    )
    # Its parameters are named apart from the columns of contacts: SQLAlchemy would read a parameter
    # named like a column as a SET of the UPDATE in count_contact_and_account.
    count_account = upsert.values(
        account_id=bindparam("counted_account"), slot=bindparam("counted_slot"), count=bindparam("added_visits")
    ).on_conflict_do_update(index_elements=["account_id", "slot"], set_={"count": counts.c.count + upsert.excluded.count})
    return SimpleNamespace(
        contact_and_shop=select(
            _c.id,
            _c.uuid,
            _c.email,
            shop_id.scalar_subquery().label("shop_id"),
            subscribed(bindparam("account_id"), "visit_created").label("notify"),
        ).where(_c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid")),
        get=_visits.where(_v.account_id == bindparam("account_id"), _v.uuid == bindparam("uuid")),
        get_to_update=_visits.add_columns(subscribed(bindparam("account_id"), "visit_updated").label("notify")).where(
            _v.account_id == bindparam("account_id"), _v.uuid == bindparam("uuid")
        ),
        get_by_external_id=_visits.where(
            _v.account_id == bindparam("account_id"), _v.external_id == bindparam("external_id")
        ),
        insert=insert(Visit.__table__).values(new_visit).returning(*_WRITTEN),
        insert_unless_external_id_exists=insert(Visit.__table__)
        .values(new_visit)
        .on_conflict_do_nothing(index_elements=["account_id", "external_id"])
        .returning(*_WRITTEN),
        # Every column a PUT may change, each set to itself unless given: one statement for all PUTs.
        update=update(Visit.__table__)
        .where(_v.id == bindparam("visit_id"))
        .values(
            {
                name: case((bindparam(f"set_{name}", type_=Boolean), bindparam(f"new_{name}", type_=_v[name].type)),
                           else_=_v[name])
                for name in UPDATABLE
            }
        )
        .returning(*_WRITTEN),
        count_contacts=count_contacts,
        count_account=count_account,
        # PostgreSQL runs both counts of one contact's new visit as one statement (a data-modifying
        # WITH): a round trip fewer per create. SQLite has no such WITH.
        count_contact_and_account=count_account.add_cte(count_contacts.cte("counted_contact"))
        if dialect == "postgresql"
        else None,
        # An import batch touches thousands of contacts: one UPDATE over arrays on PostgreSQL, where
        # one UPDATE per contact cost more than inserting the visits (at 1,000,000 visits).
        count_many_contacts=_count_many_contacts() if dialect == "postgresql" else None,
        account_count=_account_total(),
        contact_count=select(_c.id, _c.visit_count).where(
            _c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid")
        ),
        pages=_pages(),
        first_pages=_first_pages(),
    )


UPDATABLE = ("external_id", "source", "starts_at", "ends_at")


class DuplicateExternalId(Exception):
    pass


class VisitRepository:
    """Every visits query, on the request's transaction (a Tx: on PostgreSQL a DriverTx)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = _statements(tx.dialect)

    async def contact_and_shop(self, account_id: int, contact_uuid: UUID, shop_uuid: UUID) -> ContactAndShop | None:
        """The account's contact with the id of its shop, or None for the shop's id when no such shop;
        None when no such contact. One round trip for what a create checks."""
        row = await self.tx.fetchrow(
            self.statements.contact_and_shop,
            {"account_id": account_id, "contact_uuid": contact_uuid, "shop_uuid": shop_uuid},
        )
        return None if row is None else ContactAndShop(*row)

    async def contact_count(self, account_id: int, contact_uuid: UUID) -> tuple[int, int] | None:
        """The account's contact's (id, visit count), or None when no such contact."""
        row = await self.tx.fetchrow(
            self.statements.contact_count, {"account_id": account_id, "contact_uuid": contact_uuid}
        )
        return None if row is None else (row[0], row[1])

    async def insert(self, values: dict[str, Any], contact_uuid: UUID, contact_email: str) -> VisitRow | None:
        """Inserts a visit; None when its external_id exists in the account already (nothing written)."""
        statements = self.statements
        statement = statements.insert if values["external_id"] is None else statements.insert_unless_external_id_exists
        row = await self.tx.fetchrow(statement, values)
        return None if row is None else with_contact(row, contact_uuid, contact_email)

    async def insert_many(self, rows: list[dict[str, Any]], *, full: bool) -> Sequence[Any]:
        """Inserts visits (without uuids: they are made here), skipping those whose external_id the
        account has, or an earlier row had. Returns for each inserted row its contact_id or, with
        `full`, every column of _WRITTEN."""
        if self.tx.dialect == "postgresql":
            return await self._copy_many(rows, full)
        inserted = await self.tx.insert_many_returning(
            self.statements.insert_unless_external_id_exists, [{**row, "uuid": uuid4()} for row in rows]
        )
        rows_in = [row for row in inserted if row is not None]
        return rows_in if full else [row[2] for row in rows_in]

    async def _copy_many(self, rows: list[dict[str, Any]], full: bool) -> list[Any]:
        # COPY into a temporary table, then one INSERT ... SELECT: several times faster than a
        # multi-row INSERT built by the driver, and still in the transaction.
        driver = await self.tx.driver()
        await driver.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS visits_import (n integer, account_id bigint, "
            "contact_id bigint, shop_id bigint, external_id varchar(255), source varchar(255), "
            "starts_at timestamptz, ends_at timestamptz, created_at timestamptz) ON COMMIT DELETE ROWS"  # one batch a transaction
        )
        await driver.copy_records_to_table(
            "visits_import",
            columns=_COPY_COLUMNS,
            records=[(n, *_copy_values(row)) for n, row in enumerate(rows)],
        )
        columns = ", ".join(_COPY_COLUMNS[1:])
        returned = ", ".join(column.name for column in _WRITTEN) if full else "contact_id"
        records = await driver.fetch(
            f"INSERT INTO visits (uuid, {columns}) SELECT gen_random_uuid(), {columns} FROM visits_import "
            f"ORDER BY n ON CONFLICT (account_id, external_id) DO NOTHING RETURNING {returned}"
        )
        return list(records) if full else [record[0] for record in records]

    async def get(self, account_id: int, uuid: UUID) -> VisitRow | None:
        row = await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})
        return None if row is None else VisitRow(*row)

    async def get_to_update(self, account_id: int, uuid: UUID) -> VisitToUpdate | None:
        row = await self.tx.fetchrow(self.statements.get_to_update, {"account_id": account_id, "uuid": uuid})
        return None if row is None else VisitToUpdate(VisitRow(*row[:-1]), row[-1])

    async def get_by_external_id(self, account_id: int, external_id: str) -> VisitRow | None:
        row = await self.tx.fetchrow(
            self.statements.get_by_external_id, {"account_id": account_id, "external_id": external_id}
        )
        return None if row is None else VisitRow(*row)

    async def update(self, visit: VisitRow, values: dict[str, Any]) -> VisitRow:
        params: dict[str, Any] = {"visit_id": visit.id}
        for name in UPDATABLE:
            params[f"set_{name}"] = name in values
            params[f"new_{name}"] = values.get(name)
        if "external_id" not in values:
            row = await self.tx.fetchrow(self.statements.update, params)
        else:
            try:
                # A savepoint, so a refused external_id leaves the transaction usable on PostgreSQL.
                async with self.tx.savepoint():
                    row = await self.tx.fetchrow(self.statements.update, params)
            except ConstraintViolation:
                raise DuplicateExternalId() from None
        return with_contact(row, visit.contact_uuid, visit.contact_email)

    async def account_count(self, account_id: int) -> int:
        """The kept count (see add_to_counts): no count(*) that grows with the table."""
        row = await self.tx.fetchrow(self.statements.account_count, {"account_id": account_id})
        return int(row[0])

    async def add_to_counts(self, account_id: int, per_contact: dict[int, int], slot: int) -> None:
        """Adds new visits to the counts, in the transaction that inserts them."""
        statements = self.statements
        account = {"counted_account": account_id, "counted_slot": slot % COUNT_SLOTS,
                   "added_visits": sum(per_contact.values())}
        if len(per_contact) == 1 and statements.count_contact_and_account is not None:
            [(contact_id, added)] = per_contact.items()
            await self.tx.execute(
                statements.count_contact_and_account, {**account, "contact_id": contact_id, "added": added}
            )
            return
        # In contact id order: two writers lock the contacts they share in the same order.
        ordered = sorted(per_contact.items())
        if statements.count_many_contacts is not None:
            await self.tx.execute(
                statements.count_many_contacts,
                {"contact_ids": [contact_id for contact_id, _ in ordered], "added_counts": [n for _, n in ordered]},
            )
        else:
            await self.tx.executemany(
                statements.count_contacts, [{"contact_id": contact_id, "added": added} for contact_id, added in ordered]
            )
        await self.tx.execute(statements.count_account, account)

    async def first_page(self, account_id: int, contact_uuid: UUID | None, limit: int) -> tuple[list[VisitRow], int]:
        """Page 1 (limit > 0) and the total, of the account's visits or of its contact's (none, and 0,
        when the account has no such contact)."""
        params: dict[str, Any] = {"account_id": account_id, "limit": limit}
        if contact_uuid is not None:
            params["contact_uuid"] = contact_uuid
        rows = await self.tx.fetch(self.statements.first_pages[contact_uuid is not None], params)
        return [VisitRow(*row[:-1]) for row in rows], (int(rows[0][-1]) if rows else 0)

    async def page(
        self, account_id: int, contact_id: int | None, limit: int, offset: int, total: int
    ) -> list[VisitRow]:
        """Newest first. A page in the older half is read from the oldest end, so the last page costs
        what the first does; the rows are found on the index alone, then joined."""
        from_end = offset > total - offset - limit
        if from_end:
            limit, offset = min(limit, total - offset), max(0, total - offset - limit)
        statement = self.statements.pages[(contact_id is not None, not from_end)]
        params = {"account_id": account_id, "limit": limit, "offset": offset}
        if contact_id is not None:
            params["contact_id"] = contact_id
        rows = [VisitRow(*row) for row in await self.tx.fetch(statement, params)]
        return rows[::-1] if from_end else rows
