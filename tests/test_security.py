"""Every route against bad credentials and other accounts' uuids; hostile text stored intact; NUL refused."""

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from footfall.accounts import service as accounts
from footfall.kit.time import utcnow
from tests.conftest import make_tenant
from tests.routes import ROUTES, fill, request_for, route_id


@pytest.fixture
async def owned(client, tenant):
    """One of everything in the tenant's account."""
    subscription = (
        await client.post("/webhook-subscriptions", headers=tenant.headers,
                          json={"name": "n", "event_type": "visit_created", "url": "http://127.0.0.1:9/h"})
    ).json()["data"]
    visit = (
        await client.post("/visits", headers=tenant.headers,
                          json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid})
    ).json()["data"]
    delivery = (
        await client.get(f"/webhook-subscriptions/{subscription['uuid']}/deliveries", headers=tenant.headers)
    ).json()["data"][0]
    rule = (await client.post("/visit-rules", headers=tenant.headers,
                              json={"name": "n", "kind": "milestone", "every": 5})).json()["data"]
    return {"visit": visit["uuid"], "shop": tenant.shop_uuid, "contact": tenant.contact_uuid,
            "subscription": subscription["uuid"], "delivery": delivery["id"], "rule": rule["uuid"]}


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
async def test_every_route_refuses_missing_wrong_revoked_and_expired_tokens(app, client, tenant, owned, route):
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        revoked = await accounts.issue_token(tx, account)
        expired = await accounts.issue_token(tx, account, expires_at=utcnow() - timedelta(minutes=1))
    async with app.state.database.transaction(write=True) as tx:
        await accounts.revoke_token(tx, revoked.token.uuid)
    method, path, body = request_for(route, owned)
    for authorization in (None, f"Basic {tenant.token}", f"Token {tenant.token}", f"Bearer {revoked.secret}",
                          f"Bearer {expired.secret}", "Bearer ffpat_" + "A" * 43):
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (authorization, response.text)
        assert response.json() == {"status_code": 401, "code": 90401, "message": "Unauthenticated."}


UUID_ROUTES = [route for route in ROUTES if "{" in route[1] and route[1] != "/visits"]


@pytest.mark.parametrize("route", UUID_ROUTES, ids=route_id)
async def test_another_accounts_uuids_answer_exactly_as_missing_ones(app, client, owned, route):
    intruder = await make_tenant(app)
    method, path, body = request_for(route, owned)
    missing_ids = {name: str(uuid4()) for name in owned}
    # The intruder's own contact and shop where a body needs them, so only the path differs.
    body = body and {k: v.replace(owned["contact"], intruder.contact_uuid).replace(owned["shop"], intruder.shop_uuid)
                     for k, v in body.items()}
    foreign = await client.request(method, path, json=body, headers=intruder.headers)
    _, missing_path, _ = request_for(route, missing_ids)
    missing = await client.request(method, missing_path, json=body, headers=intruder.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


HOSTILE = [
    "O'Brien \"the\" <b>bold</b>",
    "'; DROP TABLE visits; --",
    "1' OR '1'='1",
    "<script>alert(1)</script>",
    "🎉 emoji ß ü 中文 \u202e",
    "back\\slash %s %(x)s {x} $1",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_text_is_stored_and_returned_intact(client, tenant, text):
    visit = await client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "external_id": text, "source": text})
    assert visit.status_code == 201, visit.text
    shown = (await client.get(f"/visits/{visit.json()['data']['uuid']}", headers=tenant.headers)).json()["data"]
    assert shown["external_id"] == text and shown["source"] == text
    updated = await client.put(f"/visits/{shown['uuid']}", json={"source": text + "!"}, headers=tenant.headers)
    assert updated.json()["data"]["source"] == text + "!"
    subscription = await client.post("/webhook-subscriptions", headers=tenant.headers,
                                     json={"name": text, "event_type": "visit_created", "url": "http://127.0.0.1/h"})
    assert subscription.status_code == 201
    shown = await client.get(f"/webhook-subscriptions/{subscription.json()['data']['uuid']}", headers=tenant.headers)
    assert shown.json()["data"]["name"] == text
    email = "".join(c for c in text if not c.isspace() and c != "@").lower()[:40] + "@bikinibottom.sea"
    contact = await client.post("/contacts", json={"email": email}, headers=tenant.headers)
    assert contact.status_code == 201, contact.text
    assert (await client.get(f"/contacts/{contact.json()['data']['uuid']}", headers=tenant.headers)).json()["data"][
        "email"] == email


NUL_FIELDS = [
    ("POST", "/visits", "external_id"),
    ("POST", "/visits", "source"),
    ("PUT", "/visits/{visit}", "external_id"),
    ("PUT", "/visits/{visit}", "source"),
    ("PUT", "/visits/{visit}", "starts_at"),
    ("POST", "/contacts", "email"),
    ("POST", "/webhook-subscriptions", "name"),
    ("POST", "/webhook-subscriptions", "url"),
    ("POST", "/webhook-subscriptions", "secret"),
    ("PUT", "/webhook-subscriptions/{subscription}", "name"),
]


@pytest.mark.parametrize(("method", "path", "field"), NUL_FIELDS)
async def test_nul_bytes_are_invalid_input_in_every_text_field(client, tenant, owned, method, path, field):
    valid = {
        "/visits": {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
        "/contacts": {"email": "nul@x.sea"},
        "/webhook-subscriptions": {"name": "n", "event_type": "visit_created", "url": "http://127.0.0.1/h"},
    }
    body = {**(valid.get(path, {}) if method == "POST" else {}), field: "bad\x00value"}
    response = await client.request(method, fill(path, owned), json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == [field]


@pytest.mark.parametrize("path", ["/visits?contact_uuid=%00", "/visits/%00", "/webhook-subscriptions?event_type=%00",
                                  "/contacts/%00"])
async def test_nul_bytes_in_paths_and_queries_are_invalid_input(client, tenant, path):
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["code"] == 1003
