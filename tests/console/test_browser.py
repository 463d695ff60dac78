"""The console in a real browser (Debian's chromium, driven by Playwright) against `footfall serve` on
fresh demo data: sign-in, the chart against the stats API, the visits table's filters, a contact, a
delivery retried, sign-out, a read-only token, /docs and /redoc, and nothing loaded from elsewhere."""

import os
import re
import shutil
import time

import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.serving import footfall_json, running_server

CHROMIUM = os.environ.get("FOOTFALL_TEST_CHROMIUM", "/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (Debian's chromium package; .ci/run installs it)", allow_module_level=True)

SERVER_ENV = {"FOOTFALL_RATE_LIMIT": "0", "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1",
              "FOOTFALL_WEBHOOK_RETRY_SCHEDULE": "0.2", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
              "FOOTFALL_WEBHOOK_MAX_CONSECUTIVE_FAILURES": "1000"}


@pytest.fixture
def served(fresh_database_url):
    # A database of its own, so the demo is made fresh: its deliveries not yet tried.
    demo_database = fresh_database_url
    demo = footfall_json("demo", database_url=demo_database)
    viewer = footfall_json("tokens", "create", "--account", demo["account_uuid"], "--read-only",
                           database_url=demo_database)["token"]
    with running_server(demo_database, env=SERVER_ENV) as base_url:
        yield base_url, demo["token"], viewer


@pytest.fixture
def browser():
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def watched_page(browser, base_url):
    """A page that records every request it makes and every message on its console."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.requests, page.messages, page.blocked = [], [], set()
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("requestfailed", lambda request: page.blocked.add(request.url)
            if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP") else None)
    page.on("console", lambda message: page.messages.append(f"{message.type}: {message.text}"))
    page.set_default_timeout(15_000)
    return page


def sign_in(page, base_url, token):
    page.goto(f"{base_url}/")
    assert page.url == f"{base_url}/sign-in"
    page.fill("#token", token)
    page.click("form[action='/sign-in'] button")
    page.wait_for_selector("#visits-chart")


def test_an_operator_reads_the_demo_in_the_console(served, browser):
    base_url, token, _ = served
    page = watched_page(browser, base_url)
    sign_in(page, base_url, token)

    # The chart's bars are the stats API's visits per day for the same period.
    page.wait_for_function("document.getElementById('visits-chart').chart !== undefined")
    drawn = page.evaluate("""() => {
        const chart = document.getElementById('visits-chart').chart;
        return {labels: chart.data.labels, bars: chart.data.datasets[0].data};
    }""")
    assert len(drawn["labels"]) == 30 and sum(drawn["bars"]) > 0
    first, last = drawn["labels"][0], drawn["labels"][-1]
    stats = httpx.get(f"{base_url}{API_PREFIX}/visits/stats", headers={"Authorization": f"Bearer {token}"},
                      params={"interval": "day", "starts_at[gte]": first, "starts_at[lte]": f"{last}T23:59:59"}).json()
    assert [bucket["visits"] for bucket in stats["data"]] == drawn["bars"]
    assert page.inner_text("#total-visits").replace(",", "") == str(sum(drawn["bars"]))

    # The visits table, filtered by source.
    page.click("header nav >> text=Visits")
    page.fill("input[name=source]", "Kiosk")
    page.click("#visit-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/visits\?.*source=Kiosk.*"))
    sources = page.locator("#visits-table tbody tr td:nth-child(5)").all_inner_texts()
    assert sources and set(sources) == {"Kiosk"}

    # A contact, with its visits.
    page.locator("#visits-table tbody tr td:nth-child(3) a").first.click()
    page.wait_for_selector("#contact-email")
    assert "@bikinibottom.sea" in page.inner_text("#contact-email")
    shown = page.locator("#visits-table tbody tr").count()
    assert shown == min(int(page.inner_text("#contact-visit-count")), 50) and shown > 0

    # A delivery that failed (the demo's receiver never resolves), retried: it is tried once more.
    page.click("header nav >> text=Webhooks")
    page.click("#subscriptions-table >> text=Back office")
    row = page.locator("#deliveries-table tbody tr").first
    deadline = time.monotonic() + 20
    while row.locator(".state").inner_text() != "failed" and time.monotonic() < deadline:
        page.wait_for_timeout(300)
        page.reload()
        row = page.locator("#deliveries-table tbody tr").first
    assert row.locator(".state").inner_text() == "failed"
    attempts = int(row.locator("td:nth-child(4)").inner_text())
    delivery = row.get_attribute("data-delivery")
    row.locator("button", has_text="Retry now").click()
    page.wait_for_load_state()
    retried = page.locator(f"tr[data-delivery='{delivery}']")
    deadline = time.monotonic() + 20
    while int(retried.locator("td:nth-child(4)").inner_text()) == attempts and time.monotonic() < deadline:
        page.wait_for_timeout(300)
        page.reload()
        retried = page.locator(f"tr[data-delivery='{delivery}']")
    assert int(retried.locator("td:nth-child(4)").inner_text()) == attempts + 1

    # Signed out, the pages lead to the sign-in page again.
    page.click("#sign-out")
    page.wait_for_url(f"{base_url}/sign-in")
    page.goto(f"{base_url}/visits")
    assert page.url == f"{base_url}/sign-in"

    assert [url for url in page.requests if not url.startswith((base_url, "data:"))] == []
    assert not [m for m in page.messages if m.startswith("error")], page.messages


def test_a_read_only_token_finds_no_write_button(served, browser):
    base_url, _, viewer = served
    page = watched_page(browser, base_url)
    sign_in(page, base_url, viewer)
    assert page.is_visible("#read-only")
    for path in ("/", "/visits", "/contacts", "/shops", "/webhooks"):
        page.goto(f"{base_url}{path}")
        assert page.locator("button.write").count() == 0 and page.locator("#new-subscription").count() == 0
    page.click("#subscriptions-table >> text=Back office")
    assert page.locator("#deliveries-table tbody tr").count() >= 1 and page.locator("button.write").count() == 0
    assert not [m for m in page.messages if m.startswith("error")], page.messages


def test_the_api_docs_render_offline(served, browser):
    base_url, _, _ = served
    page = watched_page(browser, base_url)
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 30
    page.goto(f"{base_url}/redoc")
    page.wait_for_selector("h2 >> text=List Visits", state="attached")
    # ReDoc asks for its logo on redocly's CDN: the page's policy blocks it before it leaves.
    elsewhere = [url for url in page.requests if not url.startswith((base_url, "data:", "blob:"))]
    assert [url for url in elsewhere if url not in page.blocked] == []
