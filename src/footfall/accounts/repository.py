from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, insert, select, update

from footfall.db import Statement, Tx, binds, per_dialect
from footfall.tables import accounts, api_tokens

_a, _t = accounts.c, api_tokens.c
_ACCOUNT = (_a.id, _a.uuid, _a.name, _a.created_at)


class Account(NamedTuple):
    id: int
    uuid: UUID
    name: str
    created_at: datetime


class Token(NamedTuple):
    """A token as its owner may see it: never the token, nor its hash."""

    id: int
    uuid: UUID
    account_id: int
    name: str | None
    read_only: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class Credential(NamedTuple):
    """What a request's authentication needs of its token, and the token's account."""

    id: int
    token_hash: str
    read_only: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    account_id: int
    account_uuid: UUID
    account_name: str
    account_created_at: datetime

    @property
    def account(self) -> Account:
        return Account(self.account_id, self.account_uuid, self.account_name, self.account_created_at)


_TOKEN = (_t.id, _t.uuid, _t.account_id, _t.name, _t.read_only, _t.expires_at, _t.revoked_at, _t.last_used_at,
          _t.created_at)

@dataclass(frozen=True)
class AccountStatements:
    insert_account: Statement[Account]
    account_by_uuid: Statement[Account]
    first_account_named: Statement[Account]
    all_accounts: Statement[Account]
    insert_token: Statement[Token]
    credential: Statement[Credential]
    revoke: Statement
    token_by_uuid: Statement[Token]
    touch: Statement
    tokens: Statement[Token]


def _build(dialect: str) -> AccountStatements:
    statement = partial(Statement, dialect=dialect)
    return AccountStatements(
        insert_account=statement(
            insert(accounts).values(binds(accounts, "uuid", "name", "created_at")).returning(*_ACCOUNT), Account
        ),
        account_by_uuid=statement(select(*_ACCOUNT).where(_a.uuid == bindparam("uuid")), Account),
        first_account_named=statement(
            select(*_ACCOUNT).where(_a.name == bindparam("name")).order_by(_a.id).limit(1), Account
        ),
        all_accounts=statement(select(*_ACCOUNT).order_by(_a.id), Account, bulk=True),
        insert_token=statement(
            insert(api_tokens)
            .values(binds(api_tokens, "uuid", "account_id", "name", "token_hash", "expires_at", "read_only",
                          "created_at"))
            .returning(*_TOKEN),
            Token,
        ),
        credential=statement(
            select(
                _t.id, _t.token_hash, _t.read_only, _t.expires_at, _t.revoked_at, _t.last_used_at, _t.account_id,
                _a.uuid.label("account_uuid"), _a.name.label("account_name"),
                _a.created_at.label("account_created_at"),
            )
            .join_from(api_tokens, accounts, _a.id == _t.account_id)
            .where(_t.token_hash == bindparam("token_hash")),
            Credential,
        ),
        revoke=statement(
            update(api_tokens)
            .where(_t.uuid == bindparam("token_uuid"), _t.revoked_at.is_(None))
            .values(revoked_at=bindparam("at", type_=_t.revoked_at.type))
        ),
        token_by_uuid=statement(select(*_TOKEN).where(_t.uuid == bindparam("uuid")), Token),
        touch=statement(
            update(api_tokens)
            .where(_t.id == bindparam("token_id"))
            .values(last_used_at=bindparam("at", type_=_t.last_used_at.type))
        ),
        tokens=statement(select(*_TOKEN).where(_t.account_id == bindparam("account_id")).order_by(_t.id), Token),
    )


STATEMENTS = per_dialect(_build)


class AccountRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert(self, uuid: UUID, name: str, created_at: datetime) -> Account:
        return await self.tx.fetchone(
            self.statements.insert_account, {"uuid": uuid, "name": name, "created_at": created_at}
        )

    async def get_by_uuid(self, uuid: UUID) -> Account | None:
        return await self.tx.fetchrow(self.statements.account_by_uuid, {"uuid": uuid})

    async def all(self) -> list[Account]:
        return await self.tx.fetch(self.statements.all_accounts)

    async def get_by_name(self, name: str) -> Account | None:
        """The oldest account with this name."""
        return await self.tx.fetchrow(self.statements.first_account_named, {"name": name})


class TokenRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert(self, values: dict) -> Token:
        return await self.tx.fetchone(self.statements.insert_token, values)

    async def credential(self, token_hash: str) -> Credential | None:
        return await self.tx.fetchrow(self.statements.credential, {"token_hash": token_hash})

    async def revoke(self, uuid: UUID, at: datetime) -> Token | None:
        """Revokes the token unless it is revoked already; the token as it now is, None when none."""
        await self.tx.execute(self.statements.revoke, {"token_uuid": uuid, "at": at})
        return await self.tx.fetchrow(self.statements.token_by_uuid, {"uuid": uuid})

    async def touch(self, id: int, at: datetime) -> None:
        await self.tx.execute(self.statements.touch, {"token_id": id, "at": at})

    async def list(self, account_id: int) -> list[Token]:
        return await self.tx.fetch(self.statements.tokens, {"account_id": account_id})
