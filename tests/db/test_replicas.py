"""Reads from a streaming replica (FOOTFALL_DATABASE_REPLICA_URLS): GETs are served by the replica, a
token reads its own writes at once (the primary serves it until the replica has them), a replica
that lags or stops is left out and /healthz says so. A primary and a standby of the test's own
(initdb, pg_basebackup) on loopback; the standby's replay is paused to make it lag on purpose."""

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.postgres import NEEDS, LocalCluster, can_make_servers
from footfall.testing.serving import footfall_json, running_server
from footfall.testing.tenants import Tenant, make_tenant_at

pytestmark = pytest.mark.skipif(not can_make_servers(), reason=NEEDS)
REDIS_URL = os.environ.get("FOOTFALL_TEST_REDIS_URL")


@pytest.fixture(scope="module")
def cluster():
    made = LocalCluster(standbys=1)
    try:
        asyncio.run(made.wait_streaming())
        yield made
    finally:
        made.close()


def replay(cluster: LocalCluster, paused: bool) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(cluster.standbys[0].url)
        try:
            await connection.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
        finally:
            await connection.close()

    asyncio.run(run())


def wait_for(check, seconds: float = 15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def replica_state(base_url: str) -> dict:
    [replica] = httpx.get(f"{base_url}/healthz").json()["replicas"]
    return replica


def a_visit(client: httpx.Client, tenant, external_id: str) -> str:
    response = client.post("/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid,
                                            "external_id": external_id})
    assert response.status_code == 201, response.text
    return response.json()["data"]["uuid"]


def reader_token(url: str, account_uuid: str) -> dict:
    """A second token of the account: one that has written nothing."""
    token = footfall_json("tokens", "create", "--account", account_uuid, "--read-only", database_url=url)["token"]
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def served(cluster: LocalCluster, **env: str) -> Iterator[tuple[str, httpx.Client, Tenant, dict]]:
    """`footfall serve` on the primary with the standby as its replica: (its URL, a client with a new
    tenant's token, the tenant, the headers of a second token of the account that writes nothing)."""
    url = cluster.primary.url
    tenant = asyncio.run(make_tenant_at(url))
    other = reader_token(url, tenant.account_uuid)
    env = {"FOOTFALL_DATABASE_REPLICA_URLS": cluster.standbys[0].url, "FOOTFALL_RATE_LIMIT": "0", **env}
    with running_server(url, env=env) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers, timeout=10
    ) as client:
        wait_for(lambda: replica_state(base_url)["state"] == "ok")
        yield base_url, client, tenant, other


def test_reads_go_to_the_replica_and_a_token_reads_its_own_writes(cluster):
    with served(cluster, FOOTFALL_REPLICA_MAX_LAG_SECONDS="60") as (base_url, client, tenant, other):
        replay(cluster, paused=True)
        try:
            uuid = a_visit(client, tenant, "replica-1")
            # The writer reads it at once (from the primary); a token that wrote nothing reads the
            # replica, which has not replayed it: the GET was served by the replica.
            assert client.get(f"/visits/{uuid}").status_code == 200
            assert client.get("/visits", params={"external_id": "replica-1"}).json()["meta"]["total"] == 1
            assert client.get(f"/visits/{uuid}", headers=other).status_code == 404
        finally:
            replay(cluster, paused=False)
        # Once replayed, both read it, from the replica.
        wait_for(lambda: client.get(f"/visits/{uuid}", headers=other).status_code == 200)
        assert replica_state(base_url)["state"] == "ok"
        # Every GET of the API reads there: the list, the feed, the stats.
        for path in ("/visits", "/visits/changes", "/visits/stats", "/contacts", "/shops", "/webhook-subscriptions"):
            assert client.get(path, headers=other).status_code == 200, path


def test_a_lagging_replica_is_left_out_until_it_catches_up(cluster):
    with served(cluster, FOOTFALL_REPLICA_MAX_LAG_SECONDS="1") as (base_url, client, tenant, other):
        replay(cluster, paused=True)
        try:
            uuid = a_visit(client, tenant, "lagging-1")
            lagging = wait_for(lambda: (state := replica_state(base_url))["state"] == "lagging" and state)
            assert lagging["lag_seconds"] > 1
            # Left out: every read goes to the primary, which has the visit.
            assert client.get(f"/visits/{uuid}", headers=other).status_code == 200
        finally:
            replay(cluster, paused=False)
        wait_for(lambda: replica_state(base_url)["state"] == "ok")


def test_a_replica_that_stops_is_left_out(cluster):
    with served(cluster) as (base_url, client, tenant, other):
        uuid = a_visit(client, tenant, "stopped-1")
        wait_for(lambda: client.get(f"/visits/{uuid}", headers=other).status_code == 200)
        cluster.standbys[0].stop("immediate")
        try:
            down = wait_for(lambda: (state := replica_state(base_url))["state"] == "down" and state)
            assert down["lag_seconds"] is None or down["lag_seconds"] >= 0
            # Reads go on, from the primary: never a 500.
            statuses = [client.get(f"/visits/{uuid}", headers=other).status_code for _ in range(20)]
            assert statuses[-5:] == [200] * 5 and set(statuses) <= {200, 503}, statuses
        finally:
            cluster.standbys[0].start()
        wait_for(lambda: replica_state(base_url)["state"] == "ok", 30)


@pytest.mark.skipif(REDIS_URL is None,
                    reason="FOOTFALL_TEST_REDIS_URL is not set: the positions shared between app hosts live in Redis")
def test_two_app_hosts_share_a_tokens_write_positions_through_redis(cluster):
    url = cluster.primary.url
    tenant = asyncio.run(make_tenant_at(url))
    env = {"FOOTFALL_DATABASE_REPLICA_URLS": cluster.standbys[0].url, "FOOTFALL_REPLICA_MAX_LAG_SECONDS": "60",
           "FOOTFALL_RATE_LIMIT": "0", "FOOTFALL_REDIS_URL": REDIS_URL}
    with running_server(url, env=env) as first, running_server(url, env=env) as second:
        wait_for(lambda: replica_state(first)["state"] == "ok" and replica_state(second)["state"] == "ok")
        replay(cluster, paused=True)
        try:
            with httpx.Client(base_url=f"{first}{API_PREFIX}", headers=tenant.headers) as client:
                uuid = a_visit(client, tenant, "two-hosts-1")
            # Written through the first host, read through the second: it knows the token wrote.
            assert httpx.get(f"{second}{API_PREFIX}/visits/{uuid}", headers=tenant.headers).status_code == 200
        finally:
            replay(cluster, paused=False)
