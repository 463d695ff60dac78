"""Idempotency-Key on POST and PUT: a repeat replays the first answer and changes nothing."""

import asyncio
import json
from uuid import UUID, uuid4

import pytest

from footfall.accounts.service import get_account
from footfall.errors import IdempotencyKeyInProgress
from footfall.idempotency import service as idempotency


def visit_body(tenant, **fields):
    return {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **fields}


async def total_visits(client, tenant) -> int:
    return (await client.get("/visits", params={"limit": 0}, headers=tenant.headers)).json()["meta"]["total"]


async def test_a_repeat_replays_the_first_answer_and_creates_nothing(client, tenant):
    headers = {**tenant.headers, "Idempotency-Key": "k-1"}
    first = await client.post("/visits", json=visit_body(tenant, source="Kiosk"), headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # The same request again: bare or quoted key, keys in another order, or form-encoded.
    repeats = [
        await client.post("/visits", json=visit_body(tenant, source="Kiosk"), headers=headers),
        await client.post(
            "/visits", json=visit_body(tenant, source="Kiosk"), headers={**headers, "Idempotency-Key": '"k-1"'}
        ),
        await client.post(
            "/visits",
            content=f'{{"source": "Kiosk", "shop_uuid": "{tenant.shop_uuid}", '
                    f'"contact_uuid": "{tenant.contact_uuid}"}}',
            headers={**headers, "Content-Type": "application/json"},
        ),
        await client.post("/visits", data=visit_body(tenant, source="Kiosk"), headers=headers),
    ]
    for repeat in repeats:
        assert repeat.status_code == 201
        assert repeat.headers["idempotent-replayed"] == "true"
        assert repeat.json() == first.json()
    assert await total_visits(client, tenant) == 1


async def test_a_key_with_another_body_or_route_is_refused(client, tenant):
    headers = {**tenant.headers, "Idempotency-Key": "k-2"}
    created = await client.post("/visits", json=visit_body(tenant, source="Kiosk"), headers=headers)
    assert created.status_code == 201
    other_body = await client.post("/visits", json=visit_body(tenant, source="Web"), headers=headers)
    assert other_body.status_code == 422
    assert other_body.json() == {
        "status_code": 422, "code": 91201, "message": "This Idempotency-Key was used for a different request."
    }
    other_route = await client.put(
        f"/visits/{created.json()['data']['uuid']}", json={"source": "Kiosk"}, headers=headers
    )
    assert other_route.status_code == 422 and other_route.json()["code"] == 91201
    assert await total_visits(client, tenant) == 1


async def test_keys_belong_to_an_account(client, tenant, other_tenant):
    for who in (tenant, other_tenant):
        response = await client.post("/visits", json=visit_body(who),
                                     headers={**who.headers, "Idempotency-Key": "same"})
        assert response.status_code == 201 and "idempotent-replayed" not in response.headers


async def test_put_is_idempotent_too(client, tenant):
    visit = (await client.post("/visits", json=visit_body(tenant), headers=tenant.headers)).json()["data"]
    headers = {**tenant.headers, "Idempotency-Key": "put-1"}
    first = await client.put(f"/visits/{visit['uuid']}", json={"source": "A"}, headers=headers)
    await client.put(f"/visits/{visit['uuid']}", json={"source": "B"}, headers=tenant.headers)
    again = await client.put(f"/visits/{visit['uuid']}", json={"source": "A"}, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Replayed, not re-run: the later change stands.
    shown = await client.get(f"/visits/{visit['uuid']}", headers=tenant.headers)
    assert shown.json()["data"]["source"] == "B"


async def test_an_error_answer_is_not_kept_so_the_key_can_be_used_again(client, tenant):
    headers = {**tenant.headers, "Idempotency-Key": "k-3"}
    missing = await client.post("/visits", json=visit_body(tenant, contact_uuid=str(uuid4())), headers=headers)
    assert missing.status_code == 404
    invalid = await client.post("/visits", json=visit_body(tenant, starts_at="never"), headers=headers)
    assert invalid.status_code == 422 and invalid.json()["code"] == 1003
    created = await client.post("/visits", json=visit_body(tenant), headers=headers)
    assert created.status_code == 201 and "idempotent-replayed" not in created.headers


async def test_a_repeat_while_the_first_runs_is_409_until_its_lock_lapses(app, client, tenant, monkeypatch):
    body = visit_body(tenant, source="Kiosk")
    path = "/api/v3/oauth/clients/visits"
    async with app.state.database.transaction(write=False) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
    print_ = idempotency.fingerprint("POST", path, b"", json.dumps(body).encode())
    monkeypatch.setattr(app.state.settings, "idempotency_lock_seconds", 0.5)
    running = await idempotency.claim(app.state.database, app.state.settings, account, "k-4", print_)
    headers = {**tenant.headers, "Idempotency-Key": "k-4"}
    response = await client.post("/visits", json=body, headers=headers)
    assert response.status_code == 409
    assert response.json() == {
        "status_code": 409, "code": 91202, "message": "A request with this Idempotency-Key is still in progress."
    }
    await asyncio.sleep(0.6)  # the first request's owner died: its lock lapses
    response = await client.post("/visits", json=body, headers=headers)
    assert response.status_code == 201
    # The one that lost the key can no longer store an answer, so its write would roll back.
    async with app.state.database.transaction(write=True) as tx:
        with pytest.raises(IdempotencyKeyInProgress):
            await idempotency.complete(tx, running, 201, b"{}")
    assert await total_visits(client, tenant) == 1


async def test_concurrent_repeats_create_one_visit(client, tenant):
    headers = {**tenant.headers, "Idempotency-Key": "k-5"}
    responses = await asyncio.gather(
        *(client.post("/visits", json=visit_body(tenant), headers=headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409} and statuses.count(201) >= 1, [r.text for r in responses]
    created = {r.json()["data"]["uuid"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert await total_visits(client, tenant) == 1


async def test_an_expired_key_starts_over(app, client, tenant, monkeypatch):
    monkeypatch.setattr(app.state.settings, "idempotency_ttl_seconds", 0)
    headers = {**tenant.headers, "Idempotency-Key": "k-6"}
    assert (await client.post("/visits", json=visit_body(tenant, source="A"), headers=headers)).status_code == 201
    again = await client.post("/visits", json=visit_body(tenant, source="B"), headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await total_visits(client, tenant) == 2


@pytest.mark.parametrize("key", ["", '""', "x" * 256, "tab\there"])
async def test_a_malformed_key_is_invalid_input(client, tenant, key):
    response = await client.post("/visits", json=visit_body(tenant), headers={**tenant.headers, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == ["Idempotency-Key"]
    assert await total_visits(client, tenant) == 0


async def test_a_replay_emits_no_second_webhook_event(app, client, tenant):
    from footfall.testing.receiver import Receiver
    from tests.webhooks.test_delivery import deliveries, drain, subscribe, worker_for

    with Receiver() as receiver:
        subscription = await subscribe(client, tenant, receiver.url("/once"))
        headers = {**tenant.headers, "Idempotency-Key": "k-7"}
        for _ in range(3):
            await client.post("/visits", json=visit_body(tenant), headers=headers)
        worker = worker_for(app)
        await drain(worker)
        await worker.close()
        assert len(receiver.wait_for("/once", 1)) == 1
        assert len(await deliveries(client, tenant, subscription)) == 1


async def test_a_key_is_bound_to_the_query_too(client, tenant):
    contact = (await client.post("/contacts", json={"email": "query@key.sea"}, headers=tenant.headers)).json()["data"]
    headers = {**tenant.headers, "Idempotency-Key": "k-query"}
    first = await client.delete(f"/contacts/{contact['uuid']}", params={"type": "DEFAULT"}, headers=headers)
    assert first.status_code == 200
    other_query = await client.delete(f"/contacts/{contact['uuid']}", params={"type": "GDPR"}, headers=headers)
    assert other_query.status_code == 422 and other_query.json()["code"] == 91201
    assert "idempotent-replayed" not in other_query.headers
    # The same query, its parameters in another order or spelt alike, is the same request.
    for query in ("type=DEFAULT", "type=DEFAULT&", "type=%44EFAULT"):
        again = await client.delete(f"/contacts/{contact['uuid']}?{query}", headers=headers)
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true", query
    visit = {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid}
    keyed = {**tenant.headers, "Idempotency-Key": "k-query-2"}
    assert (await client.post("/visits?a=1&b=2", json=visit, headers=keyed)).status_code == 201
    assert (await client.post("/visits?b=2&a=1", json=visit, headers=keyed)).headers["idempotent-replayed"] == "true"
