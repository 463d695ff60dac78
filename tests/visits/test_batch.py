"""POST /visits/batch: each item created, answered as a retry, or refused in its place."""

import json
from uuid import uuid4

import pytest

from footfall.testing.receiver import Receiver
from tests.webhooks.test_delivery import drain, subscribe, worker_for


async def batch(client, tenant, visits, **headers):
    return await client.post("/visits/batch", json={"visits": visits}, headers={**tenant.headers, **headers})


def item(tenant, **fields):
    return {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **fields}


async def test_each_item_is_created_retried_or_refused_in_its_place(client, tenant):
    stored = (await client.post("/visits", json=item(tenant, external_id="b-1", source="Kiosk"),
                                headers=tenant.headers)).json()["data"]
    response = await batch(client, tenant, [
        item(tenant, external_id="b-new", source="Web/app", starts_at="2024-05-01 19:00"),  # new
        item(tenant, external_id="b-1", source="Kiosk"),  # a retry of the stored visit
        item(tenant, external_id="b-1", source="Till"),  # the same external_id, another visit
        {"contact_uuid": tenant.contact_uuid, "shop_uuid": str(uuid4())},  # no such shop
        {"contact_uuid": str(uuid4()), "shop_uuid": tenant.shop_uuid},  # no such contact
        item(tenant, starts_at="not a time"),  # bad input
        item(tenant, external_id="b-new", source="Web/app"),  # an earlier item's visit, again
        "not an object",
    ])
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(o["index"], o["status"]) for o in body["data"]] == [
        (0, 201), (1, 200), (2, 409), (3, 404), (4, 404), (5, 422), (6, 200), (7, 422)]
    assert body["meta"] == {"created": 1, "retried": 2, "failed": 5}
    new = body["data"][0]["data"]
    assert new["external_id"] == "b-new" and new["starts_at"] == "2024-05-01T19:00:00+00:00"
    assert (await client.get(f"/visits/{new['uuid']}", headers=tenant.headers)).json()["data"] == new
    assert body["data"][1]["data"] == stored and body["data"][6]["data"] == new
    assert body["data"][2]["error"] == {"status_code": 409, "code": 91002,
                                        "message": "A different visit with this external_id exists."}
    assert body["data"][3]["error"]["code"] == 1008 and body["data"][4]["error"]["code"] == 55031
    assert body["data"][5]["error"]["code"] == 1003 and list(body["data"][5]["error"]["errors"]) == ["starts_at"]
    assert all(o["data"] is None for o in body["data"][2:6])
    listed = (await client.get("/visits", headers=tenant.headers)).json()["meta"]["total"]
    assert listed == 2  # the stored one and the one new visit


async def test_a_contact_named_by_email_is_found_or_created_as_post_contacts_does(client, tenant):
    email = f"{uuid4().hex}@bikinibottom.sea"
    response = await batch(client, tenant, [
        {"contact_email": email.upper(), "business_profile_uuid": tenant.shop_uuid, "external_id": "e-1"},
        {"contact_email": email, "shop_uuid": tenant.shop_uuid},
        {"contact_email": tenant.contact_email, "shop_uuid": tenant.shop_uuid},
    ])
    outcomes = response.json()["data"]
    assert [o["status"] for o in outcomes] == [201, 201, 201]
    assert outcomes[0]["data"]["contact"] == outcomes[1]["data"]["contact"]
    assert outcomes[0]["data"]["contact"]["email"] == email
    assert outcomes[2]["data"]["contact"] == {"uuid": tenant.contact_uuid, "email": tenant.contact_email}
    contacts = (await client.get("/contacts", headers=tenant.headers)).json()["data"]
    assert [c["email"] for c in contacts].count(email) == 1


async def test_an_item_without_its_contact_or_shop_is_1003_on_the_field(client, tenant):
    response = await batch(client, tenant, [
        {"shop_uuid": tenant.shop_uuid},
        {"contact_uuid": tenant.contact_uuid, "contact_email": "x@y.sea", "shop_uuid": tenant.shop_uuid},
        {"contact_uuid": tenant.contact_uuid},
    ])
    errors = [o["error"]["errors"] for o in response.json()["data"]]
    assert (list(errors[0]) == ["contact_uuid"] and list(errors[1]) == ["contact_uuid"]
            and list(errors[2]) == ["shop_uuid"])


@pytest.mark.parametrize("count", [0, 1001])
async def test_a_batch_of_no_items_or_over_1000_is_1003_on_visits(client, tenant, count):
    response = await batch(client, tenant, [item(tenant)] * count)
    assert response.status_code == 422
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == ["visits"]


async def test_1000_items_go_in_and_are_counted(client, tenant):
    response = await batch(client, tenant, [item(tenant, external_id=f"k-{n}") for n in range(1000)])
    assert response.status_code == 200 and response.json()["meta"] == {"created": 1000, "retried": 0, "failed": 0}
    assert (await client.get("/visits?limit=0", headers=tenant.headers)).json()["meta"]["total"] == 1000
    assert (await client.get(f"/visits?limit=0&contact_uuid={tenant.contact_uuid}",
                             headers=tenant.headers)).json()["meta"]["total"] == 1000


async def test_an_idempotency_key_covers_the_whole_batch(client, tenant):
    key = {"Idempotency-Key": str(uuid4())}
    visits = [item(tenant), item(tenant, source="second")]
    first = await batch(client, tenant, visits, **key)
    again = await batch(client, tenant, visits, **key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert (await client.get("/visits?limit=0", headers=tenant.headers)).json()["meta"]["total"] == 2


async def test_each_created_visit_sends_its_event(app, client, tenant):
    with Receiver() as receiver:
        await subscribe(client, tenant, receiver.url("/batch"))
        response = await batch(client, tenant, [item(tenant, external_id=f"ev-{n}") for n in range(3)]
                               + [item(tenant, external_id="ev-0")])
        worker = worker_for(app)
        await drain(worker)
        await worker.close()
        events = [json.loads(r.body) for r in receiver.wait_for("/batch", 3)]
    assert [e["data"]["external_id"] for e in events] == ["ev-0", "ev-1", "ev-2"]
    assert [e["data"] for e in events] == [o["data"] for o in response.json()["data"][:3]]
