from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.db import insert_ignoring_conflicts
from footfall.models import Contact, Visit

# What a visit answer needs, read in one joined query (no ORM identity map on the hot path).
VISIT_COLUMNS = (
    Visit.id,
    Visit.uuid,
    Visit.contact_id,
    Visit.shop_id,
    Contact.uuid.label("contact_uuid"),
    Contact.email.label("contact_email"),
    Visit.external_id,
    Visit.source,
    Visit.starts_at,
    Visit.ends_at,
    Visit.created_at,
)
_visits = select(*VISIT_COLUMNS).join(Contact, Contact.id == Visit.contact_id)


class DuplicateExternalId(Exception):
    pass


class VisitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> int | None:
        """Inserts a visit; None when its external_id exists in the account already (nothing written)."""
        if values.get("external_id") is None:
            statement = Visit.__table__.insert().values(values)
        else:
            statement = insert_ignoring_conflicts(self.session, Visit, ["account_id", "external_id"], values)
        return (await self.session.execute(statement.returning(Visit.id))).scalar()

    async def get(self, account_id: int, uuid: UUID) -> Row | None:
        return (await self.session.execute(_visits.where(Visit.account_id == account_id, Visit.uuid == uuid))).first()

    async def get_by_id(self, id: int) -> Row | None:
        return (await self.session.execute(_visits.where(Visit.id == id))).first()

    async def get_by_external_id(self, account_id: int, external_id: str) -> Row | None:
        statement = _visits.where(Visit.account_id == account_id, Visit.external_id == external_id)
        return (await self.session.execute(statement)).first()

    async def update(self, id: int, values: dict[str, Any]) -> None:
        try:
            # A savepoint, so a refused external_id leaves the transaction usable on PostgreSQL.
            async with self.session.begin_nested():
                await self.session.execute(update(Visit).where(Visit.id == id).values(values))
        except IntegrityError as error:
            raise DuplicateExternalId() from error

    async def count(self, account_id: int, contact_id: int | None = None) -> int:
        statement = select(func.count()).select_from(Visit)
        if contact_id is None:
            statement = statement.where(Visit.account_id == account_id)
        else:
            statement = statement.where(Visit.contact_id == contact_id)
        return await self.session.scalar(statement) or 0

    async def page(self, account_id: int, contact_id: int | None, limit: int, offset: int) -> Sequence[Row]:
        statement = _visits.where(Visit.account_id == account_id)
        if contact_id is not None:
            statement = statement.where(Visit.contact_id == contact_id)
        statement = statement.order_by(Visit.created_at.desc(), Visit.id.desc()).limit(limit).offset(offset)
        return (await self.session.execute(statement)).all()
