"""SQLite on the sqlite3 module, in the process: one writer connection, reader connections beside it.

- Writes queue for the one writer connection in arrival order (an asyncio.Lock is FIFO), so a write
  never spins on SQLITE_BUSY behind another of its own process. BEGIN IMMEDIATE takes the file's write
  lock; another process holding it makes the BEGIN wait off the event loop, with the busy timeout.
- Reads take a reader connection each (WAL lets them run beside the writer) and run without BEGIN.
- A statement runs on the event loop, where a short one costs least (a thread hand-off costs more
  than a point lookup). A read that has not finished after READ_BUDGET seconds is interrupted and run
  again off the loop; one that meets a lock (another process) too. Statements built `bulk=True` run
  off the loop from the start, and the writer's WAL checkpoints run off the loop in the background.
"""

import asyncio
import bisect
import functools
import json
import math
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam

from footfall.db.pool import Waiters
from footfall.db.statement import Statement
from footfall.db.tx import ConstraintViolation, Database, PoolLoad, Tx

READ_BUDGET = 0.001  # seconds a read may run on the event loop before it moves off it
BUSY_TIMEOUT_MS = 30_000  # how long a statement off the loop waits for another process's lock
CHECKPOINT_EVERY = 500  # write transactions between two WAL checkpoints (after any bulk one)
_WAIT_FOR_LOCK = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT)

T = TypeVar("T")


class _Connection:
    """A sqlite3 connection and the deadline its progress handler interrupts at."""

    __slots__ = ("raw", "deadline")

    def __init__(self, path: str) -> None:
        # timeout=0: on the loop a lock is never waited for; off the loop BUSY_TIMEOUT_MS is set.
        self.raw = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False,
                                   cached_statements=512)
        self.deadline = math.inf
        self.raw.execute("PRAGMA foreign_keys=ON")
        self.raw.execute("PRAGMA synchronous=NORMAL")
        self.raw.set_progress_handler(self._over_budget, 1000)
        # What PostgreSQL has built in and SQLite lacks, for the visit stats (stats/repository.py).
        self.raw.create_function("footfall_width_bucket", 2, _width_bucket, deterministic=True)
        self.raw.create_aggregate("footfall_median", 1, _Median)

    def _over_budget(self) -> bool:
        return time.perf_counter() > self.deadline

    def run(self, sql: str, args: Sequence[Any]) -> tuple[list[Any], int]:
        cursor = self.raw.execute(sql, args)
        rows = cursor.fetchall()
        return rows, cursor.rowcount

    def run_many(self, sql: str, args: Sequence[Sequence[Any]]) -> tuple[list[Any], int]:
        cursor = self.raw.executemany(sql, args)
        return [], cursor.rowcount

    def run_waiting(self, work: Callable[[], T]) -> T:
        """Off the loop: waits for another process's lock, up to BUSY_TIMEOUT_MS."""
        self.raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            return work()
        finally:
            self.raw.execute("PRAGMA busy_timeout=0")


@functools.lru_cache(maxsize=64)
def _thresholds(boundaries: str) -> list[str]:
    return json.loads(boundaries)


def _width_bucket(value: str | None, boundaries: str) -> int | None:
    """PostgreSQL's width_bucket(value, thresholds): how many of the thresholds (a JSON array of
    ascending times, written as SQLite keeps them) are at or before the value."""
    return None if value is None else bisect.bisect_right(_thresholds(boundaries), value)


