"""`footfall status`: what an operator checks, read with the database drivers alone.

It imports neither SQLAlchemy nor pydantic (nor the settings, nor logging's configuration): an
operator's probe or a container's health script runs it often, and those imports were most of its
time (bench/cli_startup.py)."""

import asyncio
import json
import sqlite3
import sys
from datetime import UTC, datetime
from typing import Any

import click

from footfall.cli.options import database_url_option
from footfall.db.migrate import schema_revisions
from footfall.db.urls import backend
from footfall.webhooks.outbox_sql import oldest_pending_seconds, read_outbox


def _unreachable(url: str) -> tuple[type[BaseException], ...]:
    """What a database that is missing, down or refusing raises here: the drivers' own errors
    (db.failures.DATABASE_ERRORS less the migrations', which status never runs)."""
    if backend(url) == "sqlite":
        return (OSError, sqlite3.Error)
    import asyncpg

    return (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@click.command("status")
@database_url_option
def status(database_url: str) -> None:
    """Print what an operator checks, as JSON, without changing anything: whether the database
    answers, whether its schema is at the newest revision, and the webhook deliveries pending and
    failed, with the age of the oldest pending one. Exits 1 when the database does not answer or
    its schema is behind."""

    async def run() -> dict[str, Any]:
        current, head = await schema_revisions(database_url)
        deliveries = await read_outbox(database_url) if current == head else None
        return {
            "database": "reachable",
            "schema": {"revision": current, "newest": head, "at_newest": current == head},
            "deliveries": None if deliveries is None else {
                "pending": deliveries.pending, "failed": deliveries.failed,
                "oldest_pending_seconds": None if deliveries.oldest_pending_at is None else
                round(oldest_pending_seconds(deliveries, datetime.now(UTC)) or 0.0, 1),
            },
        }

    try:
        errors = _unreachable(database_url)
    except ValueError as error:  # not a database URL Footfall reads
        raise click.ClickException(str(error)) from None
    try:
        result = asyncio.run(run())
    except errors as error:
        click.echo(json.dumps({"database": f"unreachable: {type(error).__name__}: {error}"[:500],
                               "schema": None, "deliveries": None}))
        sys.exit(1)
    click.echo(json.dumps(result))
    if not result["schema"]["at_newest"]:
        sys.exit(1)
