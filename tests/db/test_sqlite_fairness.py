"""One account's long reads hold up no other account's short requests (SQLite).

On SQLite the statements run inside the serving process, on connections of its own. A stats count
of many visits used to run in a thread of that process, on the reader its request took at the start
and kept to the end, calling Python functions for every row: the GIL it took back for each slowed
every other request (bench/fairness.py measures that), and a few such requests held every reader,
so that other accounts' requests, however short, waited for a reader until one of them was done.

The check is an order, not a time: with as many long reads under way as the server keeps readers
(FOOTFALL_DATABASE_POOL_SIZE, small here to keep the test short), another account's short requests,
sent one after another, all have their answers before any long read has its own."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from footfall.accounts import service as accounts
from footfall.app import API_PREFIX
from footfall.contacts import service as contacts
from footfall.contacts.schemas import ContactCreate
from footfall.db import migrate, open_database
from footfall.kit.time import utcnow
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from footfall.testing.serving import running_server
from footfall.testing.tenants import tenant_in
from footfall.visits.repository import VisitRepository

READERS = 2  # the server's readers, and the long reads under way at once
VISITS = 40_000  # a long read: a second or more of stats by hour here, a short request a millisecond
CONTACTS = 200
SHORT_REQUESTS = 30
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 89  # by hour: 2,136 buckets, as many as a request may ask for
STATS = {"interval": "hour", "starts_at[gte]": START.isoformat(),
         "starts_at[lt]": (START + timedelta(days=DAYS)).isoformat()}
ZONES = ["Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]  # none kept by the stats cache


async def _make_accounts(url: str) -> tuple[dict, dict]:
    """The heavy account (VISITS visits in DAYS days, inserted as the import inserts them) and the
    light one (a shop); each one's headers."""
    await migrate(url)
    database = open_database(url, pool_size=1)
    try:
        async with database.transaction(write=True) as tx:
            heavy = await accounts.create_account(tx, "Heavy")
            heavy_token = await accounts.issue_token(tx, heavy, name="tests")
            shop = await shops.create(tx, heavy, ShopCreate(name="Big shop"))
            people = [(await contacts.create(tx, heavy, ContactCreate(email=f"c{n}@heavy.example")))[0]
                      for n in range(CONTACTS)]
        now, apart = utcnow(), timedelta(days=DAYS) / VISITS
        rows = [{"uuid": uuid4(), "account_id": heavy.id, "contact_id": people[n % CONTACTS].id, "shop_id": shop.id,
                 "external_id": None, "source": "Kiosk", "starts_at": START + n * apart,
                 "ends_at": START + n * apart + timedelta(minutes=20), "created_at": now, "updated_at": now}
                for n in range(VISITS)]
        async with database.transaction(write=True) as tx:
            await VisitRepository(tx).insert_many(heavy.id, rows, full=False)
        light = await tenant_in(database)
    finally:
        await database.close()
    return {"Authorization": f"Bearer {heavy_token.secret}"}, light.headers


async def test_long_reads_hold_up_no_other_accounts_short_requests(database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's own: on PostgreSQL a statement runs in the database server, not in the serving process")
    url = f"sqlite:///{tmp_path}/fairness.db"
    heavy, light = await _make_accounts(url)
    env = {"FOOTFALL_RATE_LIMIT": "0", "FOOTFALL_DATABASE_POOL_SIZE": str(READERS)}
    with running_server(url, "--no-worker", env=env) as base:
        async with httpx.AsyncClient(base_url=f"{base}{API_PREFIX}", timeout=120) as client:
            long_reads = [asyncio.create_task(client.get("/visits/stats", params={**STATS, "timezone": zone},
                                                         headers=heavy))
                          for zone in ZONES[:READERS]]
            answered = 0
            for _ in range(SHORT_REQUESTS):
                response = await client.get("/shops", headers=light)
                assert response.status_code == 200
                if any(task.done() for task in long_reads):
                    break
                answered += 1
            answers = await asyncio.gather(*long_reads)
    for stats in answers:
        assert stats.status_code == 200
        assert sum(bucket["visits"] for bucket in stats.json()["data"]) == VISITS
    assert answered == SHORT_REQUESTS, (
        f"the other account's short requests waited for the long reads: {answered} of {SHORT_REQUESTS} "
        "had their answers before the first long read had its own")
