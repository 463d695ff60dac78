"""What every group of commands shares: the options they all take, bad input (CommandError), and
running a command's work against the database."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import IO, Any
from uuid import UUID

import click
from pydantic import BaseModel, ValidationError

from footfall.cli.options import DEFAULT_DATABASE_URL, database_url_option
from footfall.config import Settings
from footfall.db import DATABASE_ERRORS, Database, Tx, migrate, open_database

__all__ = [
    "DEFAULT_DATABASE_URL", "UUID_PARAM", "CommandError", "account_option", "database_url_option", "migrated",
    "read_settings", "run", "run_async", "transact", "validate",
]


class CommandError(click.ClickException):
    """Bad input to an admin command: one line on stderr, exit 1, nothing written. Raised anywhere in
    a command (a parameter's type, its body, its transaction), click's own handling of a
    ClickException shows it here and exits with its code."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", file=file, err=True)


class UUIDParam(click.ParamType):
    """A uuid, as Python's UUID reads it; anything else is a CommandError naming the option or argument."""

    name = "uuid"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> UUID:
        if isinstance(value, UUID):
            return value
        try:
            return UUID(value)
        except ValueError:
            # As --help names it: "--account" for an option, "CONTACT_UUID" for an argument.
            named = param.opts[0] if isinstance(param, click.Option) else getattr(param, "human_readable_name", "uuid")
            raise CommandError(f"{named}: not a UUID: {value!r}") from None


UUID_PARAM = UUIDParam()

account_option = click.option("--account", "account_uuid", type=UUID_PARAM, required=True, help="Account UUID.")


def read_settings() -> Settings:
    """The settings from the environment; a bad value ends the command with one line naming it."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        raise CommandError(f"FOOTFALL_{str(first['loc'][0]).upper()}: {first['msg']}") from None


def validate(model: type[BaseModel], **fields: Any) -> Any:
    """The model from the command's options; the first field it refuses is a CommandError naming its option."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "input"
        raise CommandError(f"{field}: {first['msg'].removeprefix('Value error, ')}") from None


@asynccontextmanager
async def migrated(database_url: str, pool_size: int) -> AsyncIterator[Database]:
    """The database, its schema brought up to date first; closed when the command is done."""
    await migrate(database_url)
    database = open_database(database_url, pool_size=pool_size,
                             statement_cache_size=read_settings().database_statement_cache_size)
    try:
        yield database
    finally:
        await database.close()


def run_async(work: Coroutine[Any, Any, Any], *bad_input: type[Exception]) -> Any:
    """Runs a command's work; a FootfallError, bad input (the kinds given) and database errors end
    the command with one line on stderr."""
    # Here, not at the top: errors imports the web framework, which `footfall status` does without.
    from footfall.errors import FootfallError

    try:
        return asyncio.run(work)
    except FootfallError as error:
        details = [message for messages in (error.errors or {}).values() for message in messages]
        raise CommandError(details[0] if details else error.message) from None
    except bad_input as error:
        raise CommandError(str(error)) from None
    except DATABASE_ERRORS as error:
        raise CommandError(f"database: {str(error).splitlines()[0]}") from None


def run(database_url: str, work: Callable[[Tx], Awaitable[dict[str, Any]]]) -> None:
    """Brings the schema up to date, runs `work` in one transaction and prints its result as JSON."""
    click.echo(json.dumps(transact(database_url, work)))


def transact(database_url: str, work: Callable[[Tx], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Brings the schema up to date and runs `work` in one transaction: its result."""

    async def run_work() -> dict[str, Any]:
        async with migrated(database_url, pool_size=1) as database, database.transaction(write=True) as tx:
            return await work(tx)

    return run_async(run_work(), ValueError)
