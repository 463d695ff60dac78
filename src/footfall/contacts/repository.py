import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import String, bindparam, delete, func, insert, select, update

from footfall.db import ConstraintViolation, Statement, Tx, binds, listed_ids, paged, per_dialect, upsert
from footfall.tables import accounts, contact_visit_counts, contacts, visits

_c = contacts.c


class Contact(NamedTuple):
    id: int
    uuid: UUID
    email: str | None  # None for an anonymous contact
    visit_count: int
    first_visit_at: datetime | None  # the earliest and latest starts_at of its visits
    last_visit_at: datetime | None


class ContactKey(NamedTuple):
    uuid: UUID
    id: int
    email: str | None


_v = visits.c


def _visit_starts(aggregate: Any) -> Any:
    # One probe of ix_visits_contact_starts, however many visits the contact has.
    return select(aggregate(_v.starts_at)).where(_v.contact_id == _c.id).scalar_subquery()


def kept_visit_count(contact_id: Any) -> Any:
    """The contact's kept visit count (contact_visit_counts; no row is 0)."""
    counts = contact_visit_counts.c
    return func.coalesce(select(counts.count).where(counts.contact_id == contact_id).scalar_subquery(), 0)


_CONTACT = (_c.id, _c.uuid, _c.email, kept_visit_count(_c.id).label("visit_count"),
            _visit_starts(func.min).label("first_visit_at"), _visit_starts(func.max).label("last_visit_at"))


@dataclass(frozen=True)
class ContactStatements:
    insert_if_absent: Statement
    insert_anonymous: Statement
    claim: Statement
    delete: Statement
    account_uuid_of: Statement
    get: Statement[Contact]
    get_by_email: Statement[Contact]
    count: Statement
    page: Statement[Contact]
    keys: Statement[ContactKey]
    lock: Statement
    share: Statement


def _build(dialect: str) -> ContactStatements:
    statement = partial(Statement, dialect=dialect)
    account = _c.account_id == bindparam("account_id")
    return ContactStatements(
        # The unique key decides between "create" and "already there": the database settles
        # concurrent creates, where a read-then-write would let both through.
        insert_if_absent=statement(
            upsert(dialect, contacts)
            .values(binds(contacts, "uuid", "account_id", "email", "created_at"))
            .on_conflict_do_nothing(index_elements=["account_id", "email"])
            .returning(_c.id)
        ),
        insert_anonymous=statement(
            insert(contacts).values(binds(contacts, "uuid", "account_id", "created_at"))
        ),
        claim=statement(
            update(contacts)
            .where(account, _c.uuid == bindparam("uuid"), _c.email.is_(None))
            .values(email=bindparam("email", type_=String))
        ),
        delete=statement(delete(contacts).where(_c.id == bindparam("contact_id", type_=_c.id.type)).returning(_c.id)),
        account_uuid_of=statement(
            select(accounts.c.uuid).join(contacts, _c.account_id == accounts.c.id).where(_c.uuid == bindparam("uuid"))
        ),
        get=statement(select(*_CONTACT).where(account, _c.uuid == bindparam("uuid")), Contact),
        get_by_email=statement(select(*_CONTACT).where(account, _c.email == bindparam("email")), Contact),
        count=statement(select(func.count().label("count")).where(account)),
        page=statement(
            paged(select(*_CONTACT).where(account).order_by(_c.created_at.desc(), _c.id.desc())),
            Contact,
        ),
        keys=statement(select(_c.uuid, _c.id, _c.email).where(account), ContactKey),
        # A contact's delete and every write for the contact serialize on its row (PostgreSQL; SQLite
        # has one writer): the delete locks it FOR UPDATE first, the writes FOR KEY SHARE (which
        # writes do not block one another on) before they touch its visits, in id order.
        lock=statement(select(_c.id).where(_c.id == bindparam("contact_id", type_=_c.id.type)).with_for_update()),
        share=statement(
            select(_c.id).where(_c.id.in_(listed_ids(dialect, "contact_ids"))).order_by(_c.id)
            .with_for_update(key_share=True, read=True)
        ),
    )


STATEMENTS = per_dialect(_build)


class ContactRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert_if_absent(self, values: dict) -> bool:
        """Inserts unless the account has the email already; True when this call inserted it."""
        return await self.tx.fetchrow(self.statements.insert_if_absent, values) is not None

    async def insert_anonymous(self, values: dict) -> None:
        await self.tx.execute(self.statements.insert_anonymous, values)

    async def claim(self, account_id: int, uuid: UUID, email: str) -> bool | None:
        """Gives an anonymous contact its email: True when it did, False when the contact has an
        email already (or is not there), None when another of the account's contacts has this one."""
        try:
            async with self.tx.savepoint():
                return await self.tx.execute(
                    self.statements.claim, {"account_id": account_id, "uuid": uuid, "email": email}
                ) == 1
        except ConstraintViolation:
            return None

    async def delete(self, contact_id: int) -> bool:
        """False when the contact was gone already (a concurrent delete won)."""
        return await self.tx.fetchrow(self.statements.delete, {"contact_id": contact_id}) is not None

    async def lock(self, contact_id: int) -> bool:
        """Locks the contact against every write for it until the transaction ends (see share);
        False when it is gone."""
        return await self.tx.fetchval(self.statements.lock, {"contact_id": contact_id}) is not None

    async def share(self, contact_ids: Iterable[int]) -> set[int]:
        """Holds the contacts against a delete until the transaction ends; the ids of those still there."""
        ids = json.dumps(sorted(set(contact_ids)))
        return {row.id for row in await self.tx.fetch(self.statements.share, {"contact_ids": ids})}

    async def account_uuid_of(self, uuid: UUID) -> UUID | None:
        """The uuid of the account that has this contact (for the admin commands, which name none)."""
        return await self.tx.fetchval(self.statements.account_uuid_of, {"uuid": uuid})

    async def get(self, account_id: int, uuid: UUID) -> Contact | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})

    async def get_by_email(self, account_id: int, email: str) -> Contact | None:
        return await self.tx.fetchrow(self.statements.get_by_email, {"account_id": account_id, "email": email})

    async def count(self, account_id: int) -> int:
        return await self.tx.fetchval(self.statements.count, {"account_id": account_id})

    async def page(self, account_id: int, limit: int, offset: int) -> list[Contact]:
        return await self.tx.fetch(
            self.statements.page, {"account_id": account_id, "limit": limit, "offset": offset}
        )

    async def uuid_map(self, account_id: int) -> dict[UUID, ContactKey]:
        return {key.uuid: key for key in await self.tx.fetch(self.statements.keys, {"account_id": account_id})}
