from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.models import Account, ApiToken


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str) -> Account:
        account = Account(name=name)
        self.session.add(account)
        await self.session.flush()
        return account

    async def get_by_uuid(self, uuid: UUID) -> Account | None:
        return await self.session.scalar(select(Account).where(Account.uuid == uuid))

    async def get_by_name(self, name: str) -> Account | None:
        return await self.session.scalar(select(Account).where(Account.name == name).order_by(Account.id).limit(1))


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def get_by_hash(self, token_hash: str) -> ApiToken | None:
        return await self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    async def revoke(self, uuid: UUID, at: datetime) -> ApiToken | None:
        await self.session.execute(
            update(ApiToken).where(ApiToken.uuid == uuid, ApiToken.revoked_at.is_(None)).values(revoked_at=at)
        )
        return await self.session.scalar(
            select(ApiToken).where(ApiToken.uuid == uuid).execution_options(populate_existing=True)
        )

    async def touch(self, id: int, at: datetime) -> None:
        await self.session.execute(update(ApiToken).where(ApiToken.id == id).values(last_used_at=at))

    async def list(self, account_id: int) -> Sequence[ApiToken]:
        statement = select(ApiToken).where(ApiToken.account_id == account_id).order_by(ApiToken.id)
        return (await self.session.scalars(statement)).all()
