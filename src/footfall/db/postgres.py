"""PostgreSQL on asyncpg: prebuilt statements run straight on the driver, from a small FIFO pool."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction
from sqlalchemy import Table

from footfall.db.pool import Waiters
from footfall.db.statement import Statement
from footfall.db.tx import ConstraintViolation, Database, PoolLoad, R, Tx
from footfall.db.urls import postgres_dsn


class PostgresTx(Tx):
    dialect = "postgresql"
    __slots__ = ("connection", "lease")

    def __init__(self, connection: asyncpg.Connection, lease: "_Lease") -> None:
        self.connection = connection
        self.lease = lease

    async def snapshot(self) -> None:
        if self.lease.transaction is None:
            self.lease.transaction = self.connection.transaction(isolation="repeatable_read", readonly=True)
            await self.lease.transaction.start()

    async def fetch(self, statement: Statement[R], params: dict[str, Any] | None = None) -> list[R]:
        compiled = statement.compiled
        if statement.no_jit:
            # SET LOCAL lasts to the end of the transaction: one of its own, when the read has none.
            async with self.connection.transaction():
                await self.connection.execute("SET LOCAL jit = off")
                return compiled.read(await self.connection.fetch(compiled.sql, *compiled.args(params)))
        return compiled.read(await self.connection.fetch(compiled.sql, *compiled.args(params)))

    async def fetchrow(self, statement: Statement[R], params: dict[str, Any] | None = None) -> R | None:
        compiled = statement.compiled
        row = await self.connection.fetchrow(compiled.sql, *compiled.args(params))
        return None if row is None else compiled.read((row,))[0]

    async def execute(self, statement: Statement, params: dict[str, Any] | None = None) -> int:
        compiled = statement.compiled
        status = await self.connection.execute(compiled.sql, *compiled.args(params))
        tail = status.rsplit(" ", 1)[-1]  # "UPDATE 1", "INSERT 0 1"; DDL answers no count
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, statement: Statement, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            compiled = statement.compiled
            await self.connection.executemany(compiled.sql, [compiled.args(row) for row in rows])

    async def copy_records(self, table: Table, columns: Sequence[str], records: Sequence[Sequence[Any]]) -> None:
        await self.connection.copy_records_to_table(table.name, columns=list(columns), records=records)

    async def copy_out(self, statement: Statement, params: dict[str, Any] | None = None, *,
                       format: str) -> tuple[int, bytes]:
        """The statement's rows as COPY writes them in `format` ("csv" or "text"): (how many, the
        bytes). asyncpg writes the parameters into the statement, since COPY takes none."""
        compiled = statement.compiled
        pieces: list[bytes] = []

        async def keep(data: bytes) -> None:
            pieces.append(data)

        status = await self.connection.copy_from_query(compiled.sql, *compiled.args(params), output=keep, format=format)
        return int(status.rsplit(" ", 1)[-1]), b"".join(pieces)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        try:
            async with self.connection.transaction():
                yield
        except asyncpg.IntegrityConstraintViolationError as error:
            raise ConstraintViolation(str(error)) from error


class PostgresDatabase(Database):
    """A small pool of asyncpg connections of its own rather than asyncpg's: asyncpg's release spawns
    a task and runs a reset query per request, and its queue lets a new request take a freed
    connection before those already waiting (Waiters). Connections open at first use, in the event
    loop that serves; one cut off mid-statement (cancelled, or the server went away) is closed, not
    reused."""

    dialect = "postgresql"

    def __init__(self, url: str, size: int, statement_cache_size: int = 100) -> None:
        self.dsn = postgres_dsn(url)
        self.size = size
        # 0 behind PgBouncer's transaction pooling: asyncpg then prepares no named statement that a
        # later transaction, on another server connection, would not find.
        self.statement_cache_size = statement_cache_size
        self._idle: list[asyncpg.Connection] = []
        self._waiters: Waiters[asyncpg.Connection] = Waiters()
        self._count = 0  # connections open or opening
        self._closed = False

    def transaction(self, *, write: bool) -> "_Lease":
        """Writes run in one transaction, committed when the block ends cleanly; reads run without
        BEGIN and COMMIT (two round trips fewer)."""
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
                return await asyncpg.connect(self.dsn, statement_cache_size=self.statement_cache_size)
            except BaseException:
                self._count -= 1
                raise
        return await self._waiters.wait(self._release)

    def load(self) -> PoolLoad:
        return PoolLoad(in_use=self._count - len(self._idle), waiting=len(self._waiters))

    def _release(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed():
            self._discard(connection)
        elif not self._waiters.hand_over(connection):
            self._idle.append(connection)

    def _discard(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        self._count -= 1
        self._waiters.wake(_Retry())  # a waiter may now open a connection of its own

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

    def __init__(self, pool: PostgresDatabase, write: bool) -> None:
        self.pool = pool
        self.write = write
        self.transaction: Transaction | None = None

    async def __aenter__(self) -> PostgresTx:
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
        return PostgresTx(self.connection, self)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
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
