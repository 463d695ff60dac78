"""SQLite on the sqlite3 module, in the process: one writer connection, reader connections beside it.

- Writes queue for the one writer connection in arrival order (an asyncio.Lock is FIFO), so a write
  never spins on SQLITE_BUSY behind another of its own process. BEGIN IMMEDIATE takes the file's write
  lock; another process holding it makes the BEGIN wait off the event loop, with the busy timeout.
- Reads take a reader connection each (WAL lets them run beside the writer) and run without BEGIN.
- A statement runs on the event loop, where a short one costs least (a thread hand-off costs more
  than a point lookup). A read that has not finished after READ_BUDGET seconds is interrupted and run
  again off the loop; one that meets a lock (another process) too. A write's statements built
  `bulk=True` run off the loop from the start, and WAL checkpoints run off the loop, beside the
  writes and then in the writer's turn among them (_run_checkpoint). Off the loop a statement has
  no progress handler (no deadline to keep there), so sqlite3 steps it without taking the GIL.
- A read's statement built `bulk=True` (the stats, the export) that runs over budget moves to the
  long-read lane instead (_LongReads): LONG_READERS processes of its own, below this one's priority.
  In a thread of this process it took the GIL back for every row and every call of the stats' Python
  functions, and the event loop then waited for the GIL each time it let go of it: a stats count of
  300,000 visits cut another account's GET /shops to a third of its rate or less, its slowest to
  0.8-2.8 s (bench/fairness.py). Its transaction gives its reader back meanwhile, so long reads
  waiting for the lane never hold the readers that short requests need.
"""

import asyncio
import bisect
import json
import math
import os
import pickle
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import Table, bindparam

from footfall.db.pool import Waiters
from footfall.db.statement import Statement
from footfall.db.tx import ConstraintViolation, Database, PoolLoad, R, Tx

READ_BUDGET = 0.001  # seconds a read may run on the event loop before it moves off it
BUSY_TIMEOUT_MS = 30_000  # how long a statement off the loop waits for another process's lock
CHECKPOINT_EVERY = 500  # write transactions between two WAL checkpoints (after any bulk one)
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes of WAL file kept once it starts again from its beginning
LONG_READERS = 2  # processes a database runs bulk reads in, each started at its first read
LONG_READ_NICENESS = 10  # their CPU priority below the serving process's
_WAIT_FOR_LOCK = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT)

T = TypeVar("T")


class _Connection:
    """A sqlite3 connection and the deadline its progress handler interrupts at."""

    __slots__ = ("raw", "deadline", "thread")

    def __init__(self, path: str, thread: ThreadPoolExecutor | None = None) -> None:
        self.thread = thread  # where its work off the loop runs (None: the loop's default executor)
        # timeout=0: on the loop a lock is never waited for; off the loop BUSY_TIMEOUT_MS is set.
        self.raw = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False,
                                   cached_statements=512)
        self.deadline = math.inf
        self.raw.execute("PRAGMA foreign_keys=ON")
        self.raw.execute("PRAGMA synchronous=NORMAL")
        self.raw.set_progress_handler(self._over_budget, 1000)
        # What PostgreSQL has built in and SQLite lacks, for the visit stats (stats/repository.py).
        self.raw.create_function("footfall_width_bucket", 2, _width_bucket, deterministic=True)
        self.raw.create_aggregate("footfall_median", 1, _Median)  # type: ignore[arg-type]  # typeshed: int results only

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
        """Off the loop: waits for another process's lock, up to BUSY_TIMEOUT_MS, and steps with no
        progress handler (no deadline to keep), so without the GIL."""
        self.raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.raw.set_progress_handler(None, 0)
        try:
            return work()
        finally:
            self.raw.set_progress_handler(self._over_budget, 1000)
            self.raw.execute("PRAGMA busy_timeout=0")


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    size = stream.read(8)
    data = stream.read(int.from_bytes(size, "little")) if len(size) == 8 else b""
    if not data:
        raise EOFError("the other end closed the pipe")
    return pickle.loads(data)


