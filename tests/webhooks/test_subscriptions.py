"""The webhook-subscriptions API, in Leat's shape."""

from uuid import uuid4

import httpx
import pytest

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
from tests.conftest import make_tenant

KEYS = {"uuid", "name", "event_type", "url", "status", "version", "created_at"}
URL = "https://hooks.example.com/footfall"


async def subscribe(client, tenant, **fields):
    body = {"name": "Stamp cards", "event_type": "visit_created", "url": URL, **fields}
    return await client.post("/webhook-subscriptions", json=body, headers=tenant.headers)


async def test_create_generates_a_secret_shown_once(client, tenant):
    response = await subscribe(client, tenant)
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert set(created) == KEYS | {"secret"} and response.json()["meta"] == []
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert (created["status"], created["version"], created["event_type"]) == ("ACTIVE", "V1", "visit_created")
    shown = (await client.get(f"/webhook-subscriptions/{created['uuid']}", headers=tenant.headers)).json()
    assert shown == {"data": {k: v for k, v in created.items() if k != "secret"}, "meta": []}


async def test_create_keeps_a_given_secret(client, tenant):
    response = await subscribe(client, tenant, secret="my-leat-receiver-secret")
    assert response.status_code == 201 and response.json()["data"]["secret"] == "my-leat-receiver-secret"
    response = await client.post(
        "/webhook-subscriptions",
        data={"name": "Form", "event_type": "contact_created", "url": URL},
        headers=tenant.headers,
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"event_type": "voucher_created"}, "event_type"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://user:pw@example.com/"}, "url"),
        ({"url": "https://example.com:99999/"}, "url"),
        ({"url": "https://example.com/" + "x" * 3000}, "url"),
        ({"secret": "whsec_not base64!"}, "secret"),
        ({"secret": "whsec_c2hvcnQ="}, "secret"),
        ({"secret": "a\x00b"}, "secret"),
    ],
)
async def test_create_refuses_bad_fields(client, tenant, fields, bad):
    response = await subscribe(client, tenant, **fields)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == [bad]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://no-such-host.invalid/hook",
    ],
)
async def test_non_public_urls_are_refused_unless_allowed(database_url, url):
    from footfall.db import migrate

    app = create_app(Settings(database_url=database_url, webhook_worker=False))
    await migrate(app.state.settings.database_url)
    tenant = await make_tenant(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://footfall.test{API_PREFIX}") as client:
        response = await subscribe(client, tenant, url=url)
        assert response.status_code == 422 and list(response.json()["errors"]) == ["url"]
        allowed = await subscribe(client, tenant, url="http://93.184.216.34/hook")  # a public address
        assert allowed.status_code == 201
        update = await client.put(
            f"/webhook-subscriptions/{allowed.json()['data']['uuid']}", json={"url": url}, headers=tenant.headers
        )
        assert update.status_code == 422 and list(update.json()["errors"]) == ["url"]
    await app.state.database.close()


async def test_update_changes_name_url_and_status(client, tenant):
    created = (await subscribe(client, tenant)).json()["data"]
    response = await client.put(
        f"/webhook-subscriptions/{created['uuid']}",
        json={"name": "Renamed", "url": "https://other.example.com/x", "status": "INACTIVE"},
        headers=tenant.headers,
    )
    assert response.status_code == 200
    updated = response.json()["data"]
    assert set(updated) == KEYS
    assert (updated["name"], updated["url"], updated["status"]) == ("Renamed", "https://other.example.com/x",
                                                                    "INACTIVE")
    assert updated["event_type"] == created["event_type"] and updated["created_at"] == created["created_at"]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"event_type": "contact_created"}, "event_type"),
        ({"secret": "whsec_abc"}, "secret"),
        ({"status": "PAUSED"}, "status"),
        ({"name": None}, "name"),
        ({"url": None}, "url"),
    ],
)
async def test_update_refuses_bad_or_unchangeable_fields(client, tenant, fields, bad):
    created = (await subscribe(client, tenant)).json()["data"]
    response = await client.put(f"/webhook-subscriptions/{created['uuid']}", json=fields, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == [bad]


async def test_delete_answers_empty_data_and_meta(client, tenant):
    created = (await subscribe(client, tenant)).json()["data"]
    response = await client.delete(f"/webhook-subscriptions/{created['uuid']}", headers=tenant.headers)
    assert response.status_code == 200 and response.json() == {"data": [], "meta": []}
    missing = await client.get(f"/webhook-subscriptions/{created['uuid']}", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.json() == {"status_code": 404, "code": 80300, "message": "Webhook subscription not found."}


async def test_list_filters_and_pages(client, tenant):
    visit_hook = (await subscribe(client, tenant)).json()["data"]
    contact_hook = (await subscribe(client, tenant, event_type="contact_created")).json()["data"]
    await client.put(f"/webhook-subscriptions/{contact_hook['uuid']}", json={"status": "INACTIVE"},
                     headers=tenant.headers)
    everything = (await client.get("/webhook-subscriptions", headers=tenant.headers)).json()
    assert [s["uuid"] for s in everything["data"]] == [contact_hook["uuid"], visit_hook["uuid"]]
    assert everything["meta"] == {"current_page": 1, "last_page": 1, "per_page": 30, "total": 2}
    by_type = (
        await client.get("/webhook-subscriptions", params={"event_type": "visit_created"}, headers=tenant.headers)
    ).json()
    assert [s["uuid"] for s in by_type["data"]] == [visit_hook["uuid"]]
    inactive = (await client.get("/webhook-subscriptions", params={"status": "INACTIVE"},
                                 headers=tenant.headers)).json()
    assert [s["uuid"] for s in inactive["data"]] == [contact_hook["uuid"]]
    paged = (await client.get("/webhook-subscriptions", params={"limit": 1, "page": 2}, headers=tenant.headers)).json()
    assert [s["uuid"] for s in paged["data"]] == [visit_hook["uuid"]] and paged["meta"]["last_page"] == 2
    for params in ({"event_type": "nope"}, {"status": "active"}, {"limit": 101}):
        response = await client.get("/webhook-subscriptions", params=params, headers=tenant.headers)
        assert response.status_code == 422 and response.json()["code"] == 1003


async def test_another_accounts_subscription_is_not_found(client, app, tenant):
    other = await make_tenant(app)
    theirs = (await subscribe(client, other)).json()["data"]
    for method, path, body in [
        ("GET", f"/webhook-subscriptions/{theirs['uuid']}", None),
        ("PUT", f"/webhook-subscriptions/{theirs['uuid']}", {"name": "mine now"}),
        ("DELETE", f"/webhook-subscriptions/{theirs['uuid']}", None),
        ("GET", f"/webhook-subscriptions/{theirs['uuid']}/deliveries", None),
        ("POST", f"/webhook-subscriptions/{theirs['uuid']}/deliveries/{uuid4()}/retry", None),
        ("GET", f"/webhook-subscriptions/{uuid4()}", None),
    ]:
        response = await client.request(method, path, json=body, headers=tenant.headers)
        assert response.status_code == 404 and response.json()["code"] == 80300, (method, path)
    assert (await client.get("/webhook-subscriptions", headers=tenant.headers)).json()["meta"]["total"] == 0
    still = await client.get(f"/webhook-subscriptions/{theirs['uuid']}", headers=other.headers)
    assert still.json()["data"]["name"] == theirs["name"]


async def test_retry_of_an_unknown_delivery_is_not_found(client, tenant):
    created = (await subscribe(client, tenant)).json()["data"]
    response = await client.post(
        f"/webhook-subscriptions/{created['uuid']}/deliveries/{uuid4()}/retry", headers=tenant.headers
    )
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": 91101, "message": "Webhook delivery not found."}
