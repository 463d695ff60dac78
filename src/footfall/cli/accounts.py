"""Accounts and their tokens."""

from datetime import datetime
from typing import Any
from uuid import UUID

import click

from footfall.accounts import service as accounts
from footfall.accounts.repository import Token
from footfall.cli.common import (
    UUID_PARAM,
    CommandError,
    account_option,
    database_url_option,
    run,
)
from footfall.db import Tx
from footfall.kit.time import format_iso8601, parse_iso8601, utcnow


@click.group("accounts")
def accounts_group() -> None:
    """Accounts: each one's visits, shops and contacts are its own."""


def _account_fields(account: Any) -> dict[str, Any]:
    return {"uuid": str(account.uuid), "name": account.name, "created_at": format_iso8601(account.created_at)}


@accounts_group.command("create")
@click.option("--name", required=True, help="What the account is called (1 to 255 characters).")
@database_url_option
def accounts_create(name: str, database_url: str) -> None:
    """Create an account and print it: {"uuid", "name", "created_at"}."""
    if not name.strip() or len(name) > 255 or "\x00" in name:
        raise CommandError("--name: must be 1 to 255 characters")

    async def work(tx: Tx) -> dict[str, Any]:
        return _account_fields(await accounts.create_account(tx, name))

    run(database_url, work)


@accounts_group.command("list")
@database_url_option
def accounts_list(database_url: str) -> None:
    """Print every account, oldest first: {"data": [{"uuid", "name", "created_at"}, ...]}."""

    async def work(tx: Tx) -> dict[str, Any]:
        return {"data": [_account_fields(account) for account in await accounts.list_accounts(tx)]}

    run(database_url, work)


@click.group("tokens")
def tokens_group() -> None:
    """API tokens (personal access tokens)."""


@tokens_group.command("create")
@account_option
@click.option("--name", default=None, help="What the token is for, as tokens list shows it.")
@click.option("--expires-at", default=None, help="ISO 8601; no expiry when left out.")
@click.option("--read-only", is_flag=True, help="Refuse every write (403) with this token.")
@database_url_option
def tokens_create(
    account_uuid: UUID, name: str | None, expires_at: str | None, read_only: bool, database_url: str
) -> None:
    """Create a token. It is printed once; only its hash is stored."""
    expires = _parse_expiry(expires_at) if expires_at else None
    if name is not None and (len(name) > 255 or "\x00" in name):
        raise CommandError("--name: must be at most 255 characters")

    async def work(tx: Tx) -> dict[str, Any]:
        account = await accounts.get_account(tx, account_uuid)
        issued = await accounts.issue_token(tx, account, name=name, expires_at=expires, read_only=read_only)
        return {**_token_json(issued.token), "token": issued.secret, "account_uuid": str(account.uuid)}

    run(database_url, work)


def _token_json(token: Token) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return format_iso8601(value) if value else None

    return {
        "uuid": str(token.uuid),
        "name": token.name,
        "read_only": token.read_only,
        "expires_at": moment(token.expires_at),
        "revoked_at": moment(token.revoked_at),
        "last_used_at": moment(token.last_used_at),
        "created_at": moment(token.created_at),
    }


@tokens_group.command("list")
@account_option
@database_url_option
def tokens_list(account_uuid: UUID, database_url: str) -> None:
    """The account's tokens (never the tokens themselves): {"data": [...]}."""

    async def work(tx: Tx) -> dict[str, Any]:
        tokens = await accounts.list_tokens(tx, await accounts.get_account(tx, account_uuid))
        return {"data": [_token_json(token) for token in tokens]}

    run(database_url, work)


def _parse_expiry(value: str) -> datetime:
    try:
        moment = parse_iso8601(value)
    except ValueError as error:
        raise CommandError(f"--expires-at: {error}") from None
    if moment <= utcnow():
        raise CommandError("--expires-at: must be in the future")
    return moment


@tokens_group.command("revoke")
@click.argument("token_uuid", type=UUID_PARAM)
@database_url_option
def tokens_revoke(token_uuid: UUID, database_url: str) -> None:
    """Revoke a token: it is refused from its next request on."""

    async def work(tx: Tx) -> dict[str, Any]:
        return _token_json(await accounts.revoke_token(tx, token_uuid))

    run(database_url, work)