def _serve_long_reads() -> None:
    """A process of the long-read lane (`python -c`, see _LongReads): reads (sql, args) from stdin
    and answers (True, rows) or (False, error) on stdout, one at a time, until stdin closes."""
    path = sys.argv[1]
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever prints goes to stderr, never into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which closes stdin
    connection = _Connection(path)
    connection.raw.set_progress_handler(None, 0)
    connection.raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    connection.raw.execute("PRAGMA query_only=ON")
    while True:
        try:
            sql, args = _receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, connection.run(sql, args)[0])
        except Exception as error:  # the caller's to raise, as the driver raised it where it pickles
            try:
                pickle.dumps(error)
            except Exception:
                error = sqlite3.OperationalError(repr(error))
            answer = (False, error)
        try:
            _send(answers, answer)
        except BrokenPipeError:  # the server is gone
            return


# The lane's process: lowered first, then footfall imported from where this process has it.
_LANE_PROCESS = ("import os, sys\nif hasattr(os, 'nice'): os.nice({niceness})\n"
                 "if sys.argv[2] not in sys.path: sys.path.append(sys.argv[2])\n"
                 "from footfall.db.sqlite import _serve_long_reads\n_serve_long_reads()")
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


class _LongReads:
    """The long-read lane: LONG_READERS threads, each handing its reads, in arrival order, to a
    process of its own (started at its first read, again after it dies) with a connection of its
    own. The thread waits on a pipe without the GIL; the statement and the Python functions it calls
    take the GIL of their process, not this one's. Plain `python -c` processes: multiprocessing's
    would run the caller's main script again in each."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.threads = ThreadPoolExecutor(LONG_READERS, thread_name_prefix="footfall-long-read")
        self.local = threading.local()
        self.processes: set[subprocess.Popen[bytes]] = set()

    async def read(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """The rows. A caller cancelled while its read waits for a thread takes it out of the queue;
        one already running finishes alone."""
        return await asyncio.get_running_loop().run_in_executor(self.threads, self._read, sql, args)

    def _read(self, sql: str, args: Sequence[Any]) -> list[Any]:
        process: subprocess.Popen[bytes] | None = getattr(self.local, "process", None)
        if process is None:
            process = self.local.process = subprocess.Popen(
                [sys.executable, "-c", _LANE_PROCESS.format(niceness=LONG_READ_NICENESS), self.path, _SOURCE_ROOT],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.processes.add(process)
        assert process.stdin is not None and process.stdout is not None  # every lane process has both PIPEs
        try:
            _send(process.stdin, (sql, list(args)))
            ok, value = _receive(process.stdout)
        except (OSError, EOFError) as error:
            self.local.process = None
            self._stop(process)
            raise sqlite3.OperationalError(f"the long-read process ended: {error}") from error
        if not ok:
            raise value
        return value

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        self.processes.discard(process)
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            assert stream is not None  # every lane process has both PIPEs (see _read)
            try:
                stream.close()
            except OSError:  # a broken pipe: the process is gone already
                pass

    def close(self) -> None:
        """Stops the processes (a read still running ends with an error), then the threads, then
        any process a thread started meanwhile."""
        for process in list(self.processes):
            self._stop(process)
        self.threads.shutdown(wait=True, cancel_futures=True)
        for process in list(self.processes):
            self._stop(process)


# The last boundaries parsed, kept by their text: sqlite3 hands each call a new str, and comparing
# it with the last (memcmp) costs a tenth of hashing it for a cache (up to 60 kB a row, by hour).
_parsed: tuple[str, list[str]] = ("", [])


def _width_bucket(value: str | None, boundaries: str) -> int | None:
    """PostgreSQL's width_bucket(value, thresholds): how many of the thresholds (a JSON array of
    ascending times, written as SQLite keeps them) are at or before the value."""
    global _parsed
    if value is None:
        return None
    parsed = _parsed
    if parsed[0] != boundaries:
        parsed = _parsed = (boundaries, json.loads(boundaries))
    return bisect.bisect_right(parsed[1], value)


class _Median:
    """PostgreSQL's percentile_cont(0.5): the middle value, or the mean of the middle two."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return statistics.median(self.values) if self.values else None


