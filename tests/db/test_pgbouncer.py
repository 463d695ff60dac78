"""Footfall behind Debian's PgBouncer in transaction pooling: with FOOTFALL_DATABASE_STATEMENT_CACHE_SIZE=0
everything works through 3 server connections shared by 20 of Footfall's (migrations, writes, reads,
the batch, the export, the feed, the stats, webhooks); with asyncpg's prepared statements kept (the
default), requests fail, which is why the setting exists."""

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.postgres import NEEDS, LocalCluster, LocalPgBouncer, can_make_servers
from footfall.testing.serving import running_server
from footfall.testing.tenants import make_tenant_at

pytestmark = [
    pytest.mark.skipif(not can_make_servers(), reason=NEEDS),
    pytest.mark.skipif(shutil.which("pgbouncer") is None,
                       reason="PgBouncer is needed (Debian's pgbouncer; .ci/run installs it)"),
]
BEHIND_PGBOUNCER = {"FOOTFALL_DATABASE_STATEMENT_CACHE_SIZE": "0", "FOOTFALL_RATE_LIMIT": "0",
                    "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1"}


@pytest.fixture(scope="module")
def pgbouncer():
    cluster = LocalCluster(standbys=0)
    bouncer = None
    try:
        bouncer = LocalPgBouncer(cluster.primary, cluster.root, server_connections=3)
        yield bouncer
    finally:
        if bouncer is not None:
            bouncer.close()
        cluster.close()


def test_everything_works_through_transaction_pooling(pgbouncer, receiver):
    url = pgbouncer.url()
    tenant = asyncio.run(make_tenant_at(url))  # migrations too, through PgBouncer
    with running_server(url, env=BEHIND_PGBOUNCER) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers, timeout=30
    ) as client:
        assert client.post("/webhook-subscriptions", json={
            "name": "b", "event_type": "visit_created", "url": receiver.url("/bouncer")}).status_code == 201

        def create(n: int) -> int:
            return httpx.post(f"{base_url}{API_PREFIX}/visits", headers=tenant.headers, timeout=30, json={
                "contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid,
                "external_id": f"b-{n}"}).status_code

        def read(path: str) -> int:
            return httpx.get(f"{base_url}{API_PREFIX}{path}", headers=tenant.headers, timeout=30).status_code

        with ThreadPoolExecutor(16) as pool:  # more at once than PgBouncer has server connections
            created = list(pool.map(create, range(60)))
            reads = list(pool.map(read, ["/visits", "/visits?limit=100", "/contacts", "/shops", "/visits/changes",
                                         "/visits/stats", f"/contacts/{tenant.contact_uuid}"] * 8))
        assert created == [201] * 60
        assert reads == [200] * 56
        batch = client.post("/visits/batch", json={"visits": [
            {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid} for _ in range(50)]})
        assert batch.status_code == 200 and batch.json()["meta"]["created"] == 50
        exported = client.get("/visits/export", params={"format": "csv"})
        assert exported.status_code == 200 and len(exported.text.splitlines()) == 1 + 110
        receiver.wait_for("/bouncer", 110, timeout=60)


def test_kept_prepared_statements_break_behind_transaction_pooling(pgbouncer):
    url = pgbouncer.url()
    tenant = asyncio.run(make_tenant_at(url))
    env = {**BEHIND_PGBOUNCER, "FOOTFALL_DATABASE_STATEMENT_CACHE_SIZE": "100"}
    with running_server(url, env=env) as base_url:
        def read(path: str) -> int:
            return httpx.get(f"{base_url}{API_PREFIX}{path}", headers=tenant.headers, timeout=30).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(read, ["/visits", "/contacts", "/shops", f"/contacts/{tenant.contact_uuid}"] * 25))
    assert any(status >= 500 for status in statuses), statuses
