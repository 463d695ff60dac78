"""The console against an attacker: sign-in only from the console's own pages (login CSRF), and one
rate limit per token whichever way the token comes (the API's bearer header, the console's cookie),
with the sign-in page limited per client address."""

import os
import random
import re
from contextlib import asynccontextmanager

import httpx
import pytest

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
from footfall.db import migrate
from tests.conftest import make_tenant
from tests.console.test_pages import csrf, sign_in
from tests.test_limits import fresh_window

REDIS_URL = os.environ.get("FOOTFALL_TEST_REDIS_URL")
OWN = "http://footfall.test"
HOOK = {"name": "Till", "event_type": "visit_created", "url": "http://127.0.0.1:9/hook"}


def a_client_address() -> str:
    # Each test its own client: the sign-in page's budget is per address, and Redis keeps it across apps.
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@asynccontextmanager
async def console_app(database_url, **settings):
    """An app of its own settings, and a browser for it (from a client address of its own)."""
    app = create_app(Settings(database_url=database_url, webhook_worker=False, webhook_allow_private_urls=True,
                              token_cache_seconds=0, **settings))
    await migrate(database_url)
    try:
        yield app, browser_of(app)
    finally:
        await app.state.database.close()


def browser_of(app, address: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address or a_client_address(), 123))
    return httpx.AsyncClient(transport=transport, base_url=OWN)


def api_of(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=f"{OWN}{API_PREFIX}")


# 9. Login CSRF

FOREIGN = {
    "foreign-origin": {"Origin": "http://evil.example"},
    "null-origin": {"Origin": "null"},  # an opaque origin: a sandboxed frame, a data: URL
    "foreign-referer": {"Referer": "http://evil.example/login.html"},  # no Origin: where the form was
    "other-scheme": {"Origin": "https://footfall.test"},  # another scheme is another origin
}
OWN_HEADERS = {"own-origin": {"Origin": OWN}, "own-referer": {"Referer": f"{OWN}/sign-in"}, "neither": {}}


@pytest.mark.parametrize("foreign", FOREIGN.values(), ids=FOREIGN.keys())
@pytest.mark.parametrize("own", OWN_HEADERS.values(), ids=OWN_HEADERS.keys())
async def test_sign_in_comes_only_from_the_console_itself(app, tenant, foreign, own):
    async with browser_of(app) as browser:
        refused = await browser.post("/sign-in", data={"token": tenant.token}, headers=foreign)
        assert refused.status_code == 403 and "did not come from this console" in refused.text
        assert "set-cookie" not in refused.headers and not browser.cookies
        assert (await browser.get("/")).status_code == 303  # not signed in
        signed = await browser.post("/sign-in", data={"token": tenant.token}, headers=own)
        assert signed.status_code == 303 and signed.headers["set-cookie"].startswith("footfall_session=")
        assert (await browser.get("/")).status_code == 200


async def test_every_form_decides_its_origin_alike(app, tenant):
    async with browser_of(app) as browser:
        await sign_in(browser, tenant.token)
        page = await browser.get("/webhooks")
        form = {**HOOK, "csrf": csrf(page)}
        for headers in ({"Referer": "http://evil.example/"}, {"Origin": "null"}, {"Referer": "http://[bad"}):
            refused = await browser.post("/webhooks", data=form, headers=headers)
            assert refused.status_code == 403 and "did not come from this console" in refused.text, headers
        out = await browser.post("/sign-out", data={"csrf": csrf(page)}, headers={"Referer": "http://evil.example/"})
        assert out.status_code == 403
        assert "Till" not in (await browser.get("/webhooks")).text
        made = await browser.post("/webhooks", data=form, headers={"Referer": f"{OWN}/webhooks"})
        assert made.status_code == 200 and 'id="secret"' in made.text


# 10. The console inside the rate limit

