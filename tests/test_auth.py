"""Every route is behind a bearer token, and an account sees only its own rows."""

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from footfall.accounts import service as accounts
from footfall.kit.time import utcnow
from tests.conftest import make_tenant
from tests.routes import PLACEHOLDERS, ROUTES, request_for, route_id

UNAUTHENTICATED = {"status_code": 401, "code": 90401, "message": "Unauthenticated."}


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer ffpat_unknown", b"Bearer \xe9\xe9",
     b"Bearer \x00"],
)
async def test_every_route_refuses_a_missing_or_bad_token(client, route, authorization):
    method, path, json = request_for(route, {name: str(uuid4()) for name in PLACEHOLDERS})
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.request(method, path, json=json, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_token_is_refused_on_its_next_request(client, app, tenant):
    assert (await client.get("/visits", headers=tenant.headers)).status_code == 200
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        issued = await accounts.issue_token(tx, account)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert (await client.get("/visits", headers=headers)).status_code == 200
    async with app.state.database.transaction(write=True) as tx:
        await accounts.revoke_token(tx, issued.token.uuid)
    response = await client.get("/visits", headers=headers)
    assert response.status_code == 401 and response.json() == UNAUTHENTICATED
    # The account's other token still works.
    assert (await client.get("/visits", headers=tenant.headers)).status_code == 200


async def test_an_expired_token_is_refused(client, app, tenant):
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        expired = await accounts.issue_token(tx, account, expires_at=utcnow() - timedelta(seconds=1))
        valid = await accounts.issue_token(tx, account, expires_at=utcnow() + timedelta(hours=1))
    response = await client.get("/visits", headers={"Authorization": f"Bearer {expired.secret}"})
    assert response.status_code == 401 and response.json() == UNAUTHENTICATED
    assert (await client.get("/visits", headers={"Authorization": f"Bearer {valid.secret}"})).status_code == 200


async def test_the_scheme_is_case_insensitive(client, tenant):
    response = await client.get("/visits", headers={"Authorization": f"bearer {tenant.token}"})
    assert response.status_code == 200


async def test_another_accounts_rows_are_indistinguishable_from_missing_ones(client, app, tenant):
    other = await make_tenant(app)
    visit = (
        await client.post(
            "/visits",
            json={"contact_uuid": other.contact_uuid, "shop_uuid": other.shop_uuid, "external_id": "theirs"},
            headers=other.headers,
        )
    ).json()["data"]
    for path, missing_path in [
        (f"/visits/{visit['uuid']}", f"/visits/{uuid4()}"),
        (f"/shops/{other.shop_uuid}", f"/shops/{uuid4()}"),
        (f"/contacts/{other.contact_uuid}", f"/contacts/{uuid4()}"),
    ]:
        foreign = await client.get(path, headers=tenant.headers)
        missing = await client.get(missing_path, headers=tenant.headers)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json() == missing.json()
    update = await client.put(f"/visits/{visit['uuid']}", json={"source": "x"}, headers=tenant.headers)
    assert update.status_code == 404 and update.json()["code"] == 91001
    # Creating a visit with another account's contact or shop is refused as if they did not exist.
    response = await client.post(
        "/visits", json={"contact_uuid": other.contact_uuid, "shop_uuid": tenant.shop_uuid}, headers=tenant.headers
    )
    assert response.status_code == 404 and response.json()["code"] == 55031
    response = await client.post(
        "/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": other.shop_uuid}, headers=tenant.headers
    )
    assert response.status_code == 404 and response.json()["code"] == 1008
    # Lists and filters show nothing of the other account.
    assert (await client.get("/visits", headers=tenant.headers)).json()["meta"]["total"] == 0
    filtered = await client.get("/visits", params={"contact_uuid": other.contact_uuid}, headers=tenant.headers)
    assert filtered.json()["data"] == [] and filtered.json()["meta"]["total"] == 0
    shops = (await client.get("/shops", headers=tenant.headers)).json()["data"]
    assert [s["uuid"] for s in shops] == [tenant.shop_uuid]
    contacts = (await client.get("/contacts", headers=tenant.headers)).json()["data"]
    assert [c["uuid"] for c in contacts] == [tenant.contact_uuid]
    # The other account's visit is untouched.
    assert (await client.get(f"/visits/{visit['uuid']}", headers=other.headers)).json()["data"] == visit


async def _issue(app, tenant, **options):
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        return await accounts.issue_token(tx, account, **options)


async def test_a_read_only_token_reads_and_is_refused_every_write(client, app, tenant):
    issued = await _issue(app, tenant, read_only=True)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    visit = (
        await client.post(
            "/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid}, headers=tenant.headers
        )
    ).json()["data"]
    for path in ("/visits", f"/visits/{visit['uuid']}", "/shops", "/contacts", "/webhook-subscriptions",
                 f"/contacts/find-one-by?email={tenant.contact_email}"):
        assert (await client.get(path, headers=headers)).status_code == 200, path
    writes = [
        ("GET", "/contacts/find-or-create?email=ro@x.sea", None),  # a GET that can write
        ("POST", "/visits/batch", {"visits": [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid}]}),
        ("POST", "/visits", {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid}),
        ("PUT", f"/visits/{visit['uuid']}", {"source": "x"}),
        ("POST", "/contacts", {"email": "ro@x.sea"}),
        ("POST", "/webhook-subscriptions", {"name": "n", "event_type": "visit_created", "url": "http://127.0.0.1/"}),
        ("DELETE", f"/webhook-subscriptions/{uuid4()}", None),
    ]
    for method, path, body in writes:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json() == {"status_code": 403, "code": 90403, "message": "This token is read-only."}
    assert (await client.get(f"/visits/{visit['uuid']}", headers=headers)).json()["data"] == visit


async def test_last_used_at_is_recorded(client, app, tenant):
    issued = await _issue(app, tenant, name="till")
    assert issued.token.last_used_at is None
    before = utcnow().replace(microsecond=0)
    await client.get("/shops", headers={"Authorization": f"Bearer {issued.secret}"})
    async with app.state.database.transaction(write=False) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        [token] = [t for t in await accounts.list_tokens(tx, account) if t.uuid == issued.token.uuid]
    assert token.last_used_at is not None and token.last_used_at >= before - timedelta(seconds=1)


async def test_a_revocation_reaches_a_process_with_a_token_cache_within_its_ttl(database_url):
    import asyncio

    import httpx

    from footfall.app import API_PREFIX, create_app
    from footfall.config import Settings
    from footfall.db import migrate

    app = create_app(Settings(database_url=database_url, webhook_worker=False, token_cache_seconds=0.5))
    await migrate(app.state.settings.database_url)
    tenant = await make_tenant(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://footfall.test{API_PREFIX}") as client:
        issued = await _issue(app, tenant)
        headers = {"Authorization": f"Bearer {issued.secret}"}
        assert (await client.get("/shops", headers=headers)).status_code == 200
        async with app.state.database.transaction(write=True) as tx:
            await accounts.revoke_token(tx, issued.token.uuid)
        await asyncio.sleep(0.6)
        assert (await client.get("/shops", headers=headers)).status_code == 401
    await app.state.database.close()
