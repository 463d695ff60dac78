"""The two Database implementations: what each promises beyond running statements alike (see
test_parity), and the statements refused when they are built."""

import asyncio
import os
import sqlite3
import time
from typing import NamedTuple

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    literal,
    literal_column,
    select,
)

from footfall.db import Statement, StatementError, migrate, open_database
from footfall.db.postgres import PostgresDatabase
from footfall.db.sqlite import SQLiteDatabase
from footfall.tables import accounts, visits

NAMES = Statement(select(accounts.c.name).where(accounts.c.name.like(bindparam("pattern", type_=String)))
                  .order_by(accounts.c.id), dialect="sqlite")
INSERT = Statement(accounts.insert().values(uuid=func.lower(func.hex(func.randomblob(16))),
                                            name=bindparam("name", type_=String),
                                            created_at=literal_column("'2024-05-01 20:00:00.000000'")),
                   dialect="sqlite")


def _counting(dialect: str) -> Statement:
    """A read that runs for a while: counts to `upto` in a recursive CTE."""
    n = select(literal(1, Integer).label("n")).cte("n", recursive=True)
    n = n.union_all(select((n.c.n + 1).label("n")).where(n.c.n < bindparam("upto", type_=Integer)))
    return Statement(select(func.count().label("count")).select_from(n), dialect=dialect)


COUNTING = _counting("sqlite")


@pytest.fixture
async def sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path}/footfall.db"
    await migrate(url)
    database = open_database(url, pool_size=4)
    assert isinstance(database, SQLiteDatabase)
    yield database
    await database.close()


async def _longest_stall(work) -> tuple[object, float]:
    """Runs work while a ticker measures the longest the event loop went without running it."""
    longest, done = 0.0, False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        result = await work
    finally:
        done = True
        await task
    return result, longest


async def test_sqlite_a_long_read_moves_off_the_event_loop(sqlite_database):
    async def count() -> int:
        async with sqlite_database.transaction(write=False) as tx:
            return await tx.fetchval(COUNTING, {"upto": 3_000_000})

    started = time.perf_counter()
    total, stall = await _longest_stall(count())
    assert total == 3_000_000
    assert time.perf_counter() - started > 0.2  # long enough to matter
    assert stall < 0.05


async def test_sqlite_writes_run_one_at_a_time_in_arrival_order(sqlite_database):
    async def write(n: int) -> None:
        async with sqlite_database.transaction(write=True) as tx:
            await tx.execute(INSERT, {"name": f"order-{n}"})
            await asyncio.sleep(0.005)  # others arrive meanwhile, and wait
            await tx.execute(INSERT, {"name": f"order-{n}-second"})

    tasks = []
    for n in range(8):
        tasks.append(asyncio.create_task(write(n)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    async with sqlite_database.transaction(write=False) as tx:
        names = [row.name for row in await tx.fetch(NAMES, {"pattern": "order-%"})]
    assert names == [name for n in range(8) for name in (f"order-{n}", f"order-{n}-second")]


async def test_sqlite_a_write_that_raises_is_rolled_back(sqlite_database):
    with pytest.raises(RuntimeError):
        async with sqlite_database.transaction(write=True) as tx:
            await tx.execute(INSERT, {"name": "rolled-back"})
            raise RuntimeError("after the write")
    async with sqlite_database.transaction(write=True) as tx:
        await tx.execute(INSERT, {"name": "kept"})
    async with sqlite_database.transaction(write=False) as tx:
        assert [row.name for row in await tx.fetch(NAMES, {"pattern": "%e%"})] == ["kept"]


async def test_sqlite_a_write_waits_off_the_loop_for_another_process(sqlite_database):
    # Another process's write lock: a connection of its own, outside this Database.
    other = sqlite3.connect(sqlite_database.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with sqlite_database.transaction(write=True) as tx:
            await tx.execute(INSERT, {"name": "after the other"})

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        other.execute("COMMIT")

    releaser = asyncio.create_task(release_later())
    _, stall = await _longest_stall(write())
    await releaser
    other.close()
    assert stall < 0.05
    async with sqlite_database.transaction(write=False) as tx:
        assert [row.name for row in await tx.fetch(NAMES, {"pattern": "after%"})] == ["after the other"]


# What a driver cannot run is refused when the statement is built.

def test_an_in_list_is_refused_when_built():
    with pytest.raises(StatementError, match="post-compile"):
        Statement(select(visits.c.id).where(visits.c.id.in_([1, 2])), dialect="postgresql")


def test_an_untyped_parameter_is_refused_when_built():
    with pytest.raises(StatementError, match="parameter limit"):
        Statement(select(visits.c.id).limit(bindparam("limit")), dialect="sqlite")


def test_a_type_outside_the_supported_ones_is_refused_when_built():
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime(timezone=True)))
    with pytest.raises(StatementError, match="column at"):
        Statement(select(table.c.at), dialect="sqlite")


def test_a_python_side_default_is_refused_when_built():
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer, default=lambda: 1))
    with pytest.raises(StatementError, match="default"):
        Statement(table.insert().values(id=bindparam("id", type_=Integer)), dialect="postgresql")


