from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.db import Tx
from footfall.errors import ShopNotFound
from footfall.kit.time import utcnow
from footfall.shops.repository import Shop, ShopRepository
from footfall.shops.schemas import ShopCreate


async def create(tx: Tx, account: Account, data: ShopCreate) -> Shop:
    return await ShopRepository(tx).insert(
        {"uuid": uuid4(), "account_id": account.id, "name": data.name, "type": data.type,
         "reference": data.reference, "created_at": utcnow()}
    )


async def get(tx: Tx, account: Account, uuid: UUID) -> Shop:
    shop = await ShopRepository(tx).get(account.id, uuid)
    if shop is None:
        raise ShopNotFound()
    return shop


async def list_all(tx: Tx, account: Account) -> list[Shop]:
    return await ShopRepository(tx).list(account.id)
