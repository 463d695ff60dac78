"""Delivery: signed two ways, retried on schedule, in order, never lost. A real receiver on 127.0.0.1."""

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from standardwebhooks import Webhook

from footfall.accounts.service import get_account
from footfall.config import Settings
from footfall.testing.receiver import Reply
from footfall.visits import service as visits
from footfall.visits.schemas import VisitCreate
from footfall.webhooks.delivery import DeliveryWorker


def worker_for(app, **settings) -> DeliveryWorker:
    base = {"database_url": "unused", "webhook_allow_private_urls": True, "webhook_retry_schedule": [0, 0, 0]}
    return DeliveryWorker(app.state.database, Settings(**{**base, **settings}))


async def subscribe(client, tenant, url, event_type="visit_created", **fields):
    response = await client.post(
        "/webhook-subscriptions",
        json={"name": "hook", "event_type": event_type, "url": url, **fields},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def create_visit(client, tenant, **fields):
    response = await client.post(
        "/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **fields},
        headers=tenant.headers,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["data"]


async def deliveries(client, tenant, subscription):
    response = await client.get(f"/webhook-subscriptions/{subscription['uuid']}/deliveries", headers=tenant.headers)
    assert response.status_code == 200
    return response.json()["data"]


async def drain(worker, rounds=10):
    for _ in range(rounds):
        if await worker.run_once() == 0:
            return
    

async def test_a_visit_created_arrives_signed_both_ways_with_the_visit_as_get_answers_it(app, client, tenant, receiver):
    subscription = await subscribe(client, tenant, receiver.url("/signed"))
    visit = await create_visit(client, tenant, external_id="sig-1", source="Kiosk")
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    [received] = receiver.wait_for("/signed", 1)
    event = Webhook(subscription["secret"]).verify(received.body, received.headers)  # the library's own verifier
    shown = (await client.get(f"/visits/{visit['uuid']}", headers=tenant.headers)).json()["data"]
    assert event["type"] == "visit_created" and event["data"] == shown
    assert received.headers["webhook-id"] == event["id"]
    assert datetime.fromisoformat(event["created_at"]).utcoffset() == timedelta(0)
    expected = hmac.new(subscription["secret"].encode(), received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers["signature"], expected)
    assert received.headers["content-type"] == "application/json"
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["state"] == "succeeded" and delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["event_id"] == event["id"] and delivery["event_type"] == "visit_created"
    assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is not None
    assert delivery["uuid"] == delivery["id"]  # named as every resource is; id kept for older clients


async def test_a_plain_secret_signs_with_its_own_bytes(app, client, tenant, receiver):
    subscription = await subscribe(client, tenant, receiver.url("/plain"), secret="leat-receiver-secret")
    await create_visit(client, tenant)
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    [received] = receiver.wait_for("/plain", 1)
    assert Webhook(b"leat-receiver-secret").verify(received.body, received.headers)["type"] == "visit_created"
    expected = hmac.new(b"leat-receiver-secret", received.body, hashlib.sha256).hexdigest()
    assert received.headers["signature"] == expected
    assert subscription["secret"] == "leat-receiver-secret"


async def test_updates_and_new_contacts_are_events_too(app, client, tenant, receiver):
    await subscribe(client, tenant, receiver.url("/updated"), event_type="visit_updated")
    await subscribe(client, tenant, receiver.url("/contacts"), event_type="contact_created")
    visit = await create_visit(client, tenant, source="Kiosk")
    updated = (await client.put(f"/visits/{visit['uuid']}", json={"source": "Web"}, headers=tenant.headers)).json()
    await client.put(f"/visits/{visit['uuid']}", json={}, headers=tenant.headers)  # no change, no event
    contact = (await client.post("/contacts", json={"email": "new@x.sea"}, headers=tenant.headers)).json()
    await client.post("/contacts", json={"email": "new@x.sea"}, headers=tenant.headers)  # exists: no event
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    [update_event] = [json.loads(r.body) for r in receiver.wait_for("/updated", 1)]
    assert update_event["type"] == "visit_updated" and update_event["data"] == updated["data"]
    [contact_event] = [json.loads(r.body) for r in receiver.wait_for("/contacts", 1)]
    assert contact_event["type"] == "contact_created" and contact_event["data"] == contact["data"]


async def test_events_go_only_to_active_subscriptions_of_the_account_and_type(app, client, tenant, other_tenant,
                                                                               receiver):
    await subscribe(client, other_tenant, receiver.url("/other-account"))
    await subscribe(client, tenant, receiver.url("/other-type"), event_type="visit_updated")
    inactive = await subscribe(client, tenant, receiver.url("/inactive"))
    await client.put(f"/webhook-subscriptions/{inactive['uuid']}", json={"status": "INACTIVE"}, headers=tenant.headers)
    await create_visit(client, tenant)
    # A retry by external_id is not a new visit, so not a new event.
    mine = await subscribe(client, tenant, receiver.url("/mine"))
    await create_visit(client, tenant, external_id="once")
    await create_visit(client, tenant, external_id="once")
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    assert len(receiver.wait_for("/mine", 1)) == 1
    assert receiver.on("/other-account") == receiver.on("/other-type") == receiver.on("/inactive") == []
    assert len(await deliveries(client, tenant, mine)) == 1


async def test_failures_are_retried_on_schedule_until_a_2xx(app, client, tenant, receiver):
    receiver.script(
        "/flaky",
        Reply(500),
        Reply(302, headers={"Location": receiver.url("/elsewhere")}),  # a redirect is a failure, not followed
        Reply(404),
    )
    subscription = await subscribe(client, tenant, receiver.url("/flaky"))
    await create_visit(client, tenant)
    worker = worker_for(app, webhook_retry_schedule=[0, 0, 0, 0, 0])
    await drain(worker)
    await worker.close()
    assert len(receiver.wait_for("/flaky", 4)) == 4
    assert receiver.on("/elsewhere") == []
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["state"] == "succeeded" and delivery["attempts"] == 4 and delivery["last_status_code"] == 200
    ids = {r.headers["webhook-id"] for r in receiver.on("/flaky")}
    assert len(ids) == 1  # every attempt is the same message


async def test_the_schedule_spaces_attempts_and_retry_after_is_honoured(app, client, tenant, receiver):
    receiver.script("/later", Reply(503, headers={"Retry-After": "120"}))
    subscription = await subscribe(client, tenant, receiver.url("/later"))
    await create_visit(client, tenant)
    worker = worker_for(app, webhook_retry_schedule=[0, 5, 3600])
    before = datetime.now().astimezone()
    await drain(worker)
    await worker.close()
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["state"] == "pending" and delivery["attempts"] == 1 and delivery["last_status_code"] == 503
    wait = (datetime.fromisoformat(delivery["next_attempt_at"]) - before).total_seconds()
    assert 110 <= wait <= 130  # Retry-After (120 s) beats the schedule's 5 s
    assert len(receiver.on("/later")) == 1  # not due yet: nothing more was sent


async def test_timeouts_and_connection_errors_are_failures(app, client, tenant, receiver):
    receiver.script("/slow", Reply(delay=2))
    slow = await subscribe(client, tenant, receiver.url("/slow"))
    closed = await subscribe(client, tenant, "http://127.0.0.1:9/closed")
    await create_visit(client, tenant)
    worker = worker_for(app, webhook_timeout=0.5, webhook_retry_schedule=[0, 3600])
    await drain(worker)
    await worker.close()
    [slow_delivery] = await deliveries(client, tenant, slow)
    assert slow_delivery["state"] == "pending" and "timeout" in slow_delivery["last_error"]
    assert slow_delivery["last_status_code"] is None
    [closed_delivery] = await deliveries(client, tenant, closed)
    assert closed_delivery["state"] == "pending" and closed_delivery["last_error"].startswith("ConnectError")


async def test_only_a_few_kb_of_the_answer_are_kept(app, client, tenant, receiver):
    receiver.script("/chatty", Reply(body=b"x" * 200_000))
    subscription = await subscribe(client, tenant, receiver.url("/chatty"))
    await create_visit(client, tenant)
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["state"] == "succeeded" and len(delivery["last_response_body"]) == 4096


async def test_a_used_up_schedule_fails_the_delivery_and_enough_failures_deactivate(app, client, tenant, receiver):
    receiver.script("/down", *[Reply(500)] * 4)
    subscription = await subscribe(client, tenant, receiver.url("/down"))
    await create_visit(client, tenant, external_id="f-1")
    await create_visit(client, tenant, external_id="f-2")
    await create_visit(client, tenant, external_id="f-3")
    worker = worker_for(app, webhook_retry_schedule=[0, 0], webhook_max_consecutive_failures=2)
    await drain(worker)
    states = [d["state"] for d in await deliveries(client, tenant, subscription)]
    assert states == ["pending", "failed", "failed"]  # newest first; the third waits, its subscription off
    shown = (await client.get(f"/webhook-subscriptions/{subscription['uuid']}", headers=tenant.headers)).json()
    assert shown["data"]["status"] == "INACTIVE"
    assert len(receiver.on("/down")) == 4
    # Active again: the pending delivery resumes, now answered 200.
    await client.put(f"/webhook-subscriptions/{subscription['uuid']}", json={"status": "ACTIVE"},
                     headers=tenant.headers)
    await drain(worker)
    states = [d["state"] for d in await deliveries(client, tenant, subscription)]
    assert states == ["succeeded", "failed", "failed"]
    # A failed delivery can be sent again by hand.
    failed = (await deliveries(client, tenant, subscription))[-1]
    retried = await client.post(
        f"/webhook-subscriptions/{subscription['uuid']}/deliveries/{failed['id']}/retry", headers=tenant.headers
    )
    assert retried.status_code == 200 and retried.json()["data"]["state"] == "pending"
    await drain(worker)
    await worker.close()
    assert (await deliveries(client, tenant, subscription))[-1]["state"] == "succeeded"
    sent = [json.loads(r.body)["data"]["external_id"] for r in receiver.on("/down")]
    assert sent == ["f-1", "f-1", "f-2", "f-2", "f-3", "f-1"]


async def test_a_410_deactivates_the_subscription(app, client, tenant, receiver):
    receiver.script("/gone", Reply(410))
    subscription = await subscribe(client, tenant, receiver.url("/gone"))
    await create_visit(client, tenant)
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    shown = (await client.get(f"/webhook-subscriptions/{subscription['uuid']}", headers=tenant.headers)).json()
    assert shown["data"]["status"] == "INACTIVE"
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["last_status_code"] == 410 and delivery["state"] == "pending"


async def test_one_subscriptions_events_go_out_in_order(app, client, tenant, receiver):
    receiver.script("/ordered", Reply(500), Reply(500))
    await subscribe(client, tenant, receiver.url("/ordered"))
    for n in range(6):
        await create_visit(client, tenant, external_id=f"o-{n}")
    worker = worker_for(app, webhook_retry_schedule=[0, 0, 0, 0])
    await drain(worker, rounds=20)
    await worker.close()
    sent = [json.loads(r.body)["data"]["external_id"] for r in receiver.on("/ordered")]
    assert sent == ["o-0", "o-0", "o-0", "o-1", "o-2", "o-3", "o-4", "o-5"]


async def test_private_addresses_are_refused_at_delivery_time_too(app, client, tenant, receiver):
    subscription = await subscribe(client, tenant, receiver.url("/private"))
    await create_visit(client, tenant)
    worker = worker_for(app, webhook_allow_private_urls=False, webhook_retry_schedule=[0, 3600])
    await drain(worker)
    await worker.close()
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["state"] == "pending" and delivery["last_error"].startswith("refused")
    assert receiver.on("/private") == []


async def test_the_outbox_commits_and_rolls_back_with_the_visit(app, client, tenant, receiver):
    subscription = await subscribe(client, tenant, receiver.url("/outbox"))

    async def events() -> int:
        return len(await deliveries(client, tenant, subscription))

    data = VisitCreate(contact_uuid=tenant.contact_uuid, shop_uuid=tenant.shop_uuid, external_id="outbox-1")
    with pytest.raises(RuntimeError):
        async with app.state.database.transaction(write=True) as tx:
            account = await get_account(tx, UUID(tenant.account_uuid))
            await visits.create(tx, account, data)
            raise RuntimeError("the transaction fails after the visit was written")
    assert await events() == 0
    assert (await client.get("/visits", headers=tenant.headers)).json()["meta"]["total"] == 0
    await create_visit(client, tenant, external_id="outbox-1")
    assert await events() == 1


async def test_a_deleted_visit_sends_visit_deleted_with_its_tombstone(app, client, tenant, receiver):
    await subscribe(client, tenant, receiver.url("/deleted"), event_type="visit_deleted")
    visit = await create_visit(client, tenant, external_id="gone/é")
    assert (await client.delete(f"/visits/{visit['uuid']}", headers=tenant.headers)).status_code == 200
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    [event] = [json.loads(r.body) for r in receiver.wait_for("/deleted", 1)]
    assert event["type"] == "visit_deleted"
    assert set(event["data"]) == {"uuid", "external_id", "deleted_at"}
    assert event["data"]["uuid"] == visit["uuid"] and event["data"]["external_id"] == "gone/é"
    feed = (await client.get("/visits/changes", headers=tenant.headers)).json()["data"]
    assert feed == [event["data"]]
