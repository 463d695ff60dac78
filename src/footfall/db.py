"""Engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg), and schema migrations."""

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, select, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable

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


class ConstraintViolation(Exception):
    """A write the database refused for a unique or foreign key constraint."""


class Tx(ABC):
    """A request's transaction as the hot paths use it: prebuilt Core statements in, rows out as
    tuples (index them, or unpack them into a NamedTuple). Two kinds, one behaviour: SessionTx runs
    the statements through SQLAlchemy (SQLite, and everything off the hot paths), DriverTx straight
    on an asyncpg connection (PostgreSQL's hot paths)."""

    dialect: str  # "postgresql" or "sqlite"

    @abstractmethod
    async def fetch(self, statement: Executable, params: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        ...

    async def fetchrow(self, statement: Executable, params: dict[str, Any] | None = None) -> Sequence[Any] | None:
        rows = await self.fetch(statement, params)
        return rows[0] if rows else None

    @abstractmethod
    async def execute(self, statement: Executable, params: dict[str, Any] | None = None) -> int:
        """Runs a write; returns the number of rows it matched."""
        ...

    @abstractmethod
    async def executemany(self, statement: Executable, rows: Sequence[dict[str, Any]]) -> None:
        ...

    @abstractmethod
    async def insert_many_returning(self, statement: Executable, rows: Sequence[dict[str, Any]]) -> Sequence[Sequence[Any]]:
        """An INSERT ... RETURNING (sort_by_parameter_order) for each row: its rows, in the rows' order."""
        ...

    @abstractmethod
    def savepoint(self):
        """An async context manager: what fails inside is undone alone, and a constraint the
        database enforces raises ConstraintViolation."""
        ...

    @abstractmethod
    async def driver(self) -> asyncpg.Connection:
        """PostgreSQL only: the asyncpg connection under this transaction, for COPY."""
        ...


class SessionTx(Tx):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.bind.dialect.name

    async def fetch(self, statement, params=None):
        # On the session's connection, past the ORM's per-statement work.
        return (await (await self.session.connection()).execute(statement, params)).all()

    async def execute(self, statement, params=None):
        return (await (await self.session.connection()).execute(statement, params)).rowcount

    async def executemany(self, statement, rows):
        if rows:
            await (await self.session.connection()).execute(statement, list(rows))

    async def insert_many_returning(self, statement, rows):
        # SQLAlchemy batches these (insertmanyvalues) and keeps the order.
        return (await (await self.session.connection()).execute(statement, list(rows))).all() if rows else []

    @asynccontextmanager
    async def savepoint(self):
        try:
            async with self.session.begin_nested():
                yield
        except IntegrityError as error:
            raise ConstraintViolation(str(error.orig)) from error

    async def driver(self):
        connection = await self.session.connection()
        # The driver opens the transaction at the first statement SQLAlchemy sends: send one first,
        # so what follows on the raw connection runs inside it.
        await connection.execute(select(1))
        return (await connection.get_raw_connection()).driver_connection


_ASYNCPG = asyncpg_dialect()
_compiled: dict[int, tuple[Executable, str, tuple[str, ...], dict[str, Any]]] = {}


def _for_asyncpg(statement: Executable, params: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """The statement's PostgreSQL text ($1, $2, ...) and its arguments in order. Compiled once per
    statement object: the hot paths' statements are built once, at import."""
    entry = _compiled.get(id(statement))
    if entry is None or entry[0] is not statement:
        compiled = statement.compile(dialect=_ASYNCPG)
        names = tuple(compiled.positiontup or ())
        # Values the statement carries itself (status == "ACTIVE"); every other name must be given.
        carried = {name: compiled.binds[name].value for name in names if not compiled.binds[name].required}
        entry = (statement, compiled.string, names, carried)
        _compiled[id(statement)] = entry
    _, sql, names, carried = entry
    params = params or {}
    return sql, [params[name] if name in params else carried[name] for name in names]


class DriverTx(Tx):
    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetch(self, statement, params=None):
        sql, args = _for_asyncpg(statement, params)
        return await self.connection.fetch(sql, *args)

    async def fetchrow(self, statement, params=None):
        sql, args = _for_asyncpg(statement, params)
        return await self.connection.fetchrow(sql, *args)

    async def execute(self, statement, params=None):
        sql, args = _for_asyncpg(statement, params)
        status = await self.connection.execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "INSERT 0 1"

    async def executemany(self, statement, rows):
        if rows:
            sql = _for_asyncpg(statement, rows[0])[0]
            await self.connection.executemany(sql, [_for_asyncpg(statement, row)[1] for row in rows])

    async def insert_many_returning(self, statement, rows):
        # One round trip each: on a DriverTx only API requests write events, one at a time.
        return [await self.fetchrow(statement, row) for row in rows]

    @asynccontextmanager
    async def savepoint(self):
        try:
            async with self.connection.transaction():
                yield
        except asyncpg.IntegrityConstraintViolationError as error:
            raise ConstraintViolation(str(error)) from error

    async def driver(self):
        return self.connection


class DriverPool:
    """Connections straight on asyncpg for the hot paths on PostgreSQL (the visits routes): a
    statement through SQLAlchemy's asyncio layer costs several times the CPU of the same statement
    on asyncpg (py-spy under wrk; DEVELOPERS.md).

    A small pool of its own rather than asyncpg's: asyncpg's release spawns a task and runs a reset
    query per request, and its queue lets a new request take a freed connection before those
    already waiting (under load the unlucky waited 10x the median). Here a freed connection goes to
    the longest waiter. Connections open at first use, in the event loop that serves; one cut off
    mid-statement (cancelled, or the server went away) is closed, not reused.
    """

    def __init__(self, url: str, size: int) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size
        self._idle: list[asyncpg.Connection] = []
        self._waiters: deque[asyncio.Future] = deque()
        self._count = 0  # connections open or opening
        self._closed = False

    def transaction(self, *, write: bool) -> "_Lease":
        """`async with pool.transaction(write=...) as tx`: like session_scope, writes run in one
        transaction, committed when the block ends cleanly; reads run without BEGIN and COMMIT."""
        return _Lease(self, write)

    async def _acquire(self) -> asyncpg.Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._count -= 1
        if self._count < self.size:
            self._count += 1
            try:
                return await asyncpg.connect(self.dsn)
            except BaseException:
                self._count -= 1
                raise
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed a connection just as it was cancelled
            raise

    def _release(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed():
            self._discard(connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _discard(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        self._count -= 1
        # A waiter may now open a connection of its own.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_Retry())
                return

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._count -= 1
            await connection.close()


class _Retry(Exception):
    """Tells a waiter that a connection slot came free rather than a connection."""


# A statement cut short by these leaves its connection in an unknown state (or gone).
_CUT_SHORT = (asyncio.CancelledError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)


class _Lease:
    __slots__ = ("pool", "write", "connection", "transaction")

    def __init__(self, pool: DriverPool, write: bool) -> None:
        self.pool = pool
        self.write = write
        self.transaction = None

    async def __aenter__(self) -> DriverTx:
        while True:
            try:
                self.connection = await self.pool._acquire()
                break
            except _Retry:
                continue
        if self.write:
            self.transaction = self.connection.transaction()
            try:
                await self.transaction.start()
            except BaseException:
                self.pool._discard(self.connection)
                raise
        return DriverTx(self.connection)

    async def __aexit__(self, kind, error, traceback) -> None:
        connection = self.connection
        if kind is not None and issubclass(kind, _CUT_SHORT):
            self.pool._discard(connection)
            return
        try:
            if self.transaction is not None:
                if kind is None:
                    await self.transaction.commit()
                else:
                    await self.transaction.rollback()
        except BaseException:
            self.pool._discard(connection)
            raise
        self.pool._release(connection)


def create_driver_pool(url: str, size: int) -> DriverPool | None:
    """The hot paths' pool on PostgreSQL; None on SQLite, where they run through SQLAlchemy."""
    # async_database_url alone decides which URLs are PostgreSQL (postgres:// too).
    is_postgresql = make_url(async_database_url(url)).get_backend_name() == "postgresql"
    return DriverPool(url, size) if is_postgresql else None


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
