"""Accounts and their API tokens. Tokens are shown once; only their SHA-256 is stored."""

import hashlib
import secrets
from dataclasses import dataclass
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from footfall.accounts.repository import AccountRepository, TokenRepository
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


LAST_USED_PRECISION = timedelta(minutes=1)  # last_used_at is written at most this often per token


async def authenticate(session: AsyncSession, secret: str) -> ApiToken:
    """The live token with this secret, its account loaded. The lookup is by hash, so its timing
    tells nothing of the token; nothing is cached, so a revocation holds from the next request on."""
    token = await TokenRepository(session).get_by_hash(hash_token(secret))
    if token is None or token.revoked_at is not None:
        raise Unauthenticated()
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthenticated()
    return token


def needs_touch(token: ApiToken) -> bool:
    return token.last_used_at is None or utcnow() - token.last_used_at >= LAST_USED_PRECISION


async def touch(session: AsyncSession, token: ApiToken) -> None:
    await TokenRepository(session).touch(token.id, utcnow())


async def list_tokens(session: AsyncSession, account: Account) -> Sequence[ApiToken]:
    return await TokenRepository(session).list(account.id)