async def _off_loop(work: Callable[[], T], thread: ThreadPoolExecutor | None = None) -> T:
    """Runs work in a thread; a cancelled caller still waits for it, since the connection is in use."""
    future = asyncio.get_running_loop().run_in_executor(thread, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class _Moved:
    """What _on_loop returns for work that has to move off the loop."""


MOVED = _Moved()


def _on_loop(connection: _Connection, work: Callable[[], T], budget: float) -> T | _Moved:
    """Work on the loop, or MOVED when it ran out of budget or met a lock (and was undone)."""
    connection.deadline = time.perf_counter() + budget
    try:
        return work()
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode not in _WAIT_FOR_LOCK:
            raise
        return MOVED
    finally:
        connection.deadline = math.inf


async def _run(connection: _Connection, work: Callable[[], T], *, budget: float, off_loop: bool) -> T:
    if not off_loop:
        result = _on_loop(connection, work, budget)
        if not isinstance(result, _Moved):
            return result
    return await _off_loop(lambda: connection.run_waiting(work), connection.thread)


class SQLiteTx(Tx):
    """A read transaction takes a reader at its first statement and keeps it, except while a bulk
    read of its own is in the long-read lane. A write transaction takes the writer and begins at its
    first statement, so a request can first commit small write transactions of its own (an
    Idempotency-Key claim) without waiting on itself."""

    dialect = "sqlite"
    __slots__ = ("database", "connection", "reads", "budget", "wrote_in_bulk")

    def __init__(self, database: "SQLiteDatabase", *, write: bool) -> None:
        self.database = database
        self.connection: _Connection | None = None
        self.reads = not write
        # A write is never interrupted: that would roll back the whole transaction.
        self.budget = math.inf if write else READ_BUDGET
        self.wrote_in_bulk = False

    async def _connect(self) -> _Connection:
        if self.connection is None:
            self.connection = await (self.database._acquire() if self.reads else self.database._begin())
        return self.connection

    async def snapshot(self) -> None:
        if self.reads:
            connection = await self._connect()
            if not connection.raw.in_transaction:
                connection.raw.execute("BEGIN")  # deferred: the snapshot is taken at the first read

    async def _run(self, work: Callable[[_Connection], T], bulk: bool) -> T:
        connection = await self._connect()
        self.wrote_in_bulk |= bulk
        return await _run(connection, lambda: work(connection), budget=self.budget, off_loop=bulk)

    async def fetch(self, statement: Statement[R], params: dict[str, Any] | None = None) -> list[R]:
        compiled = statement.compiled
        args = compiled.args(params)
        if statement.bulk and self.reads:
            rows = await self._read_bulk(compiled.sql, args)
        else:
            rows, _ = await self._run(lambda connection: connection.run(compiled.sql, args), statement.bulk)
        return compiled.read(rows) if compiled.record is not None else rows

    async def _read_bulk(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """On the loop first, as any read (a small account's stats never leave it); over budget, in
        the long-read lane, with the reader given back meanwhile."""
        connection = await self._connect()
        rows = _on_loop(connection, lambda: connection.run(sql, args)[0], self.budget)
        if not isinstance(rows, _Moved):
            return rows
        self.connection = None
        self.database._release(connection)
        return await self.database._read_long(sql, args)

    async def execute(self, statement: Statement, params: dict[str, Any] | None = None) -> int:
        compiled = statement.compiled
        args = compiled.args(params)
        _, count = await self._run(lambda connection: connection.run(compiled.sql, args), statement.bulk)
        return count

    async def executemany(self, statement: Statement, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            compiled = statement.compiled
            args = [compiled.args(row) for row in rows]
            await self._run(lambda connection: connection.run_many(compiled.sql, args), len(args) > 1 or statement.bulk)

    async def copy_records(self, table: Table, columns: Sequence[str], records: Sequence[Sequence[Any]]) -> None:
        columns = tuple(columns)
        rows = [dict(zip(columns, record, strict=True)) for record in records]
        await self.executemany(appender(table, columns), rows)

    async def _plain(self, sql: str) -> None:
        await self._run(lambda connection: connection.run(sql, ()), False)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
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
        # Where the checkpoints' pass beside the writes runs, made at the first: what SQLite allocates
        # for it comes from this thread's malloc arena alone, not from whichever of the default
        # executor's threads was free, each of which keeps its own high-water mark.
        self._checkpoint_thread: ThreadPoolExecutor | None = None
        self._long_reads: _LongReads | None = None  # started at the first bulk read

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[SQLiteTx]:
        tx = SQLiteTx(self, write=write)
        if write:
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
        try:
            yield tx
        finally:
            if tx.connection is not None:
                self._release(tx.connection)

    async def _read_long(self, sql: str, args: Sequence[Any]) -> list[Any]:
        if self._long_reads is None:
            self._long_reads = _LongReads(self.path)
        return await self._long_reads.read(sql, args)

    async def _begin_turn(self) -> _Connection:
        """The writer, in arrival order among this process's writes; the caller releases the write lock."""
        self._writes_waiting += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._writes_waiting -= 1
        try:
            return self._writer or self._open_writer()
        except BaseException:
            self._write_lock.release()
            raise

    async def _begin(self) -> _Connection:
        """The writer, for a write transaction's first statement: in arrival order, then BEGIN IMMEDIATE."""
        writer = await self._begin_turn()
        try:
            await _run_plain(writer, "BEGIN IMMEDIATE")
        except BaseException:
            self._write_lock.release()
            raise
        return writer

    async def _end(self, writer: _Connection, sql: str) -> None:
        try:
            if writer.raw.in_transaction:
                await _run_plain(writer, sql)
        finally:
            self._write_lock.release()

    def _open_writer(self) -> _Connection:
        # A thread of its own for its work off the loop: what SQLite allocates for it (pages, statements)
        # comes from one of the allocator's per-thread arenas, not from each of the default
        # executor's, which each keep their own high-water mark.
        self._writer = _Connection(self.path, ThreadPoolExecutor(1, thread_name_prefix="footfall-sqlite-writer"))
        self._writer.raw.execute("PRAGMA journal_mode=WAL")  # kept in the file
        # Checkpoints run off the loop (see _committed), not inside a COMMIT on it.
        self._writer.raw.execute("PRAGMA wal_autocheckpoint=0")
        # The WAL starts again from its beginning after a checkpoint that copied all of it, and
        # its file is cut back to this then: what a burst of writes grew it to is not kept on disk.
        self._writer.raw.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        return self._writer

    def _committed(self, *, bulk: bool) -> None:
        """Counts a write transaction; one that wrote in bulk (an import batch) counts as many."""
        self._commits += CHECKPOINT_EVERY if bulk else 1
        if self._commits >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._commits = 0
            self._checkpoint = asyncio.ensure_future(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        # PASSIVE copies what no reader still needs and waits for no one. Beside the writes it copies
        # most of the WAL while they go on, but under steady writes never all of it, and a WAL not
        # copied whole never starts again: it grows with every write. A second pass on the writer, in
        # its turn among the writes, copies what they appended meanwhile, so the next write starts
        # the WAL again from its beginning.
        if self._checkpoint_thread is None:
            self._checkpoint_thread = ThreadPoolExecutor(1, thread_name_prefix="footfall-sqlite-checkpoint")
        connection = await self._acquire()
        try:
            await _off_loop(lambda: connection.run("PRAGMA wal_checkpoint(PASSIVE)", ()), self._checkpoint_thread)
        finally:
            self._release(connection)
        writer = await self._begin_turn()
        try:
            await _off_loop(lambda: writer.run("PRAGMA wal_checkpoint(PASSIVE)", ()), writer.thread)
        finally:
            self._write_lock.release()

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
        if connection.raw.in_transaction:
            connection.raw.execute("COMMIT")  # a snapshot's end: nothing was written
        if not self._waiters.hand_over(connection):
            self._idle.append(connection)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
        if self._long_reads is not None:
            long_reads, self._long_reads = self._long_reads, None
            await asyncio.get_running_loop().run_in_executor(None, long_reads.close)
        async with self._write_lock:
            for connection in [*self._idle, *([self._writer] if self._writer else [])]:
                connection.raw.close()
                if connection.thread is not None:
                    connection.thread.shutdown()
            self._idle, self._writer, self._count = [], None, 0
        if self._checkpoint_thread is not None:
            self._checkpoint_thread.shutdown()
            self._checkpoint_thread = None


async def _run_plain(connection: _Connection, sql: str) -> None:
    """BEGIN, COMMIT or ROLLBACK: on the loop, or off it while another process holds the lock."""
    await _run(connection, lambda: connection.run(sql, ()), budget=math.inf, off_loop=False)
