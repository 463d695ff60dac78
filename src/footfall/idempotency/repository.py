from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, delete, select, update

from footfall.db import Statement, Tx, binds, contains, per_dialect, upsert
from footfall.tables import idempotency_keys

_k = idempotency_keys.c
_OWNED = ("fingerprint", "state", "lock_token", "locked_until", "response_status", "response_body", "created_at",
          "expires_at")


class StoredKey(NamedTuple):
    id: int
    fingerprint: str
    state: str
    locked_until: datetime | None
    response_status: int | None
    response_body: str | None
    expires_at: datetime


@dataclass(frozen=True)
class IdempotencyStatements:
    insert: Statement
    get: Statement[StoredKey]
    take_over: Statement
    release: Statement
    purge_expired: Statement
    store_answer: Statement
    forget_answers_with: Statement


def _build(dialect: str) -> IdempotencyStatements:
    statement = partial(Statement, dialect=dialect)
    now = bindparam("now", type_=_k.expires_at.type)
    # Parameters named apart from the columns of an UPDATE: SQLAlchemy reads a parameter named like
    # a column as a SET of it.
    owned = {name: bindparam(f"new_{name}", type_=_k[name].type) for name in _OWNED}
    return IdempotencyStatements(
        insert=statement(
            upsert(dialect, idempotency_keys)
            .values(binds(idempotency_keys, "account_id", "key", *_OWNED))
            .on_conflict_do_nothing(index_elements=["account_id", "key"])
            .returning(_k.id)
        ),
        get=statement(
            select(_k.id, _k.fingerprint, _k.state, _k.locked_until, _k.response_status, _k.response_body,
                   _k.expires_at)
            .where(_k.account_id == bindparam("account_id"), _k.key == bindparam("key")),
            StoredKey,
        ),
        # An expired key, or a running one whose owner's lock lapsed.
        take_over=statement(
            update(idempotency_keys)
            .where(_k.id == bindparam("key_id"),
                   (_k.expires_at <= now) | ((_k.state == "running") & (_k.locked_until <= now)))
            .values(owned)
        ),
        release=statement(
            delete(idempotency_keys).where(_k.id == bindparam("key_id"), _k.lock_token == bindparam("token"))
        ),
        purge_expired=statement(delete(idempotency_keys).where(_k.expires_at <= now), bulk=True),
        forget_answers_with=statement(
            delete(idempotency_keys).where(
                _k.account_id == bindparam("account_id"),
                contains(dialect, _k.response_body, bindparam("text", type_=_k.response_body.type)),
            ),
            bulk=True,
        ),
        store_answer=statement(
            update(idempotency_keys)
            .where(_k.id == bindparam("key_id"), _k.lock_token == bindparam("token"), _k.state == "running")
            .values(state="done", lock_token=None, locked_until=None,
                    response_status=bindparam("status", type_=_k.response_status.type),
                    response_body=bindparam("body", type_=_k.response_body.type))
        ),
    )


STATEMENTS = per_dialect(_build)


class IdempotencyRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert(self, account_id: int, key: str, owned: dict) -> int | None:
        """Claims a key; its id, or None when the account holds it already (nothing written)."""
        return await self.tx.fetchval(self.statements.insert, {"account_id": account_id, "key": key, **owned})

    async def get(self, account_id: int, key: str) -> StoredKey | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "key": key})

    async def take_over(self, id: int, now: datetime, owned: dict) -> bool:
        """Claims an expired key, or a running one whose owner's lock lapsed; False when someone else did."""
        params = {"key_id": id, "now": now, **{f"new_{name}": owned[name] for name in _OWNED}}
        return await self.tx.execute(self.statements.take_over, params) == 1

    async def release(self, id: int, token: UUID) -> None:
        await self.tx.execute(self.statements.release, {"key_id": id, "token": token})

    async def forget_answers_with(self, account_id: int, text: str) -> None:
        """Drops the account's stored answers that hold the text exactly: a repeat then runs afresh."""
        await self.tx.execute(self.statements.forget_answers_with, {"account_id": account_id, "text": text})

    async def purge_expired(self, now: datetime) -> None:
        await self.tx.execute(self.statements.purge_expired, {"now": now})

    async def store_answer(self, id: int, token: UUID, status: int, body: str) -> bool:
        """Stores the answer in the request's own transaction, if this request still owns the key;
        False when another took it over."""
        params = {"key_id": id, "token": token, "status": status, "body": body}
        return await self.tx.execute(self.statements.store_answer, params) == 1
