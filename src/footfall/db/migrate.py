"""Schema migrations: Alembic, on a SQLAlchemy engine of their own (the one place SQLAlchemy connects)."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from footfall.db.urls import backend

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_LOCK = 727001  # the advisory lock that lets one of several starting processes migrate
log = logging.getLogger("footfall.migrations")


def _engine_url(url: str) -> str:
    driver = "sqlite+aiosqlite" if backend(url) == "sqlite" else "postgresql+asyncpg"
    return make_url(url).set(drivername=driver).render_as_string(hide_password=False)


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
    engine = create_async_engine(_engine_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revisions)
    finally:
        await engine.dispose()


async def migrate(url: str) -> None:
    """Brings the schema up to date (Alembic upgrade head)."""
    is_sqlite = backend(url) == "sqlite"
    engine = create_async_engine(_engine_url(url))
    if is_sqlite:
        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
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
