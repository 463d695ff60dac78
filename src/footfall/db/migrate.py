"""Schema migrations: Alembic, on a SQLAlchemy engine of their own (the one place SQLAlchemy connects).

A database already at the newest revision is told apart with one query on the driver's own
connection, and the newest revision is read from the revision files' text: Alembic, its engine and
the migration modules are imported only when there is something to upgrade (every command migrates
first, and importing them took most of an admin command's time)."""

import functools
import logging
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

from footfall.db.urls import backend, postgres_dsn, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_LOCK = 727001  # the advisory lock that lets one of several starting processes migrate
log = logging.getLogger("footfall.migrations")

# A revision file's own identifiers, as Alembic's template writes them: `revision: str = "0010"` and
# `down_revision: str | None = "0009"` (or None).
_REVISION = re.compile(r"""^revision\b[^=\n]*=\s*["']([^"'\n]+)["']\s*$""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"""^down_revision\b[^=\n]*=\s*(?:None|["']([^"'\n]+)["'])\s*$""", re.MULTILINE)


@functools.cache
def newest_revision() -> str | None:
    """The head revision, read from the revision files without importing them; Alembic decides
    where the files are not one plain line of history (a merge, a branch, a form not read here)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return _alembic_head()
        revisions.add(revision.group(1))
        if down.group(1) is not None:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1 or not parents <= revisions:
        return _alembic_head()
    return heads.pop()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


async def current_revision(url: str) -> str | None:
    """The database's schema revision, None before the first migration: Alembic's own table, read
    with the driver alone."""
    if backend(url) == "sqlite":
        connection = sqlite3.connect(sqlite_path(url), timeout=30)  # as long as the server waits for a lock
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            return None
        finally:
            connection.close()
        return row[0] if row else None
    import asyncpg  # here: `footfall status` on SQLite starts without it

    connection = await asyncpg.connect(postgres_dsn(url), statement_cache_size=0)
    try:
        revision: str | None = await connection.fetchval("SELECT version_num FROM alembic_version")
        return revision
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()


def _engine(url: str) -> "AsyncEngine":
    """SQLAlchemy's engine for Alembic. On PostgreSQL asyncpg connects by the URL itself, so a URL
    naming several hosts (failover) works here as it does everywhere else."""
    import asyncpg
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    if backend(url) == "sqlite":
        return create_async_engine(make_url(url).set(drivername="sqlite+aiosqlite"))
    dsn = postgres_dsn(url)
    # Statements named afresh and kept by no one: behind PgBouncer's transaction pooling, the next
    # client of the same server connection must not meet this one's. The lock is a transaction's too.
    return create_async_engine(
        "postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(dsn, statement_cache_size=0),
        connect_args={"prepared_statement_cache_size": 0,
                      "prepared_statement_name_func": lambda: f"__footfall_{uuid4().hex}__"},
    )


def _config() -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: "Connection") -> None:
    from alembic import command
    from sqlalchemy import text

    if connection.dialect.name == "postgresql":
        # Several processes or hosts may start at once; one migrates, the others wait.
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
    before, head = _revisions(connection)
    if before == head:
        return
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    log.info("schema migrated", extra={"from_revision": before, "to_revision": head})


def _revisions(connection: "Connection") -> tuple[str | None, str | None]:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision(), newest_revision()


async def schema_revisions(url: str) -> tuple[str | None, str | None]:
    """(the database's schema revision, None before the first migration; the newest there is),
    read without changing anything."""
    return await current_revision(url), newest_revision()


async def migrate(url: str) -> None:
    """Brings the schema up to date (Alembic upgrade head); a database already there is only read."""
    if await current_revision(url) == newest_revision():
        return
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

    is_sqlite = backend(url) == "sqlite"
    engine = _engine(url)
    if is_sqlite:
        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: "Connection") -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: no upgrade from a read

    try:
        async with engine.connect() as connection:
            async with connection.begin():
                await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()
