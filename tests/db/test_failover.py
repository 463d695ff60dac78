"""Failover on PostgreSQL: FOOTFALL_DATABASE_URL names a primary and its synchronous standby in libpq's
form; the primary is killed and the standby promoted while a client records visits. Every request
answers 2xx or 503 (never a 500), the server finds the new primary by itself, and every visit it
acknowledged is stored exactly once. Servers of the test's own (initdb, pg_basebackup), on loopback."""

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.postgres import NEEDS, LocalCluster, can_make_servers
from footfall.testing.serving import running_server
from footfall.testing.tenants import make_tenant_at

pytestmark = pytest.mark.skipif(not can_make_servers(), reason=NEEDS)


@pytest.fixture
def cluster():
    made = LocalCluster(standbys=1, synchronous=True)
    try:
        asyncio.run(made.wait_streaming())
        yield made
    finally:
        made.close()


def test_the_server_finds_the_promoted_standby_and_loses_nothing(cluster):
    url = cluster.database_url(cluster.primary, cluster.standbys[0], target_session_attrs="read-write")
    tenant = asyncio.run(make_tenant_at(url))
    acknowledged: set[str] = set()
    statuses: dict[int, int] = {}
    stopped_at = promoted_at = recovered_at = None
    with running_server(url, env={"FOOTFALL_RATE_LIMIT": "0"}) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers, timeout=10
    ) as client:
        deadline = time.monotonic() + 60
        for n in range(1, 41):
            external_id, key = f"failover-{n}", str(uuid.uuid4())
            if n == 20:  # the primary dies; its standby is promoted a second later
                cluster.primary.stop("immediate")
                stopped_at = time.monotonic()
            while time.monotonic() < deadline:  # the same request again until it is answered
                response = client.post("/visits", headers={"Idempotency-Key": key}, json={
                    "contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "external_id": external_id})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code in (200, 201):
                    acknowledged.add(external_id)
                    if promoted_at is not None and recovered_at is None:
                        recovered_at = time.monotonic()
                    break
                assert response.status_code == 503, response.text
                assert response.json()["code"] == 90503 and response.headers["retry-after"] == "1"
                if promoted_at is None and time.monotonic() - stopped_at > 1:
                    cluster.standbys[0].promote()
                    promoted_at = time.monotonic()
                time.sleep(0.2)
        assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert recovered_at is not None, statuses
    assert recovered_at - promoted_at < 15  # found by itself, no restart
    assert set(statuses) <= {200, 201, 503} and statuses.get(503, 0) >= 1, statuses
    assert len(acknowledged) == 40

    async def stored() -> list[str]:
        connection = await asyncpg.connect(cluster.standbys[0].url)
        try:
            return [row["external_id"] for row in await connection.fetch(
                "SELECT external_id FROM visits WHERE external_id LIKE 'failover-%'")]
        finally:
            await connection.close()

    rows = asyncio.run(stored())
    assert len(rows) == len(set(rows))  # none twice
    assert acknowledged <= set(rows)  # none lost