def assert_refused_page(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Too many requests." in response.text and "console.css" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60 and response.headers["ratelimit-reset"] == str(retry_after)
    assert response.headers["ratelimit-remaining"] == "0" and int(response.headers["x-ratelimit-reset"]) % 60 == 0


@pytest.mark.parametrize("counted_in", ["process", "redis"])
async def test_console_and_api_requests_spend_one_budget_per_token(database_url, counted_in):
    if counted_in == "redis" and not REDIS_URL:
        pytest.skip("FOOTFALL_TEST_REDIS_URL is not set, so the Redis rate limit is not tested")
    redis = {"redis_url": REDIS_URL} if counted_in == "redis" else {}
    async with console_app(database_url, rate_limit=8, **redis) as (app, browser), api_of(app) as api:
        tenant, other = await make_tenant(app), await make_tenant(app)
        bearer = {"Authorization": f"Bearer {tenant.token}"}
        await fresh_window()
        await sign_in(browser, tenant.token)  # the sign-in page's budget, not the token's
        page = await browser.get("/webhooks")
        assert page.headers["ratelimit-remaining"] == "7"
        for path in ("/static/console/console.css", "/static/console/console.js"):  # public files: not counted
            assert (await browser.get(path)).status_code == 200
        assert (await api.get("/shops", headers=bearer)).headers["ratelimit-remaining"] == "6"
        made = await browser.post("/webhooks", data={**HOOK, "csrf": csrf(page)})  # a form post
        assert made.status_code == 200 and made.headers["ratelimit-remaining"] == "5"
        exported = await browser.get("/visits/export")  # an export
        assert exported.status_code == 200 and exported.headers["ratelimit-remaining"] == "4"
        for remaining in ("3", "2", "1", "0"):
            assert (await browser.get("/visits")).headers["ratelimit-remaining"] == remaining

        assert_refused_page(await browser.get("/"))
        assert_refused_page(await browser.get("/visits/export"))
        assert_refused_page(await browser.post("/webhooks", data={**HOOK, "csrf": csrf(page)}))
        refused = await api.get("/shops", headers=bearer)  # the API's door is shut too, in Leat's JSON
        assert refused.status_code == 429 and refused.json()["code"] == 90429 and "retry-after" in refused.headers
        assert (await browser.get("/static/console/console.css")).status_code == 200
        async with browser_of(app) as elsewhere:  # another token's budget is its own
            await sign_in(elsewhere, other.token)
            assert (await elsewhere.get("/visits")).status_code == 200
        assert (await api.get("/shops", headers={"Authorization": f"Bearer {other.token}"})).status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="FOOTFALL_TEST_REDIS_URL is not set, so the Redis rate limit is not tested")
async def test_with_redis_the_console_and_the_api_of_different_processes_share_the_budget(database_url):
    async with console_app(database_url, rate_limit=3, redis_url=REDIS_URL) as (app, browser):
        async with console_app(database_url, rate_limit=3, redis_url=REDIS_URL) as (second, _), api_of(second) as api:
            tenant = await make_tenant(app)
            await fresh_window()
            await sign_in(browser, tenant.token)
            assert (await api.get("/shops", headers={"Authorization": f"Bearer {tenant.token}"})).status_code == 200
            assert (await browser.get("/shops")).status_code == 200
            assert (await api.get("/shops", headers={"Authorization": f"Bearer {tenant.token}"})).status_code == 200
            assert_refused_page(await browser.get("/shops"))


async def test_the_sign_in_page_is_limited_per_client_address(database_url):
    async with console_app(database_url, rate_limit=4) as (app, browser):
        tenant = await make_tenant(app)
        await fresh_window()
        guesses = []
        for n, path in enumerate(("/sign-in", "/sign-in/", "/sign-in", "/sign-in")):
            # A made-up session cookie buys no fresh budget: the page counts its client address.
            browser.cookies.set("footfall_session", f"ffpat_guess{n}")
            guesses.append(await browser.post(path, data={"token": f"ffpat_guess{n}"}))
        assert [response.status_code for response in guesses] == [401, 401, 401, 401]
        assert [response.headers["ratelimit-remaining"] for response in guesses] == ["3", "2", "1", "0"]
        browser.cookies.clear()
        assert_refused_page(await browser.post("/sign-in", data={"token": tenant.token}))
        assert_refused_page(await browser.get("/sign-in"))
        async with browser_of(app) as other_client:
            assert (await other_client.get("/sign-in")).status_code == 200
            await sign_in(other_client, tenant.token)
            assert re.search(r'name="csrf"', (await other_client.get("/webhooks")).text)
