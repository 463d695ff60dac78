"""GET /visits/stats figures that both databases and the cache must get exactly right: a median
halfway between two whole seconds, and a visit counted from the cache as soon as it is written, even
while another transaction runs (on PostgreSQL it holds the changes feed's horizon back)."""

from contextlib import asynccontextmanager

import asyncpg

from tests.visits.test_routes import create_visit

DAY = {"starts_at[gte]": "2024-05-01T00:00:00Z", "starts_at[lt]": "2024-05-02T00:00:00Z"}


async def visits_on_the_day(client, tenant) -> list[tuple]:
    response = await client.get("/visits/stats", params={"interval": "hour", **DAY}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [(item["bucket_start"][11:16], item["visits"], item["median_duration_seconds"])
            for item in response.json()["data"] if item["visits"]]


async def test_a_median_halfway_between_seconds_rounds_away_from_zero_on_both(client, tenant):
    await create_visit(client, tenant, starts_at="2024-05-01T10:00:00Z", ends_at="2024-05-01T10:00:02Z")
    await create_visit(client, tenant, starts_at="2024-05-01T10:10:00Z", ends_at="2024-05-01T10:10:03Z")
    assert await visits_on_the_day(client, tenant) == [("10:00", 2, 3)]  # 2.5 s; half to even would be 2


@asynccontextmanager
async def another_transaction(app, database_url):
    """A transaction left open meanwhile: on PostgreSQL one that has a transaction id (in another
    connection, as another request or process would); on SQLite a reader's."""
    if database_url.startswith("postgresql"):
        connection = await asyncpg.connect(database_url)
        try:
            async with connection.transaction():
                await connection.fetchval("SELECT pg_current_xact_id()")
                yield
        finally:
            await connection.close()
    else:
        async with app.state.database.transaction(write=False):
            yield


async def test_the_cache_counts_a_write_at_once_while_another_transaction_runs(client, app, tenant, database_url):
    await create_visit(client, tenant, starts_at="2024-05-01T09:00:00Z")
    assert await visits_on_the_day(client, tenant) == [("09:00", 1, None)]  # cached
    async with another_transaction(app, database_url):
        made = await create_visit(client, tenant, starts_at="2024-05-01T15:00:00Z")
        assert made.status_code == 201
        assert await visits_on_the_day(client, tenant) == [("09:00", 1, None), ("15:00", 1, None)]
        moved = await client.put(f"/visits/{made.json()['data']['uuid']}", json={"ends_at": "2024-05-01T15:00:09Z"},
                                 headers=tenant.headers)
        assert moved.status_code == 200
        assert await visits_on_the_day(client, tenant) == [("09:00", 1, None), ("15:00", 1, 9)]
    # Once it ends, the cache's position moves past both writes and still counts them.
    assert await visits_on_the_day(client, tenant) == [("09:00", 1, None), ("15:00", 1, 9)]
    assert await visits_on_the_day(client, tenant) == [("09:00", 1, None), ("15:00", 1, 9)]
