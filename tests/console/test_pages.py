"""The console through HTTP, as a browser sends it: sign-in with a token kept in a session cookie,
every page, the webhook actions, read-only tokens, and forms that must come from the console."""

import re
from uuid import UUID

import httpx
import pytest

from footfall.accounts import service as accounts
from footfall.testing.tenants import Tenant
from tests.visits.test_routes import create_visit

PAGES = ["/", "/?days=90&split=shop", "/?split=source&timezone=Europe/Amsterdam", "/visits", "/contacts", "/shops",
         "/webhooks"]


@pytest.fixture
async def browser(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        yield client


async def sign_in(browser, token: str) -> httpx.Response:
    response = await browser.post("/sign-in", data={"token": token})
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    return response


def csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


async def read_only_token(app, tenant: Tenant) -> str:
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        return (await accounts.issue_token(tx, account, name="viewer", read_only=True)).secret


async def test_signed_out_pages_lead_to_the_sign_in_page(browser):
    for path in PAGES:
        response = await browser.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    page = await browser.get("/sign-in")
    assert page.status_code == 200 and 'name="token"' in page.text and 'type="password"' in page.text


async def test_sign_in_keeps_the_token_in_a_strict_session_cookie_and_never_shows_it(browser, client, tenant):
    await create_visit(client, tenant, starts_at="2024-05-01T10:00:00Z", source="Kiosk")
    signed = await sign_in(browser, tenant.token)
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"footfall_session={tenant.token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age" not in cookie and "expires" not in cookie
    for path in PAGES + [f"/contacts/{tenant.contact_uuid}", "/visits?source=Kiosk"]:
        page = await browser.get(path)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert tenant.token not in page.text
        assert "<script>" not in page.text and " on" + "click=" not in page.text  # no inline script
        assert re.findall(r'(?:src|href)="(https?:)?//', page.text) == []  # nothing from elsewhere


async def test_a_wrong_token_is_refused_on_the_sign_in_page(browser, app, tenant):
    page = await browser.post("/sign-in", data={"token": "ffpat_nope"})
    assert page.status_code == 401 and "does not work" in page.text and "set-cookie" not in page.headers
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        issued = await accounts.issue_token(tx, account, name="short-lived")
    await sign_in(browser, issued.secret)
    async with app.state.database.transaction(write=True) as tx:
        await accounts.revoke_token(tx, issued.token.uuid)
    app.state.token_cache.entries.clear()
    gone = await browser.get("/")
    assert gone.status_code == 303 and gone.headers["location"] == "/sign-in"


async def test_the_overview_counts_the_period_and_the_visits_page_filters_and_exports(browser, client, tenant):
    today = (await create_visit(client, tenant, source="Kiosk")).json()["data"]
    await create_visit(client, tenant, source="Web")
    await create_visit(client, tenant, starts_at="2020-01-01T10:00:00Z", source="Kiosk")  # before the period
    await sign_in(browser, tenant.token)
    overview = await browser.get("/")
    assert re.search(r'id="total-visits">2<', overview.text) and re.search(r'id="total-unique">1<', overview.text)
    assert re.search(r'id="total-returning">1<', overview.text)  # the contact's first visit was in 2020
    chart = re.search(r'id="visits-chart" data-chart="([^"]*)"', overview.text).group(1)
    assert "&#34;Visits&#34;" in chart or "&quot;Visits&quot;" in chart

    listed = await browser.get("/visits", params={"source": "Kiosk", "sort": "starts_at"})
    rows = re.findall(r'<a href="/visits/([0-9a-f-]{36})">', listed.text)
    assert len(rows) == 2 and rows[1] == today["uuid"]
    assert 'value="Kiosk"' in listed.text
    bad = await browser.get("/visits", params={"starts_at[gte]": "soon"})
    assert bad.status_code == 200 and "starts_at[gte]" in bad.text and "No visits." in bad.text
    unreadable = await browser.get("/visits/export", params={"contact_uuid": "nope"})
    assert unreadable.status_code == 422 and "<code>contact_uuid</code>" in unreadable.text
    exported = await browser.get("/visits/export", params={"source": "Kiosk", "format": "csv"})
    assert exported.status_code == 200 and exported.text.count("\n") == 3 and today["uuid"] in exported.text
    shown = await browser.get(f"/visits/{today['uuid']}")
    assert shown.status_code == 200 and tenant.contact_email in shown.text
    missing = await browser.get("/visits/6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92")
    assert missing.status_code == 404 and "Visit not found." in missing.text
    assert (await browser.get("/visits/not-a-uuid")).status_code == 404
    contact = await browser.get(f"/contacts/{tenant.contact_uuid}")
    assert today["uuid"] in contact.text and 'id="contact-visit-count">3<' in contact.text


async def test_webhooks_are_made_paused_resumed_retried_and_deleted_from_the_console(browser, app, tenant):
    await sign_in(browser, tenant.token)
    page = await browser.get("/webhooks")
    made = await browser.post("/webhooks", data={"csrf": csrf(page), "name": "Till", "event_type": "visit_created",
                                                "url": "http://127.0.0.1:9/hook"})
    assert made.status_code == 200, made.text
    secret = re.search(r'id="secret">(whsec_[^<]+)<', made.text).group(1)
    listing = await browser.get("/webhooks")
    assert "Till" in listing.text and secret not in listing.text
    uuid = re.search(r'href="/webhooks/([0-9a-f-]{36})"', listing.text).group(1)

    paused = await browser.post(f"/webhooks/{uuid}/status", data={"csrf": csrf(listing), "status": "INACTIVE"})
    assert paused.status_code == 303
    assert "INACTIVE" in (await browser.get("/webhooks")).text
    await browser.post(f"/webhooks/{uuid}/status", data={"csrf": csrf(listing), "status": "ACTIVE"})

    headers = {"Authorization": f"Bearer {tenant.token}"}
    api = httpx.AsyncClient(transport=browser._transport, base_url="http://footfall.test/api/v3/oauth/clients")
    await api.post("/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
                   headers=headers)
    log = await browser.get(f"/webhooks/{uuid}")
    delivery = re.search(r'data-delivery="([0-9a-f-]{36})"', log.text).group(1)
    assert re.search(r'class="state">pending<', log.text)
    retried = await browser.post(f"/webhooks/{uuid}/deliveries/{delivery}/retry", data={"csrf": csrf(log)})
    assert retried.status_code == 303 and retried.headers["location"] == f"/webhooks/{uuid}"

    deleted = await browser.post(f"/webhooks/{uuid}/delete", data={"csrf": csrf(listing)})
    assert deleted.status_code == 303 and "Till" not in (await browser.get("/webhooks")).text
    gone = await browser.get(f"/webhooks/{uuid}")
    assert gone.status_code == 404 and "Webhook subscription not found." in gone.text


async def test_forms_from_elsewhere_are_refused(browser, tenant):
    await sign_in(browser, tenant.token)
    page = await browser.get("/webhooks")
    invalid = await browser.post("/webhooks", data={"csrf": csrf(page), "name": "", "event_type": "visit_created",
                                                   "url": "ftp://example.com/hook"})
    assert invalid.status_code == 200 and 'role="alert"' in invalid.text and "<code>url</code>" in invalid.text
    assert 'value="ftp://example.com/hook"' in invalid.text  # the form keeps what was typed
    form = {"name": "Evil", "event_type": "visit_created", "url": "https://example.com/hook"}
    assert (await browser.post("/webhooks", data=form)).status_code == 403
    assert (await browser.post("/webhooks", data={**form, "csrf": "0" * 64})).status_code == 403
    other_site = await browser.post("/webhooks", data={**form, "csrf": csrf(page)},
                                    headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403 and "did not come from this console" in other_site.text
    assert (await browser.post("/sign-out", data={})).status_code == 403
    assert "Evil" not in (await browser.get("/webhooks")).text


async def test_a_read_only_token_sees_no_write_button_and_cannot_write(browser, app, tenant):
    await sign_in(browser, await read_only_token(app, tenant))
    for path in PAGES:
        page = await browser.get(path)
        assert page.status_code == 200 and 'id="read-only"' in page.text
        assert 'class="write' not in page.text and 'id="new-subscription"' not in page.text
    page = await browser.get("/webhooks")
    refused = await browser.post("/webhooks", data={"csrf": csrf(page), "name": "X", "event_type": "visit_created",
                                                   "url": "https://example.com/hook"})
    assert refused.status_code == 403 and "read-only" in refused.text


async def test_sign_out_forgets_the_token(browser, tenant):
    await sign_in(browser, tenant.token)
    page = await browser.get("/")
    out = await browser.post("/sign-out", data={"csrf": csrf(page)})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert 'footfall_session=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert (await browser.get("/")).status_code == 303


async def test_console_assets_are_served_by_footfall(browser):
    for path in ("/static/console/console.js", "/static/console/console.css",
                 "/static/console/vendor/chart.umd.min.js"):
        response = await browser.get(path)
        assert response.status_code == 200 and len(response.content) > 500, path


async def test_an_unknown_time_zone_shows_the_overview_again_with_the_error_beside_the_field(browser, client, tenant):
    await create_visit(client, tenant, source="Kiosk")
    await sign_in(browser, tenant.token)
    page = await browser.get("/", params={"timezone": "Mars/Olympus_Mons", "days": 90})
    assert page.status_code == 200 and 'id="overview-form"' in page.text
    field = re.search(r"<label>Time zone (.*?)</label>", page.text, re.S).group(1)
    assert 'value="Mars/Olympus_Mons"' in field and 'aria-invalid="true"' in field
    assert "Must be an IANA time zone name" in field
    assert re.search(r'<option value="90" selected>', page.text)  # the rest of the form as asked
    assert re.search(r'id="total-visits">1<', page.text) and "(UTC)" in page.text  # the figures, in UTC
    good = await browser.get("/", params={"timezone": "Europe/Amsterdam"})
    assert good.status_code == 200 and "aria-invalid" not in good.text and "(Europe/Amsterdam)" in good.text


async def test_shops_show_each_shops_visit_count(browser, app, client, tenant):
    from footfall.shops import service as shops
    from footfall.shops.schemas import ShopCreate

    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        await shops.create(tx, account, ShopCreate(name="Weenie Hut Jr's"))
    made = [(await create_visit(client, tenant)).json()["data"] for _ in range(3)]
    shop_name = (await client.get(f"/shops/{tenant.shop_uuid}", headers=tenant.headers)).json()["data"]["name"]
    await sign_in(browser, tenant.token)

    def counts(page: httpx.Response) -> dict[str, str]:
        return dict(re.findall(r"<tr><td>([^<]*)</td>.*?class=\"shop-visits\">([\d,]+)</a>", page.text, re.S))

    assert counts(await browser.get("/shops")) == {shop_name: "3", "Weenie Hut Jr&#39;s": "0"}
    assert (await client.delete(f"/visits/{made[0]['uuid']}", headers=tenant.headers)).status_code == 200
    assert counts(await browser.get("/shops"))[shop_name] == "2"


async def test_the_sort_menu_says_what_each_order_is(browser, tenant):
    await sign_in(browser, tenant.token)

    def menu(page: httpx.Response) -> list[tuple[str, str, str]]:
        select = re.search(r'<select name="sort">(.*?)</select>', page.text, re.S).group(1)
        return re.findall(r'<option value="([^"]*)" (selected)?>([^<]*)</option>', select)

    default = menu(await browser.get("/visits"))
    assert [(value, label) for value, _, label in default] == [
        ("created_at", "Oldest first"), ("-created_at", "Newest first"), ("starts_at", "Earliest start first"),
        ("-starts_at", "Latest start first"), ("updated_at", "Least recently updated first"),
        ("-updated_at", "Last updated first"),
    ]
    assert [value for value, selected, _ in default if selected] == ["-created_at"]
    chosen = menu(await browser.get("/visits", params={"sort": "starts_at"}))
    assert [label for _, selected, label in chosen if selected] == ["Earliest start first"]
