import functools
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.db import dialect_insert
from footfall.models import AccountVisitCount, Contact, Shop, Visit

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


_RETURNED = ["id", "uuid", "contact_id", "external_id", "source", "starts_at", "ends_at", "created_at"]
_COPY_COLUMNS = [
    "n", "account_id", "contact_id", "shop_id", "external_id", "source", "starts_at", "ends_at", "created_at"
]


class _Inserted(NamedTuple):
    id: int
    uuid: UUID
    contact_id: int
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime


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


_WRITTEN = (_v.id, _v.uuid, _v.contact_id, _v.shop_id, _v.external_id, _v.source, _v.starts_at, _v.ends_at,
            _v.created_at)


def _with_contact(row: Row, contact_uuid: UUID, contact_email: str) -> VisitRow:
    values = row._mapping
    return VisitRow(
        values["id"], values["uuid"], values["contact_id"], values["shop_id"], contact_uuid, contact_email,
        values["external_id"], values["source"], values["starts_at"], values["ends_at"], values["created_at"],
    )


@functools.cache
def _statements(dialect: str) -> SimpleNamespace:
    """The write path's statements, built once per dialect: building and keying a statement for the
    compiled cache cost more CPU than running it (py-spy, under wrk, on create)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    counts = AccountVisitCount.__table__
    upsert = insert(counts)
    shop_id = select(_s.id).where(_s.account_id == bindparam("account_id"), _s.uuid == bindparam("shop_uuid"))
    return SimpleNamespace(
        contact_and_shop=select(_c.id, _c.uuid, _c.email, shop_id.scalar_subquery().label("shop_id")).where(
            _c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid")
        ),
        insert=Visit.__table__.insert().returning(*_WRITTEN),
        insert_unless_external_id_exists=insert(Visit.__table__)
        .on_conflict_do_nothing(index_elements=["account_id", "external_id"])
        .returning(*_WRITTEN),
        count_contacts=update(Contact.__table__)
        .where(_c.id == bindparam("contact_id"))
        .values(visit_count=_c.visit_count + bindparam("added")),
        count_account=upsert.on_conflict_do_update(
            index_elements=["account_id", "slot"], set_={"count": counts.c.count + upsert.excluded.count}
        ),
    )


class DuplicateExternalId(Exception):
    pass


class VisitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _core(self, statement, parameters: Any = None) -> Any:
        """Runs a Core statement on the session's connection, past the ORM's per-statement work
        (a fifth of a show request's CPU when run through Session.execute)."""
        return await (await self.session.connection()).execute(statement, parameters)

    @property
    def _prebuilt(self) -> SimpleNamespace:
        return _statements(self.session.bind.dialect.name)

    async def contact_and_shop(self, account_id: int, contact_uuid: UUID, shop_uuid: UUID) -> Row | None:
        """The account's contact (id, uuid, email) with the id of its shop, or None for the shop's id
        when no such shop; None when no such contact. One round trip for what a create checks."""
        parameters = {"account_id": account_id, "contact_uuid": contact_uuid, "shop_uuid": shop_uuid}
        return (await self._core(self._prebuilt.contact_and_shop, parameters)).first()

    async def insert(self, values: dict[str, Any], contact_uuid: UUID, contact_email: str) -> VisitRow | None:
        """Inserts a visit; None when its external_id exists in the account already (nothing written)."""
        prebuilt = self._prebuilt
        statement = prebuilt.insert if values.get("external_id") is None else prebuilt.insert_unless_external_id_exists
        row = (await self._core(statement, values)).first()
        return None if row is None else _with_contact(row, contact_uuid, contact_email)

    async def insert_many(self, rows: list[dict[str, Any]], *, full: bool) -> Sequence[Any]:
        """Inserts visits (without uuids: they are made here), skipping those whose external_id the
        account has, or an earlier row had. Returns for each inserted row its contact_id or, with
        `full`, every column a visit answer needs."""
        if self.session.bind.dialect.name == "postgresql":
            return await self._copy_many(rows, full)
        table = Visit.__table__
        returned = _RETURNED if full else ["contact_id"]
        statement = (
            dialect_insert(self.session, table)
            .on_conflict_do_nothing(index_elements=["account_id", "external_id"])
            .returning(*(table.c[name] for name in returned))
        )
        result = (await self.session.execute(statement, [{**row, "uuid": uuid4()} for row in rows])).all()
        return [_Inserted(*row) for row in result] if full else [row[0] for row in result]

    async def _copy_many(self, rows: list[dict[str, Any]], full: bool) -> list[Any]:
        # COPY into a temporary table, then one INSERT ... SELECT: several times faster than a
        # multi-row INSERT built by the driver, and still in the session's transaction.
        connection = await self.session.connection()
        # The driver opens the transaction at the first statement SQLAlchemy sends: send one first,
        # so what follows on the raw connection runs inside it.
        await connection.execute(select(1))
        driver = (await connection.get_raw_connection()).driver_connection
        await driver.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS visits_import (n integer, account_id bigint, "
            "contact_id bigint, shop_id bigint, external_id varchar(255), source varchar(255), "
            "starts_at timestamptz, ends_at timestamptz, created_at timestamptz) ON COMMIT DELETE ROWS"
        )
        await driver.copy_records_to_table(
            "visits_import",
            columns=_COPY_COLUMNS,
            records=[(n, *(row[c] for c in _COPY_COLUMNS[1:])) for n, row in enumerate(rows)],
        )
        columns = ", ".join(_COPY_COLUMNS[1:])
        records = await driver.fetch(
            f"INSERT INTO visits (uuid, {columns}) SELECT gen_random_uuid(), {columns} FROM visits_import "
            "ORDER BY n ON CONFLICT (account_id, external_id) DO NOTHING "
            f"RETURNING {', '.join(_RETURNED if full else ['contact_id'])}"
        )
        await driver.execute("TRUNCATE visits_import")
        return [_Inserted(*record) for record in records] if full else [record[0] for record in records]

    async def get(self, account_id: int, uuid: UUID) -> Row | None:
        return (await self._core(_visits.where(_v.account_id == account_id, _v.uuid == uuid))).first()

    async def get_by_external_id(self, account_id: int, external_id: str) -> Row | None:
        statement = _visits.where(_v.account_id == account_id, _v.external_id == external_id)
        return (await self.session.execute(statement)).first()

    async def update(self, visit: Row | VisitRow, values: dict[str, Any]) -> VisitRow:
        statement = update(Visit.__table__).where(_v.id == visit.id).values(values).returning(*_WRITTEN)
        if "external_id" not in values:
            row = (await self._core(statement)).one()
        else:
            try:
                # A savepoint, so a refused external_id leaves the transaction usable on PostgreSQL.
                async with self.session.begin_nested():
                    row = (await self._core(statement)).one()
            except IntegrityError as error:
                raise DuplicateExternalId() from error
        return _with_contact(row, visit.contact_uuid, visit.contact_email)

    async def count(self, account_id: int, contact_id: int | None = None) -> int:
        """The kept count (see add_to_counts): no count(*) that grows with the table."""
        if contact_id is not None:
            statement = select(_c.visit_count).where(_c.id == contact_id)
        else:
            counts = AccountVisitCount.__table__.c
            statement = select(func.coalesce(func.sum(counts.count), 0)).where(counts.account_id == account_id)
        return int((await self._core(statement)).scalar() or 0)

    async def add_to_counts(self, account_id: int, per_contact: dict[int, int], slot: int) -> None:
        """Adds new visits to the counts, in the transaction that inserts them."""
        prebuilt = self._prebuilt
        # One statement for all contacts (executemany), however many the batch touched.
        await self._core(
            prebuilt.count_contacts,
            [{"contact_id": contact_id, "added": added} for contact_id, added in per_contact.items()],
        )
        await self._core(
            prebuilt.count_account,
            {"account_id": account_id, "slot": slot % COUNT_SLOTS, "count": sum(per_contact.values())},
        )

    async def page(
        self, account_id: int, contact_id: int | None, limit: int, offset: int, total: int
    ) -> Sequence[Row]:
        """Newest first. A page in the older half is read from the oldest end, so the last page costs
        what the first does; the rows are found on the index alone, then joined (a deferred join)."""
        filters = [_v.account_id == account_id]
        if contact_id is not None:
            filters.append(_v.contact_id == contact_id)
        from_end = offset > total - offset - limit
        if from_end:
            limit, offset = min(limit, total - offset), max(0, total - offset - limit)
            order = (_v.created_at.asc(), _v.id.asc())
        else:
            order = (_v.created_at.desc(), _v.id.desc())
        ids = select(_v.id).where(*filters).order_by(*order).limit(limit).offset(offset).subquery()
        statement = _visits.join(ids, ids.c.id == _v.id).order_by(*order)
        rows = (await self._core(statement)).all()
        return rows[::-1] if from_end else rows
