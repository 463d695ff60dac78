"""The stats cache answers what counting afresh answers, through every kind of write: new visits
(also a contact's new first visit), updates, moved starts, deletes, batches, imports and claims."""

import httpx
import pytest

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
from footfall.stats.cache import StatsCache
from tests.visits.test_routes import create_visit

QUERIES = [
    {"interval": "day", "starts_at[gte]": "2024-05-01", "starts_at[lt]": "2024-05-08"},
    {"interval": "day", "group_by": "source", "starts_at[gte]": "2024-05-01", "starts_at[lt]": "2024-05-08"},
    {"interval": "week", "timezone": "Europe/Amsterdam"},  # open: from the first visit to the last
    {"interval": "hour", "starts_at[gte]": "2024-05-02", "starts_at[lt]": "2024-05-03", "source": "Kiosk"},
]


@pytest.fixture
async def fresh(database_url):
    """The same database through an app that counts everything afresh for every request."""
    app = create_app(Settings(database_url=database_url, webhook_worker=False, token_cache_seconds=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://footfall.test{API_PREFIX}") as client:
        yield app, client
    await app.state.database.close()


async def check(client, fresh, tenant):
    """Every query answers the same from the warm cache as counted afresh."""
    cold_app, cold = fresh
    for query in QUERIES:
        warm = (await client.get("/visits/stats", params=query, headers=tenant.headers)).json()
        cold_app.state.stats_cache = StatsCache()
        counted = (await cold.get("/visits/stats", params=query, headers=tenant.headers)).json()
        assert warm["meta"] == counted["meta"], query
        assert [b for b in warm["data"] if b not in counted["data"]] == [], (query, counted["data"])


async def test_the_cache_follows_every_kind_of_write(client, app, fresh, tenant):
    other = (await client.post("/contacts", json={"email": "karen@chumbucket.sea"},
                               headers=tenant.headers)).json()["data"]
    made = [(await create_visit(client, tenant, starts_at=f"2024-05-0{day}T1{day}:00:00Z", source="Kiosk",
                                ends_at=f"2024-05-0{day}T1{day}:30:00Z")).json()["data"] for day in (2, 3, 5)]
    await check(client, fresh, tenant)  # fills the cache
    entries = len(app.state.stats_cache.entries)

    await create_visit(client, tenant, starts_at="2024-05-04T09:00:00Z", contact_uuid=other["uuid"])
    await check(client, fresh, tenant)
    # The contact's new first visit, two days before its old one: day 2 loses a new contact, day 1 gains one.
    await create_visit(client, tenant, starts_at="2024-05-01T08:00:00Z", source="Kiosk")
    await check(client, fresh, tenant)
    update = await client.put(f"/visits/{made[1]['uuid']}", json={"ends_at": "2024-05-03T15:00:00Z", "source": "Web"},
                              headers=tenant.headers)
    assert update.status_code == 200
    await check(client, fresh, tenant)
    moved = await client.put(f"/visits/{made[2]['uuid']}", json={"starts_at": "2024-05-06T10:00:00Z", "ends_at": None},
                             headers=tenant.headers)
    assert moved.status_code == 200
    await check(client, fresh, tenant)
    assert (await client.delete(f"/visits/{made[0]['uuid']}", headers=tenant.headers)).status_code == 200
    await check(client, fresh, tenant)
    batch = [{"contact_uuid": other["uuid"], "shop_uuid": tenant.shop_uuid, "source": "Kiosk",
              "starts_at": f"2024-05-02T{hour:02d}:15:00Z"} for hour in range(8, 20)]
    assert (await client.post("/visits/batch", json={"visits": batch}, headers=tenant.headers)).status_code == 200
    await check(client, fresh, tenant)
    anonymous = (await client.post("/contacts/anonymous", headers=tenant.headers)).json()["data"]
    await create_visit(client, tenant, starts_at="2024-05-07T12:00:00Z", contact_uuid=anonymous["uuid"])
    claimed = await client.put(f"/contacts/{anonymous['uuid']}/claim", json={"email": "plankton@chumbucket.sea"},
                               headers=tenant.headers)
    assert claimed.status_code == 200
    await check(client, fresh, tenant)
    deleted = await client.delete(f"/contacts/{other['uuid']}", params={"type": "GDPR"}, headers=tenant.headers)
    assert deleted.status_code == 200
    await check(client, fresh, tenant)
    assert len(app.state.stats_cache.entries) == entries  # the same entries, brought up to date


async def test_an_account_never_sees_anothers_counts_from_the_cache(client, app, tenant, other_tenant):
    await create_visit(client, tenant, starts_at="2024-05-02T10:00:00Z")
    mine = (await client.get("/visits/stats", params=QUERIES[0], headers=tenant.headers)).json()
    theirs = (await client.get("/visits/stats", params=QUERIES[0], headers=other_tenant.headers)).json()
    assert sum(b["visits"] for b in mine["data"]) == 1 and sum(b["visits"] for b in theirs["data"]) == 0
