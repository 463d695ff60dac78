"""Receiver URLs an attacker (or an older version) leaves behind: URLs the sender cannot use are refused
when given and fail as attempts when stored; a receiver's secrets in its URL never reach the log."""

import asyncio
import json
import subprocess
import sys
import time
from uuid import UUID, uuid4

import httpx
import pytest

from footfall.accounts.service import get_account
from footfall.app import API_PREFIX
from footfall.db import open_database
from footfall.kit.time import utcnow
from footfall.testing.serving import running_server
from footfall.webhooks.repository import SubscriptionRepository
from tests.webhooks.test_delivery import create_visit, deliveries, drain, subscribe, worker_for

CONTROL = ["\t", "\x7f", "\r", "\n", "\x1b"]


@pytest.mark.parametrize("char", CONTROL, ids=repr)
async def test_a_url_with_a_control_character_is_refused_on_create_and_update(client, tenant, char):
    created = await client.post("/webhook-subscriptions", headers=tenant.headers, json={
        "name": "hostile", "event_type": "visit_created", "url": f"https://example.com/ho{char}ok"})
    assert created.status_code == 422, created.text
    assert created.json()["code"] == 1003 and list(created.json()["errors"]) == ["url"]
    subscription = await subscribe(client, tenant, "https://example.com/hook")
    updated = await client.put(f"/webhook-subscriptions/{subscription['uuid']}", headers=tenant.headers,
                               json={"url": f"https://exa{char}mple.com/hook"})
    assert updated.status_code == 422, updated.text
    assert updated.json()["code"] == 1003 and list(updated.json()["errors"]) == ["url"]
    shown = await client.get(f"/webhook-subscriptions/{subscription['uuid']}", headers=tenant.headers)
    assert shown.json()["data"]["url"] == "https://example.com/hook"


async def insert_subscription(database, tenant, url: str, secret: str = "whsec_" + "A" * 43 + "=") -> dict:
    """A subscription's row as an older version could have left it: written past every check."""
    async with database.transaction(write=True) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
        row = await SubscriptionRepository(tx).insert({
            "uuid": uuid4(), "account_id": account.id, "name": "stored", "event_type": "visit_created",
            "url": url, "secret": secret, "status": "ACTIVE", "consecutive_failures": 0, "created_at": utcnow(),
        })
    return {"uuid": str(row.uuid)}


@pytest.mark.parametrize(
    ("stored", "private_allowed"),
    [
        ({"url": "http://127.0.0.1:9/ho\tok"}, True),
        ({"url": "http://127.0.0.1:9/ho\x1bok"}, True),
        ({"url": "http://93.184.215.14/ho\x7fok"}, False),  # a public address, checked before sending
        ({"url": "{receiver}", "secret": "whsec_not base64!"}, True),
    ],
    ids=["tab", "esc", "del-public", "secret"],
)
async def test_a_stored_delivery_that_cannot_be_sent_fails_on_schedule_and_the_others_go_out(
    app, client, tenant, receiver, stored, private_allowed
):
    bad = await insert_subscription(app.state.database, tenant, **{
        name: value.format(receiver=receiver.url("/bad")) for name, value in stored.items()})
    good = await subscribe(client, tenant, receiver.url("/good"))
    await create_visit(client, tenant)
    await create_visit(client, tenant)
    worker = worker_for(app, webhook_allow_private_urls=private_allowed, webhook_retry_schedule=[0, 0, 0],
                        webhook_max_consecutive_failures=2)
    try:
        await drain(worker)  # every round returns: no delivery escapes as the worker's own error
    finally:
        await worker.close()
    assert receiver.on("/bad") == []
    failed = await deliveries(client, tenant, bad)
    assert len(failed) == 2
    for delivery in failed:
        assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 3, None)
        assert delivery["last_error"] and delivery["last_attempt_at"] is not None
    shown = await client.get(f"/webhook-subscriptions/{bad['uuid']}", headers=tenant.headers)
    assert shown.json()["data"]["status"] == "INACTIVE"
    # The other subscription's deliveries were attempted all along: delivered, or refused where
    # private addresses are (its receiver is on loopback).
    if private_allowed:
        assert len(receiver.wait_for("/good", 2)) == 2
    sent = await deliveries(client, tenant, good)
    assert [d["state"] for d in sent] == ["succeeded" if private_allowed else "failed"] * 2


