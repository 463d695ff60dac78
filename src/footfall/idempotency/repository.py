from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.db import Tx, insert_ignoring_conflicts
from footfall.models import IdempotencyKey


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> int | None:
        """Claims a key; None when the account holds it already (nothing written)."""
        statement = insert_ignoring_conflicts(self.session, IdempotencyKey, ["account_id", "key"], values)
        return (await self.session.execute(statement.returning(IdempotencyKey.id))).scalar()

    async def get(self, account_id: int, key: str) -> Row | None:
        statement = select(
            IdempotencyKey.id,
            IdempotencyKey.fingerprint,
            IdempotencyKey.state,
            IdempotencyKey.locked_until,
            IdempotencyKey.response_status,
            IdempotencyKey.response_body,
            IdempotencyKey.expires_at,
        ).where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
        return (await self.session.execute(statement)).first()

    async def take_over(self, id: int, now: datetime, values: dict[str, Any]) -> bool:
        """Claims an expired key, or a running one whose owner's lock lapsed; False when someone else did."""
        result = await self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == id,
                (IdempotencyKey.expires_at <= now)
                | ((IdempotencyKey.state == "running") & (IdempotencyKey.locked_until <= now)),
            )
            .values(values)
        )
        return result.rowcount == 1

    async def release(self, id: int, token: UUID) -> None:
        await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.id == id, IdempotencyKey.lock_token == token)
        )

    async def purge_expired(self, now: datetime) -> None:
        await self.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))


_key = IdempotencyKey.__table__.c
_STORE_ANSWER = (
    update(IdempotencyKey.__table__)
    .where(_key.id == bindparam("key_id"), _key.lock_token == bindparam("token"), _key.state == "running")
    .values(state="done", lock_token=None, locked_until=None, response_status=bindparam("status"),
            response_body=bindparam("body"))
)


async def store_answer(tx: Tx, id: int, token: UUID, status: int, body: str) -> bool:
    """Stores the answer in the request's own transaction, if this request still owns the key;
    False when another took it over."""
    return await tx.execute(_STORE_ANSWER, {"key_id": id, "token": token, "status": status, "body": body}) == 1
