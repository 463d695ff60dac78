"""Accounts and their API tokens. Tokens are shown once; only their SHA-256 is stored."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from footfall.accounts.repository import Account, AccountRepository, Credential, Token, TokenRepository
from footfall.db import Database, Tx
from footfall.errors import AccountNotFound, TokenNotFound, Unauthenticated
from footfall.kit.time import utcnow

TOKEN_PREFIX = "ffpat_"  # "Footfall personal access token": recognisable in logs and secret scanners


@dataclass(frozen=True)
class IssuedToken:
    token: Token
    secret: str  # the bearer token itself, returned to the caller once


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


async def create_account(tx: Tx, name: str) -> Account:
    return await AccountRepository(tx).insert(uuid4(), name, utcnow())


async def list_accounts(tx: Tx) -> list[Account]:
    return await AccountRepository(tx).all()


async def get_account(tx: Tx, uuid: UUID) -> Account:
    account = await AccountRepository(tx).get_by_uuid(uuid)
    if account is None:
        raise AccountNotFound({"account": [f"no account {uuid}"]})
    return account


async def issue_token(
    tx: Tx,
    account: Account,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    read_only: bool = False,
) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = await TokenRepository(tx).insert(
        {"uuid": uuid4(), "account_id": account.id, "name": name, "token_hash": hash_token(secret),
         "expires_at": expires_at, "read_only": read_only, "created_at": utcnow()}
    )
    return IssuedToken(token, secret)


async def revoke_token(tx: Tx, uuid: UUID) -> Token:
    token = await TokenRepository(tx).revoke(uuid, utcnow())
    if token is None:
        raise TokenNotFound({"token": [f"no token {uuid}"]})
    return token


class TokenCache:
    """Tokens looked up in the last `ttl` seconds, by hash: a read request then needs no token query.
    A revocation takes effect within `ttl` (FOOTFALL_TOKEN_CACHE_SECONDS); expiry is checked on every
    request all the same. 0 turns it off."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.entries: dict[str, tuple[float, Credential]] = {}

    def get(self, token_hash: str) -> Credential | None:
        entry = self.entries.get(token_hash)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        return None

    def put(self, credential: Credential) -> None:
        if self.ttl <= 0:
            return
        if len(self.entries) >= self.MAX_ENTRIES:
            self.entries.clear()
        self.entries[credential.token_hash] = (time.monotonic(), credential)

    def replace(self, credential: Credential) -> None:
        """The same token as it now is, kept for what remains of its time."""
        entry = self.entries.get(credential.token_hash)
        if entry is not None:
            self.entries[credential.token_hash] = (entry[0], credential)


LAST_USED_PRECISION = timedelta(minutes=1)  # last_used_at is written at most this often per token


async def authenticate(database: Database, cache: TokenCache, secret: str) -> Credential:
    """The live token with this secret, with its account. The lookup is by hash, so its timing
    tells nothing of the token."""
    token_hash = hash_token(secret)
    credential = cache.get(token_hash)
    if credential is None:
        async with database.transaction(write=False) as tx:
            credential = await TokenRepository(tx).credential(token_hash)
        if credential is not None:
            cache.put(credential)
    if credential is None or credential.revoked_at is not None:
        raise Unauthenticated()
    if credential.expires_at is not None and credential.expires_at <= utcnow():
        raise Unauthenticated()
    return credential


def needs_touch(credential: Credential) -> bool:
    return credential.last_used_at is None or utcnow() - credential.last_used_at >= LAST_USED_PRECISION


async def touch(database: Database, cache: TokenCache, credential: Credential) -> None:
    now = utcnow()
    async with database.transaction(write=True) as tx:
        await TokenRepository(tx).touch(credential.id, now)
    cache.replace(credential._replace(last_used_at=now))


async def list_tokens(tx: Tx, account: Account) -> list[Token]:
    return await TokenRepository(tx).list(account.id)
