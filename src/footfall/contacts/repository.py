from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.db import insert_ignoring_conflicts
from footfall.models import Contact


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_absent(self, contact: Contact) -> bool:
        """Inserts unless the account has the email already; True when this call inserted it."""
        statement = insert_ignoring_conflicts(
            self.session,
            Contact,
            ["account_id", "email"],
            {"uuid": contact.uuid, "account_id": contact.account_id, "email": contact.email,
             "created_at": contact.created_at},
        )
        return (await self.session.execute(statement.returning(Contact.id))).scalar() is not None

    async def get(self, account_id: int, uuid: UUID) -> Contact | None:
        return await self.session.scalar(
            select(Contact).where(Contact.account_id == account_id, Contact.uuid == uuid)
        )

    async def get_by_email(self, account_id: int, email: str) -> Contact | None:
        return await self.session.scalar(
            select(Contact).where(Contact.account_id == account_id, Contact.email == email)
        )

    async def count(self, account_id: int) -> int:
        return await self.session.scalar(select(func.count()).where(Contact.account_id == account_id)) or 0

    async def page(self, account_id: int, limit: int, offset: int) -> Sequence[Contact]:
        statement = (
            select(Contact)
            .where(Contact.account_id == account_id)
            .order_by(Contact.created_at.desc(), Contact.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return (await self.session.scalars(statement)).all()

    async def uuid_map(self, account_id: int) -> dict[UUID, tuple[int, str]]:
        rows = await self.session.execute(
            select(Contact.uuid, Contact.id, Contact.email).where(Contact.account_id == account_id)
        )
        return {uuid: (id, email) for uuid, id, email in rows}
