"""db.DriverPool, the visits routes' connections on PostgreSQL: bounded, first come first served, and a
connection cut off mid-statement is closed rather than handed to the next request."""

import asyncio

import pytest
from sqlalchemy import text

from footfall.db import DriverPool, create_driver_pool
from footfall.models import Account

BACKEND_PID = text("SELECT pg_backend_pid()")
SLEEP = text("SELECT pg_sleep(:seconds)")


@pytest.fixture
async def pool(app, database_url):
    if create_driver_pool(database_url, 1) is None:
        pytest.skip("DriverPool serves PostgreSQL only; on SQLite the visits routes run through SQLAlchemy")
    pool = DriverPool(database_url, size=3)
    yield pool
    await pool.close()


async def test_never_more_connections_than_its_size(pool):
    pids = set()

    async def one() -> None:
        async with pool.transaction(write=False) as tx:
            pids.add((await tx.fetchrow(BACKEND_PID))[0])
            await tx.fetch(SLEEP, {"seconds": 0.02})

    await asyncio.gather(*(one() for _ in range(20)))
    assert 1 <= len(pids) <= 3


async def test_a_freed_connection_goes_to_the_longest_waiter(pool):
    small = DriverPool(pool.dsn, size=1)
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


async def test_a_cancelled_statement_closes_its_connection(pool):
    cancelled_pid = []

    async def sleep_long() -> None:
        async with pool.transaction(write=False) as tx:
            cancelled_pid.append((await tx.fetchrow(BACKEND_PID))[0])
            await tx.fetch(SLEEP, {"seconds": 30})

    task = asyncio.create_task(sleep_long())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The pool serves on, on another connection: not the one still busy with the cancelled sleep.
    async with pool.transaction(write=False) as tx:
        assert (await tx.fetchrow(BACKEND_PID))[0] != cancelled_pid[0]


async def test_a_write_that_raises_is_rolled_back(pool, app):
    name = "driver-pool-rollback"
    insert = Account.__table__.insert().values(
        uuid=text("gen_random_uuid()"), name=name, created_at=text("now()")
    )
    count = text("SELECT count(*) FROM accounts WHERE name = :name")
    with pytest.raises(RuntimeError):
        async with pool.transaction(write=True) as tx:
            await tx.execute(insert)
            raise RuntimeError("after the write")
    async with pool.transaction(write=False) as tx:
        assert (await tx.fetchrow(count, {"name": name}))[0] == 0
    async with pool.transaction(write=True) as tx:
        await tx.execute(insert)
    async with pool.transaction(write=False) as tx:
        assert (await tx.fetchrow(count, {"name": name}))[0] == 1
