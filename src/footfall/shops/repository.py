from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, insert, select

from footfall.db import Statement, Tx, binds, per_dialect
from footfall.tables import shops

_s = shops.c


class Shop(NamedTuple):
    id: int
    uuid: UUID
    account_id: int
    name: str
    type: str
    reference: str | None
    created_at: datetime


class ShopKey(NamedTuple):
    uuid: UUID
    id: int


@dataclass(frozen=True)
class ShopStatements:
    insert: Statement[Shop]
    get: Statement[Shop]
    all: Statement[Shop]
    keys: Statement[ShopKey]


def _build(dialect: str) -> ShopStatements:
    statement = partial(Statement, dialect=dialect)
    account = _s.account_id == bindparam("account_id")
    return ShopStatements(
        insert=statement(
            insert(shops).values(binds(shops, "uuid", "account_id", "name", "type", "reference", "created_at"))
            .returning(*shops.c),
            Shop,
        ),
        get=statement(select(*shops.c).where(account, _s.uuid == bindparam("uuid")), Shop),
        all=statement(select(*shops.c).where(account).order_by(_s.name, _s.id), Shop),
        keys=statement(select(_s.uuid, _s.id).where(account), ShopKey),
    )


STATEMENTS = per_dialect(_build)


class ShopRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert(self, values: dict) -> Shop:
        return await self.tx.fetchone(self.statements.insert, values)

    async def get(self, account_id: int, uuid: UUID) -> Shop | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})

    async def list(self, account_id: int) -> list[Shop]:
        return await self.tx.fetch(self.statements.all, {"account_id": account_id})

    async def uuid_map(self, account_id: int) -> dict[UUID, int]:
        return {key.uuid: key.id for key in await self.tx.fetch(self.statements.keys, {"account_id": account_id})}
