"""Worker processes: `footfall serve` delivers by default, `footfall worker` alone; several share the
work without sending one delivery twice; SIGKILL loses nothing; SIGTERM finishes what is in flight."""

import asyncio
import json
import os
import signal
import time

import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.receiver import Reply
from footfall.testing.serving import running_server, start_worker
from footfall.testing.tenants import Tenant, make_tenant_at

FAST = {
    "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1",
    "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
    "FOOTFALL_WEBHOOK_RETRY_SCHEDULE": "0,0.5,0.5,0.5",
}


@pytest.fixture
def tenant(database_url) -> Tenant:
    """An account of this test's own, so no other test's subscriptions see its events."""
    return asyncio.run(make_tenant_at(database_url))


def api(base_url: str, tenant: Tenant) -> httpx.Client:
    return httpx.Client(base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers, timeout=30)


def stop(process, signum=signal.SIGTERM, timeout=30) -> str:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=timeout)
    except Exception:
        process.kill()
        output, _ = process.communicate()
        raise
    return output


def subscribe(client: httpx.Client, url: str) -> None:
    subscription = client.post("/webhook-subscriptions", json={"name": "t", "event_type": "visit_created", "url": url})
    assert subscription.status_code == 201, subscription.text


def subscribe_and_visit(client: httpx.Client, url: str, visits: int = 1) -> list[str]:
    subscribe(client, url)
    return create_visits(client, visits)


def create_visits(client: httpx.Client, visits: int) -> list[str]:
    shop = client.get("/shops").json()["data"][0]["uuid"]
    contact = client.get("/contacts").json()["data"][0]["uuid"]
    ids = []
    for n in range(visits):
        external_id = f"v-{os.urandom(4).hex()}-{n}"
        response = client.post("/visits", json={"contact_uuid": contact, "shop_uuid": shop, "external_id": external_id})
        assert response.status_code == 201, response.text
        ids.append(external_id)
    return ids


def test_serve_delivers_webhooks_by_default(database_url, tenant, receiver):
    with running_server(database_url, env=FAST) as base_url, api(base_url, tenant) as client:
        [external_id] = subscribe_and_visit(client, receiver.url("/served"))
        [received] = receiver.wait_for("/served", 1)
        assert json.loads(received.body)["data"]["external_id"] == external_id


def test_serve_with_no_worker_does_not_deliver_and_a_worker_does(database_url, tenant, receiver):
    with running_server(database_url, "--no-worker", env=FAST) as base_url, api(base_url, tenant) as client:
        subscribe_and_visit(client, receiver.url("/apart"))
        time.sleep(1.5)
        assert receiver.on("/apart") == []
        worker = start_worker(database_url, env=FAST)
        try:
            receiver.wait_for("/apart", 1)
        finally:
            stop(worker)


def test_two_workers_share_the_work_without_sending_twice(database_url, tenant, receiver):
    with running_server(database_url, "--no-worker", env=FAST) as base_url, api(base_url, tenant) as client:
        paths = [f"/shared-{n}" for n in range(4)]
        for path in paths:
            subscribe(client, receiver.url(path))
        ids = create_visits(client, 12)
        expected = {path: ids for path in paths}
        # A few failures on the way, so workers also pass retries between them.
        receiver.script("/shared-0", Reply(500))
        receiver.script("/shared-2", Reply(503))
        workers = [start_worker(database_url, env=FAST) for _ in range(2)]
        try:
            for path, ids in expected.items():
                receiver.wait_for(path, len(ids) + (1 if path in ("/shared-0", "/shared-2") else 0))
            time.sleep(1)  # room for a double send to show
        finally:
            for worker in workers:
                stop(worker)
    for path, ids in expected.items():
        sent = [json.loads(r.body)["data"]["external_id"] for r in receiver.on(path)]
        deduplicated = [i for n, i in enumerate(sent) if n == 0 or sent[n - 1] != i]
        assert deduplicated == ids, path  # every event, in order
        assert len(sent) == len(ids) + (1 if path in ("/shared-0", "/shared-2") else 0)  # once each, but the failed try


def test_a_worker_killed_mid_delivery_loses_nothing(database_url, tenant, receiver):
    env = {**FAST, "FOOTFALL_WEBHOOK_TIMEOUT": "2"}  # so the lease (timeout + 5 s) lapses quickly
    with running_server(database_url, "--no-worker", env=FAST) as base_url, api(base_url, tenant) as client:
        receiver.script("/killed", Reply(delay=1.5))  # the first attempt is in flight when the worker dies
        ids = subscribe_and_visit(client, receiver.url("/killed"), visits=3)
        first = start_worker(database_url, env=env)
        deadline = time.monotonic() + 30
        while not receiver.on("/killed") and time.monotonic() < deadline:
            time.sleep(0.05)
            if receiver._script.get("/killed") == []:  # the held request has been taken
                break
        time.sleep(0.3)
        first.kill()  # SIGKILL, mid-delivery
        first.wait()
        second = start_worker(database_url, env=env)
        try:
            received = receiver.wait_for("/killed", 4, timeout=60)
        finally:
            stop(second)
        subscription = client.get("/webhook-subscriptions").json()["data"][0]
        deliveries = client.get(f"/webhook-subscriptions/{subscription['uuid']}/deliveries").json()["data"]
    sent = [json.loads(r.body)["data"]["external_id"] for r in received]
    assert sent == [ids[0], ids[0], ids[1], ids[2]]  # the killed attempt is sent again, then the rest in order
    assert [d["state"] for d in deliveries] == ["succeeded"] * 3


def test_sigterm_lets_the_delivery_in_flight_finish(database_url, tenant, receiver):
    with running_server(database_url, "--no-worker", env=FAST) as base_url, api(base_url, tenant) as client:
        receiver.script("/graceful", Reply(delay=2))
        subscribe_and_visit(client, receiver.url("/graceful"))
        worker = start_worker(database_url, env=FAST)
        deadline = time.monotonic() + 30
        while receiver._script.get("/graceful") != [] and time.monotonic() < deadline:
            time.sleep(0.05)
        output = stop(worker, signal.SIGTERM)
        assert worker.returncode == 0, output
        assert len(receiver.on("/graceful")) == 1
        subscription = client.get("/webhook-subscriptions").json()["data"][0]
        [delivery] = client.get(f"/webhook-subscriptions/{subscription['uuid']}/deliveries").json()["data"]
    assert delivery["state"] == "succeeded"
