"""Schema migrations: Alembic, on a SQLAlchemy engine of their own (the one place SQLAlchemy connects)."""

import logging
from pathlib import Path
from uuid import uuid4

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from footfall.db.urls import backend, postgres_dsn

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_LOCK = 727001  # the advisory lock that lets one of several starting processes migrate
log = logging.getLogger("footfall.migrations")


def _engine(url: str) -> AsyncEngine:
    """SQLAlchemy's engine for Alembic. On PostgreSQL asyncpg connects by the URL itself, so a URL
    naming several hosts (failover) works here as it does everywhere else."""
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


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
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


def _revisions(connection: Connection) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    return current, ScriptDirectory.from_config(_config()).get_current_head()


async def schema_revisions(url: str) -> tuple[str | None, str | None]:
    """(the database's schema revision, None before the first migration; the newest there is),
    read without changing anything."""
    engine = _engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revisions)
    finally:
        await engine.dispose()


async def migrate(url: str) -> None:
    """Brings the schema up to date (Alembic upgrade head)."""
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
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: no upgrade from a read

    try:
        async with engine.connect() as connection:
            async with connection.begin():
                await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()
