from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.models import Shop


class ShopRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, shop: Shop) -> Shop:
        self.session.add(shop)
        await self.session.flush()
        return shop

    async def get(self, account_id: int, uuid: UUID) -> Shop | None:
        return await self.session.scalar(select(Shop).where(Shop.account_id == account_id, Shop.uuid == uuid))

    async def list(self, account_id: int) -> Sequence[Shop]:
        statement = select(Shop).where(Shop.account_id == account_id).order_by(Shop.name, Shop.id)
        return (await self.session.scalars(statement)).all()

    async def uuid_map(self, account_id: int) -> dict[UUID, int]:
        rows = await self.session.execute(select(Shop.uuid, Shop.id).where(Shop.account_id == account_id))
        return {uuid: id for uuid, id in rows}
