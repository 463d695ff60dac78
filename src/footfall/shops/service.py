from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from footfall.errors import ShopNotFound
from footfall.models import Account, Shop
from footfall.shops.repository import ShopRepository
from footfall.shops.schemas import ShopCreate


async def create(session: AsyncSession, account: Account, data: ShopCreate) -> Shop:
    shop = Shop(account_id=account.id, name=data.name, type=data.type, reference=data.reference)
    return await ShopRepository(session).create(shop)


async def get(session: AsyncSession, account: Account, uuid: UUID) -> Shop:
    shop = await ShopRepository(session).get(account.id, uuid)
    if shop is None:
        raise ShopNotFound()
    return shop


async def list_all(session: AsyncSession, account: Account) -> Sequence[Shop]:
    return await ShopRepository(session).list(account.id)
