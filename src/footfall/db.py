"""Engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg), and schema migrations."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Write transactions on SQLite start with BEGIN IMMEDIATE: a deferred transaction that reads
# and then writes fails at once with SQLITE_BUSY when another writer committed in between,
# whatever the busy timeout. Sessions opt in with this execution option.
SQLITE_WRITE = {"footfall_sqlite_write": True}


def async_database_url(url: str) -> str:
    """Maps the URLs users write (sqlite:///x.db, postgresql://...) to the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://")


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    url = async_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it would cost a round trip on every checkout. A connection found dead raises once
    # and SQLAlchemy then replaces the pool's connections.
    # No overflow: connections opened and closed under bursts cost more than briefly waiting for one.
    return create_async_engine(url, pool_size=pool_size, max_overflow=0)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see do_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("footfall_sqlite_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


@dataclass(frozen=True)
class Sessions:
    """Session factories for read transactions and for write transactions (BEGIN IMMEDIATE on SQLite).

    A write transaction begins at its first statement, not when its session opens, so a request can
    first commit small transactions of its own (an Idempotency-Key claim) without waiting on itself.
    """

    read: async_sessionmaker[AsyncSession]
    write: async_sessionmaker[AsyncSession]


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    if is_sqlite(engine):
        read_engine, write_engine = engine, engine.execution_options(**SQLITE_WRITE)
    else:
        # Reads run without BEGIN and COMMIT: two round trips fewer for a request that only reads.
        read_engine, write_engine = engine.execution_options(isolation_level="AUTOCOMMIT"), engine
    return Sessions(
        read=async_sessionmaker(read_engine, expire_on_commit=False, autoflush=False),
        write=async_sessionmaker(write_engine, expire_on_commit=False, autoflush=False),
    )


@asynccontextmanager
async def session_scope(sessions: Sessions, *, write: bool) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends cleanly, rolled back when it raises."""
    async with (sessions.write if write else sessions.read)() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several processes or hosts may start at once; one migrates, the others wait.
        connection.execute(text("SELECT pg_advisory_xact_lock(727001)"))
    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Brings the schema up to date (Alembic upgrade head)."""
    async with engine.connect() as connection:
        if is_sqlite(engine):
            await connection.execution_options(**SQLITE_WRITE)
        async with connection.begin():
            await connection.run_sync(_upgrade)


def dialect_insert(session: AsyncSession, model: type):
    """The session dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


def insert_ignoring_conflicts(session: AsyncSession, model: type, conflict_columns: list[str], values: dict):
    """INSERT ... ON CONFLICT (conflict_columns) DO NOTHING, in the session's dialect.

    Used where a unique key decides between "create" and "already there": the database settles
    concurrent creates, where a read-then-write would let both through.
    """
    return dialect_insert(session, model).values(values).on_conflict_do_nothing(index_elements=conflict_columns)