FAST = {"FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
        "FOOTFALL_WEBHOOK_RETRY_SCHEDULE": "0,60"}


async def _insert_elsewhere(database_url, tenant, url) -> None:
    database = open_database(database_url, pool_size=1)
    try:
        await insert_subscription(database, tenant, url)
    finally:
        await database.close()


def _attempts(log_path, request_id: str, count: int, timeout: float = 30) -> list[dict]:
    """The delivery attempt lines the request caused (the server's worker sends every account's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        found = [line for line in lines
                 if line["event"] == "webhook delivery attempt" and line["request_id"] == request_id]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} attempts of {request_id} within {timeout} s")


def test_a_receivers_query_string_and_credentials_stay_out_of_the_serve_log(database_url, tenant, receiver, tmp_path):
    # Credentials are refused when given; an older version's row may still hold them.
    with_credentials = receiver.url("/userinfo?api_key=SECRET").replace("http://", "http://user:pass@")
    asyncio.run(_insert_elsewhere(database_url, tenant, with_credentials))
    log_path = tmp_path / "serve.log"
    request_id = f"hostile-{uuid4().hex}"
    with running_server(database_url, env=FAST, log_path=log_path) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers
    ) as client:
        response = client.post("/webhook-subscriptions", json={
            "name": "secrets", "event_type": "visit_created", "url": receiver.url("/query?api_key=SECRET")})
        assert response.status_code == 201, response.text
        response = client.post("/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
                               headers={"X-Request-Id": request_id})
        assert response.status_code == 201, response.text
        receiver.wait_for("/query?api_key=SECRET", 1)
        attempts = _attempts(log_path, request_id, 2)
    text = log_path.read_text()
    assert "SECRET" not in text and "api_key" not in text and "user:pass" not in text
    # httpx's line is there, its URL cut to scheme, host and path; the stored credentials were refused.
    assert f'HTTP Request: POST {receiver.url("/query")} ' in text
    assert sorted(attempt["outcome"] for attempt in attempts) == ["retrying", "succeeded"]


# Logs, through Footfall's configured handler, what an httpx request to such a URL logs (httpx's and
# httpcore's own lines, at debug), a line naming the URL in a field, and an error whose message has it.
SCRIPT = """
import logging, sys, httpx
from footfall.kit import logs
logs.configure("json", "debug")
url = sys.argv[1]
httpx.post(url, content=b"{}")
logging.getLogger("footfall.webhooks").info("webhook delivery attempt", extra={"url": url, "error": "at " + url})
try:
    raise ValueError(f"cannot send to {url}")
except ValueError:
    logging.getLogger("footfall.webhooks").exception("failed")
"""


def test_no_line_of_the_configured_handler_holds_a_urls_query_or_userinfo(receiver):
    url = receiver.url("/hook?api_key=SECRET&b=2#frag").replace("http://", "http://user:pass@")
    result = subprocess.run([sys.executable, "-c", SCRIPT, url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert receiver.wait_for("/hook?api_key=SECRET&b=2", 1)  # it was sent, credentials and all
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"httpx", "httpcore.connection", "footfall.webhooks"} <= {line["logger"] for line in lines}
    cut = receiver.url("/hook")
    [request] = [line for line in lines if line["logger"] == "httpx"]
    assert request["event"].startswith(f"HTTP Request: POST {cut} ")
    [attempt] = [line for line in lines if line["event"] == "webhook delivery attempt"]
    assert (attempt["url"], attempt["error"]) == (cut, f"at {cut}")
    assert "cannot send to " + cut in [line for line in lines if line["event"] == "failed"][0]["exception"]
    for kept_out in ("SECRET", "api_key", "user:pass", "frag"):
        assert kept_out not in result.stderr