class _Median:
    """PostgreSQL's percentile_cont(0.5): the middle value, or the mean of the middle two."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return statistics.median(self.values) if self.values else None


async def _off_loop(work: Callable[[], T]) -> T:
    """Runs work in a thread; a cancelled caller still waits for it, since the connection is in use."""
    future = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def _run(connection: _Connection, work: Callable[[], T], *, budget: float, off_loop: bool) -> T:
    if not off_loop:
        connection.deadline = time.perf_counter() + budget
        try:
            return work()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode not in _WAIT_FOR_LOCK:
                raise
        finally:
            connection.deadline = math.inf
    return await _off_loop(lambda: connection.run_waiting(work))


class SQLiteTx(Tx):
    """A read transaction has its reader connection from the start. A write transaction takes the
    writer and begins at its first statement, so a request can first commit small write transactions
    of its own (an Idempotency-Key claim) without waiting on itself."""

    dialect = "sqlite"
    __slots__ = ("database", "connection", "budget", "wrote_in_bulk")

    def __init__(self, database: "SQLiteDatabase", connection: _Connection | None) -> None:
        self.database = database
        self.connection = connection
        # A write is never interrupted: that would roll back the whole transaction.
        self.budget = READ_BUDGET if connection is not None else math.inf
        self.wrote_in_bulk = False

    async def _run(self, work: Callable[[_Connection], T], bulk: bool) -> T:
        connection = self.connection or await self.database._begin(self)
        self.wrote_in_bulk |= bulk
        return await _run(connection, lambda: work(connection), budget=self.budget, off_loop=bulk)

    async def fetch(self, statement, params=None):
        compiled = statement.compiled
        args = compiled.args(params)
        rows, _ = await self._run(lambda connection: connection.run(compiled.sql, args), statement.bulk)
        return compiled.read(rows) if compiled.record is not None else rows

    async def execute(self, statement, params=None):
        compiled = statement.compiled
        args = compiled.args(params)
        _, count = await self._run(lambda connection: connection.run(compiled.sql, args), statement.bulk)
        return count

    async def executemany(self, statement, rows):
        if rows:
            compiled = statement.compiled
            args = [compiled.args(row) for row in rows]
            await self._run(lambda connection: connection.run_many(compiled.sql, args), len(args) > 1 or statement.bulk)

    async def copy_records(self, table: Table, columns, records) -> None:
        columns = tuple(columns)
        await self.executemany(appender(table, columns), [dict(zip(columns, record)) for record in records])

    async def _plain(self, sql: str) -> None:
        await self._run(lambda connection: connection.run(sql, ()), False)

    @asynccontextmanager
    async def savepoint(self):
        await self._plain("SAVEPOINT footfall")
        try:
            yield
        except BaseException as error:
            await self._plain("ROLLBACK TO footfall")
            await self._plain("RELEASE footfall")
            if isinstance(error, sqlite3.IntegrityError):
                raise ConstraintViolation(str(error)) from error
            raise
        await self._plain("RELEASE footfall")


appenders: dict[tuple[str, tuple[str, ...]], Statement] = {}


def appender(table: Table, columns: tuple[str, ...]) -> Statement:
    """The INSERT that copy_records runs on SQLite, built at its first use for a table and columns."""
    key = (table.name, columns)
    if key not in appenders:
        values = {name: bindparam(name, type_=table.c[name].type) for name in columns}
        appenders[key] = Statement(table.insert().values(values), dialect="sqlite", bulk=True)
    return appenders[key]


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str, readers: int) -> None:
        self.path = path
        self.readers = readers
        self._writer: _Connection | None = None
        self._write_lock = asyncio.Lock()
        self._idle: list[_Connection] = []
        self._waiters: Waiters[_Connection] = Waiters()
        self._count = 0  # reader connections open
        self._writes_waiting = 0  # for the write lock
        self._commits = 0  # since the last checkpoint
        self._checkpoint: asyncio.Future | None = None

    @asynccontextmanager
    async def transaction(self, *, write: bool):
        if write:
            tx = SQLiteTx(self, None)
            try:
                yield tx
            except BaseException:
                if tx.connection is not None:
                    await self._end(tx.connection, "ROLLBACK")
                raise
            if tx.connection is not None:
                await self._end(tx.connection, "COMMIT")
                self._committed(bulk=tx.wrote_in_bulk)
            return
        connection = await self._acquire()
        try:
            yield SQLiteTx(self, connection)
        finally:
            self._release(connection)

    async def _begin(self, tx: SQLiteTx) -> _Connection:
        """The writer, for a write transaction's first statement: in arrival order, then BEGIN IMMEDIATE."""
        self._writes_waiting += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._writes_waiting -= 1
        try:
            writer = self._writer or self._open_writer()
            await _run_plain(writer, "BEGIN IMMEDIATE")
        except BaseException:
            self._write_lock.release()
            raise
        tx.connection = writer
        return writer

    async def _end(self, writer: _Connection, sql: str) -> None:
        try:
            if writer.raw.in_transaction:
                await _run_plain(writer, sql)
        finally:
            self._write_lock.release()

    def _open_writer(self) -> _Connection:
        self._writer = _Connection(self.path)
        self._writer.raw.execute("PRAGMA journal_mode=WAL")  # kept in the file
        # Checkpoints run off the loop (see _committed), not inside a COMMIT on it.
        self._writer.raw.execute("PRAGMA wal_autocheckpoint=0")
        return self._writer

    def _committed(self, *, bulk: bool) -> None:
        """Counts a write transaction; one that wrote in bulk (an import batch) counts as many."""
        self._commits += CHECKPOINT_EVERY if bulk else 1
        if self._commits >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._commits = 0
            self._checkpoint = asyncio.ensure_future(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        # A connection of its own: PASSIVE copies what no reader still needs, and waits for no one.
        connection = await self._acquire()
        try:
            await _off_loop(lambda: connection.run("PRAGMA wal_checkpoint(PASSIVE)", ()))
        finally:
            self._release(connection)

    async def _acquire(self) -> _Connection:
        if self._idle:
            return self._idle.pop()
        if self._count < self.readers:
            self._count += 1
            return _Connection(self.path)
        return await self._waiters.wait(self._release)

    def load(self) -> PoolLoad:
        """Readers in use and the writer when a write holds it; reads and writes waiting."""
        in_use = self._count - len(self._idle) + self._write_lock.locked()
        return PoolLoad(in_use=in_use, waiting=len(self._waiters) + self._writes_waiting)

    def _release(self, connection: _Connection) -> None:
        if not self._waiters.hand_over(connection):
            self._idle.append(connection)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
        async with self._write_lock:
            for connection in [*self._idle, *([self._writer] if self._writer else [])]:
                connection.raw.close()
            self._idle, self._writer, self._count = [], None, 0


async def _run_plain(connection: _Connection, sql: str) -> None:
    """BEGIN, COMMIT or ROLLBACK: on the loop, or off it while another process holds the lock."""
    await _run(connection, lambda: connection.run(sql, ()), budget=math.inf, off_loop=False)
