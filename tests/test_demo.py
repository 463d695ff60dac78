"""`footfall demo`: the data the README promises (8 regulars, 40 one-time visitors with one visit each,
90 days, each visit recorded when it happened), a webhook log of deliveries that failed for a real
reason, and the variables the README's examples use, pointing at the server the user runs."""

import json
import shlex
import time
from datetime import date, datetime, timedelta

import httpx

from footfall.app import API_PREFIX
from footfall.cli.demo import _month_starts
from footfall.kit.time import utcnow
from footfall.testing.serving import footfall, footfall_json, running_server

HOOK_URL = "https://back-office.footfall-demo.invalid/visits"
REFUSED = "refused: The host back-office.footfall-demo.invalid does not resolve."


def variables(output: str) -> dict[str, str]:
    """`footfall demo --env`'s variables, as the shell reads them."""
    return {name: shlex.split(value)[0] for name, _, value in
            (line.removeprefix("export ").partition("=") for line in output.splitlines())}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_printed_curl_line_and_variables_point_at_the_server_named(database_url):
    default = variables(footfall("demo", "--env", database_url=database_url).stdout)
    assert default["B"] == "http://127.0.0.1:8000/api/v3/oauth/clients"
    on_port = variables(footfall("demo", "--env", "--port", "8123", database_url=database_url).stdout)
    assert on_port["B"] == "http://127.0.0.1:8123/api/v3/oauth/clients"
    elsewhere = footfall_json("demo", "--base-url", "https://footfall.example:8443/", database_url=database_url)
    assert elsewhere["curl"].endswith(" https://footfall.example:8443/api/v3/oauth/clients/visits")
    for args, named in ((["--port", "8123", "--base-url", "http://x"], "--port and --base-url"),
                        (["--base-url", "footfall.example"], "--base-url")):
        refused = footfall("demo", *args, database_url=database_url, check=False)
        assert refused.returncode == 1 and refused.stdout == "" and refused.stderr.startswith(f"error: {named}")


def test_the_month_the_examples_read_is_last_month():
    assert _month_starts(date(2026, 12, 5)) == ("2026-11-01", "2026-12-01")
    assert _month_starts(date(2027, 1, 31)) == ("2026-12-01", "2027-01-01")


def test_the_demo_holds_what_the_readme_says(fresh_database_url):
    footfall("demo", database_url=fresh_database_url)
    made = variables(footfall("demo", "--env", database_url=fresh_database_url).stdout)
    with running_server(fresh_database_url) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=dict([made["H"].split(": ", 1)])
    ) as api:
        contacts = api.get("/contacts", params={"limit": 100}).json()
        assert contacts["meta"]["total"] == 48
        counts = {contact["email"]: contact["visit_count"] for contact in contacts["data"]}
        one_time = {email: n for email, n in counts.items() if email.startswith("visitor")}
        regulars = {email: n for email, n in counts.items() if not email.startswith("visitor")}
        assert len(one_time) == 40 and set(one_time.values()) == {1}
        assert len(regulars) == 8 and min(regulars.values()) >= 20

        rows = [json.loads(line) for line in api.get("/visits/export").text.splitlines()]
        assert 280 <= len(rows) <= 360 and len(rows) == sum(counts.values())  # "about 320"
        starts = sorted(moment(row["starts_at"]) for row in rows)
        assert (starts[-1].date() - starts[0].date()).days == 89  # 90 days, the first and the last among them
        assert starts[-1] <= utcnow() and starts[-1].date() >= utcnow().date() - timedelta(days=1)
        for row in rows:  # recorded when it happened: at its end (or start), a few seconds or minutes after
            recorded = moment(row["created_at"])
            assert row["updated_at"] == row["created_at"]
            assert timedelta(0) < recorded - moment(row["ends_at"] or row["starts_at"]) <= timedelta(minutes=5), row

        feed = api.get("/visits/changes", params={"limit": 1000}).json()["data"]
        assert len(feed) == len(rows)
        assert [change["updated_at"] for change in feed] == sorted(change["updated_at"] for change in feed)

        month = {"created_at[gte]": made["FROM"], "created_at[lt]": made["TO"]}
        assert api.get("/visits", params=month).json()["meta"]["total"] > 50
        stats = api.get("/visits/stats", params={"starts_at[gte]": made["FROM"], "starts_at[lt]": made["TO"]}).json()
        assert sum(bucket["visits"] for bucket in stats["data"]) > 50


def test_the_demos_deliveries_failed_for_a_real_reason(fresh_database_url):
    """Tried by the demo itself, as it made them; a server with the default settings (private addresses
    refused) then tries new ones and fails them for the same reason."""
    demo = footfall_json("demo", database_url=fresh_database_url)
    status = footfall_json("status", database_url=fresh_database_url)
    assert status["deliveries"] == {"pending": 0, "failed": 3, "oldest_pending_seconds": None}
    with running_server(fresh_database_url) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers={"Authorization": f"Bearer {demo['token']}"}
    ) as api:
        subscription = api.get(f"/webhook-subscriptions/{demo['subscription_uuid']}").json()["data"]
        assert (subscription["url"], subscription["status"]) == (HOOK_URL, "ACTIVE")
        log = api.get(f"/webhook-subscriptions/{demo['subscription_uuid']}/deliveries").json()["data"]
        assert [(d["state"], d["attempts"], d["last_error"], d["next_attempt_at"]) for d in log] == \
               [("failed", 3, REFUSED, None)] * 3
        made = api.post("/visits", json={"contact_uuid": demo["contact_uuid"], "shop_uuid": demo["shop_uuid"]})
        assert made.status_code == 201
        deadline = time.monotonic() + 30
        while (newest := api.get(f"/webhook-subscriptions/{demo['subscription_uuid']}/deliveries")
               .json()["data"][0])["attempts"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (newest["state"], newest["attempts"], newest["last_error"]) == ("pending", 1, REFUSED)


def test_the_demo_leaves_deliveries_to_the_server_when_another_accounts_wait_too(fresh_database_url):
    """The delivery worker claims any account's deliveries: the demo tries its own only when nothing
    else waits, and another account's are never tried on the demo's short schedule."""
    setup = {"FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1"}
    account = footfall_json("accounts", "create", "--name", "Weenie Hut", database_url=fresh_database_url)
    token = footfall_json("tokens", "create", "--account", account["uuid"], database_url=fresh_database_url)["token"]
    shop = footfall_json("shops", "create", "--account", account["uuid"], "--name", "Weenie Hut Jr's",
                         database_url=fresh_database_url)
    contact = footfall_json("contacts", "create", "--account", account["uuid"], "--email", "fred@weenie.sea",
                            database_url=fresh_database_url)
    with running_server(fresh_database_url, "--no-worker", env=setup) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        assert api.post("/webhook-subscriptions", json={"name": "Till", "event_type": "visit_created",
                                                        "url": "http://127.0.0.1:9/till"}).status_code == 201
        assert api.post("/visits", json={"contact_uuid": contact["uuid"], "shop_uuid": shop["uuid"]}).status_code == 201
    footfall_json("demo", database_url=fresh_database_url)
    status = footfall_json("status", database_url=fresh_database_url)
    assert (status["deliveries"]["pending"], status["deliveries"]["failed"]) == (4, 0)