def test_a_record_whose_fields_are_not_the_columns_is_refused_when_built():
    class Wrong(NamedTuple):
        uuid: str
        id: int

    with pytest.raises(StatementError, match="Wrong"):
        Statement(select(visits.c.id, visits.c.uuid), Wrong, dialect="sqlite")


# PostgreSQL: a small FIFO pool of asyncpg connections.

BACKEND_PID = Statement(select(func.pg_backend_pid(type_=Integer).label("pid")), dialect="postgresql")
SLEEP = Statement(
    select(func.pg_sleep(bindparam("ms", type_=Integer) / literal_column("1000.0"), type_=String).label("slept")),
    dialect="postgresql",
)
PG_INSERT = Statement(
    accounts.insert().values(uuid=func.gen_random_uuid(), name=bindparam("name", type_=String), created_at=func.now()),
    dialect="postgresql",
)
PG_COUNT = Statement(select(func.count().label("count")).where(accounts.c.name == bindparam("name", type_=String)),
                     dialect="postgresql")


@pytest.fixture
async def pool(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the connection pool is PostgreSQL's; SQLite's connections are tested above")
    await migrate(database_url)
    pool = PostgresDatabase(database_url, size=3)
    yield pool
    await pool.close()


async def test_postgresql_never_more_connections_than_its_size(pool):
    pids = set()

    async def one() -> None:
        async with pool.transaction(write=False) as tx:
            pids.add(await tx.fetchval(BACKEND_PID))
            await tx.fetch(SLEEP, {"ms": 20})

    await asyncio.gather(*(one() for _ in range(20)))
    assert 1 <= len(pids) <= 3


async def test_postgresql_a_freed_connection_goes_to_the_longest_waiter(pool):
    small = PostgresDatabase(pool.dsn, size=1)
    order = []
    try:
        holder = small.transaction(write=False)
        await holder.__aenter__()

        async def waiter(n: int) -> None:
            async with small.transaction(write=False):
                order.append(n)

        tasks = []
        for n in range(4):
            tasks.append(asyncio.create_task(waiter(n)))
            await asyncio.sleep(0.01)  # each is waiting before the next arrives
        await holder.__aexit__(None, None, None)
        # Arriving just as the connection is freed, a newcomer still queues behind those waiting.
        async with small.transaction(write=False):
            order.append("newcomer")
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, "newcomer"]
    finally:
        await small.close()


async def test_postgresql_a_cancelled_statement_closes_its_connection(pool):
    cancelled_pid = []

    async def sleep_long() -> None:
        async with pool.transaction(write=False) as tx:
            cancelled_pid.append(await tx.fetchval(BACKEND_PID))
            await tx.fetch(SLEEP, {"ms": 30_000})

    task = asyncio.create_task(sleep_long())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The pool serves on, on another connection: not the one still busy with the cancelled sleep.
    async with pool.transaction(write=False) as tx:
        assert await tx.fetchval(BACKEND_PID) != cancelled_pid[0]


async def test_postgresql_a_write_that_raises_is_rolled_back(pool):
    name = "pool-rollback"
    with pytest.raises(RuntimeError):
        async with pool.transaction(write=True) as tx:
            await tx.execute(PG_INSERT, {"name": name})
            raise RuntimeError("after the write")
    async with pool.transaction(write=False) as tx:
        assert await tx.fetchval(PG_COUNT, {"name": name}) == 0
    async with pool.transaction(write=True) as tx:
        await tx.execute(PG_INSERT, {"name": name})
    async with pool.transaction(write=False) as tx:
        assert await tx.fetchval(PG_COUNT, {"name": name}) == 1


