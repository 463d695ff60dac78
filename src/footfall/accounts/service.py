"""Accounts and their API tokens. Tokens are shown once; only their SHA-256 is stored."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from footfall.accounts.repository import AccountRepository, TokenRepository
from footfall.db import Sessions, session_scope
from footfall.errors import Unauthenticated
from footfall.models import Account, ApiToken, utcnow

TOKEN_PREFIX = "ffpat_"  # "Footfall personal access token": recognisable in logs and secret scanners


class AccountNotFound(LookupError):
    pass


class TokenNotFound(LookupError):
    pass


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the bearer token itself, returned to the caller once


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


async def create_account(session: AsyncSession, name: str) -> Account:
    return await AccountRepository(session).create(name)


async def get_account(session: AsyncSession, uuid: UUID) -> Account:
    account = await AccountRepository(session).get_by_uuid(uuid)
    if account is None:
        raise AccountNotFound(f"no account {uuid}")
    return account


async def issue_token(
    session: AsyncSession,
    account: Account,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    read_only: bool = False,
) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        account_id=account.id, name=name, token_hash=hash_token(secret), expires_at=expires_at, read_only=read_only
    )
    token.account = account
    return IssuedToken(await TokenRepository(session).create(token), secret)


async def revoke_token(session: AsyncSession, uuid: UUID) -> ApiToken:
    token = await TokenRepository(session).revoke(uuid, utcnow())
    if token is None:
        raise TokenNotFound(f"no token {uuid}")
    return token


class TokenCache:
    """Tokens looked up in the last `ttl` seconds, by hash: a read request then needs no token query.
    A revocation takes effect within `ttl` (FOOTFALL_TOKEN_CACHE_SECONDS); expiry is checked on every
    request all the same. 0 turns it off."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.entries: dict[str, tuple[float, ApiToken]] = {}

    def get(self, token_hash: str) -> ApiToken | None:
        entry = self.entries.get(token_hash)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        return None

    def put(self, token_hash: str, token: ApiToken) -> None:
        if self.ttl <= 0:
            return
        if len(self.entries) >= self.MAX_ENTRIES:
            self.entries.clear()
        self.entries[token_hash] = (time.monotonic(), token)


LAST_USED_PRECISION = timedelta(minutes=1)  # last_used_at is written at most this often per token


async def authenticate(sessions: Sessions, cache: TokenCache, secret: str) -> ApiToken:
    """The live token with this secret, its account loaded. The lookup is by hash, so its timing
    tells nothing of the token."""
    token_hash = hash_token(secret)
    token = cache.get(token_hash)
    if token is None:
        async with session_scope(sessions, write=False) as session:
            token = await TokenRepository(session).get_by_hash(token_hash)
        if token is not None:
            cache.put(token_hash, token)
    if token is None or token.revoked_at is not None:
        raise Unauthenticated()
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthenticated()
    return token


def needs_touch(token: ApiToken) -> bool:
    return token.last_used_at is None or utcnow() - token.last_used_at >= LAST_USED_PRECISION


async def touch(sessions: Sessions, token: ApiToken) -> None:
    now = utcnow()
    async with session_scope(sessions, write=True) as session:
        await TokenRepository(session).touch(token.id, now)
    token.last_used_at = now  # also in the cache


async def list_tokens(session: AsyncSession, account: Account) -> Sequence[ApiToken]:
    return await TokenRepository(session).list(account.id)