async def test_sqlite_checkpoints_the_wal_off_the_loop_after_a_bulk_write(sqlite_database):
    bulk = Statement(accounts.insert().from_select(
        ["uuid", "name", "created_at"],
        select(func.lower(func.hex(func.randomblob(16))), literal("bulk", String),
               literal_column("'2024-05-01 20:00:00.000000'")).select_from(accounts),
    ), dialect="sqlite", bulk=True)
    async with sqlite_database.transaction(write=True) as tx:
        for n in range(200):
            await tx.execute(INSERT, {"name": f"seed-{n}"})
    before = os.path.getsize(sqlite_database.path)  # in WAL mode, writes go to the -wal file first
    for _ in range(3):  # 200, 400, 800 rows more
        async with sqlite_database.transaction(write=True) as tx:
            await tx.execute(bulk)
    for _ in range(100):
        if os.path.getsize(sqlite_database.path) > before:
            break  # the checkpoint copied the new pages into the database file
        await asyncio.sleep(0.05)
    assert os.path.getsize(sqlite_database.path) > before


async def test_sqlite_wal_starts_again_under_steady_writes(sqlite_database, monkeypatch):
    """Writers that never pause leave a checkpoint beside them no moment to copy the whole WAL; the
    pass in the writer's turn does, and the WAL starts again from its beginning (its file cut back
    to the limit, here nothing) instead of growing with every write."""
    monkeypatch.setattr("footfall.db.sqlite.CHECKPOINT_EVERY", 20)
    monkeypatch.setattr("footfall.db.sqlite.WAL_SIZE_LIMIT", 0)
    wal = f"{sqlite_database.path}-wal"
    sizes: list[int] = []
    until = time.monotonic() + 2

    async def writes(writer: int) -> None:
        n = 0
        while time.monotonic() < until:
            async with sqlite_database.transaction(write=True) as tx:
                await tx.execute(INSERT, {"name": f"steady-{writer}-{n}-" + "x" * 2000})
            sizes.append(os.path.getsize(wal))
            n += 1
            await asyncio.sleep(0)  # as a request waits for its client between writes

    await asyncio.gather(*(writes(writer) for writer in range(8)))
    restarts = sum(1 for before, after in zip(sizes, sizes[1:], strict=False) if after < before)
    assert restarts >= 3, (len(sizes), max(sizes), restarts)


def _named(dialect: str) -> tuple[Statement, Statement]:
    """Adds an account of a name, and counts the accounts of that name."""
    insert = Statement(accounts.insert().values(uuid=bindparam("uuid", type_=accounts.c.uuid.type),
                                                name=bindparam("name", type_=String),
                                                created_at=bindparam("at", type_=accounts.c.created_at.type)),
                       dialect=dialect)
    count = Statement(select(func.count().label("count")).where(accounts.c.name == bindparam("name", type_=String)),
                      dialect=dialect)
    return insert, count


@pytest.mark.parametrize("snapshot", [True, False])
async def test_a_snapshot_reads_one_state_of_the_database(database_url, snapshot):
    """A page and its total read in one read transaction agree when it asks for a snapshot: a write
    committed between them is seen by neither. Without one, the second read sees it (which is why
    the lists ask)."""
    from datetime import UTC, datetime
    from uuid import uuid4

    await migrate(database_url)
    database = open_database(database_url, pool_size=2)
    insert, count = _named(database.dialect)
    name = f"snapshot-{uuid4().hex}"
    try:
        async with database.transaction(write=False) as reading:
            if snapshot:
                await reading.snapshot()
            before = await reading.fetchval(count, {"name": name})
            async with database.transaction(write=True) as writing:
                await writing.execute(insert, {"uuid": uuid4(), "name": name, "at": datetime.now(UTC)})
            after = await reading.fetchval(count, {"name": name})
        async with database.transaction(write=False) as reading:
            now = await reading.fetchval(count, {"name": name})
    finally:
        await database.close()
    assert (before, now) == (0, 1)
    assert after == (0 if snapshot else 1)
