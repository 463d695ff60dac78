"""Every kind of write at once, from several clients, then the invariants a system of record owes:
nothing acknowledged lost, every total exact, the changes feed and the export agreeing, no 5xx.

Bounded: each client stops after DURATION seconds or its own count of requests, whichever comes
first. CI runs it for a few seconds; bench/soak.py runs it (and the hostile-input suite) longer.
"""

import asyncio
import json
import os
import random
import time
from datetime import timedelta
from uuid import UUID

from sqlalchemy import bindparam, select

from footfall.accounts.service import get_account
from footfall.db import Statement, per_dialect
from footfall.kit.time import utcnow
from footfall.tables import webhook_events
from footfall.visits import importer, retention
from tests.conftest import make_tenant
from tests.test_limits import app_client

# Seconds of writing and rounds per client at most; bench/soak.py sets more.
DURATION = float(os.environ.get("FOOTFALL_SOAK_SECONDS", "3"))
ROUNDS = int(DURATION * 50)

# Every visit_deleted event the account's outbox holds (the webhook worker is not running).
DELETED_EVENTS = per_dialect(lambda dialect: Statement(
    select(webhook_events.c.body).where(webhook_events.c.account_id == bindparam("account_id"),
                                        webhook_events.c.type == "visit_deleted"),
    dialect=dialect, bulk=True))


class Ledger:
    """What the clients were told: every visit acknowledged, every answer's status."""

    def __init__(self) -> None:
        self.created: dict[str, str] = {}  # visit uuid -> how ("api" or "import")
        self.statuses: list[tuple[str, int, str]] = []
        self.contacts: list[str] = []  # uuids of contacts that may be written for (some deleted since)
        self.deadline = time.monotonic() + DURATION

    def start(self) -> None:
        self.deadline = time.monotonic() + DURATION

    def running(self, round_: int) -> bool:
        # Every client writes at least once, however slow the machine, so the run always races.
        return round_ == 0 or (round_ < ROUNDS and time.monotonic() < self.deadline)

    def saw(self, what: str, response) -> None:
        self.statuses.append((what, response.status_code, response.text[:300]))


async def test_every_write_at_once_loses_nothing_and_keeps_totals_exact(database_url):
    # No rate limit: the clients share one token and send more than its minute's budget.
    async with app_client(database_url, rate_limit=0, webhook_allow_private_urls=True) as (app, client):
        tenant = await make_tenant(app)
        await write_at_once_then_check(app, client, tenant)
        # Their deliveries go too: left pending, they would hold up later tests' webhook workers.
        for subscription in (await client.get("/webhook-subscriptions", headers=tenant.headers)).json()["data"]:
            await client.delete(f"/webhook-subscriptions/{subscription['uuid']}", headers=tenant.headers)


async def write_at_once_then_check(app, client, tenant) -> None:
    headers = tenant.headers
    ledger = Ledger()
    rng = random.Random(21)
    # Subscribed (nothing delivers: no worker), so the outbox records every visit_deleted.
    for event_type in ("visit_created", "visit_deleted"):
        response = await client.post("/webhook-subscriptions", headers=headers, json={
            "name": event_type, "event_type": event_type, "url": "http://127.0.0.1:9/hook"})
        assert response.status_code == 201
    for n in range(6):
        response = await client.post("/contacts", json={"email": f"c{n}@race.sea"}, headers=headers)
        ledger.contacts.append(response.json()["data"]["uuid"])
    async with app.state.database.transaction(write=False) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
    started_at = utcnow()

    def some_contact() -> str:
        return rng.choice(ledger.contacts)

    def some_visit() -> str | None:
        return rng.choice(list(ledger.created)) if ledger.created else None

    async def creator(n: int) -> None:
        for round_ in range(ROUNDS):
            if not ledger.running(round_):
                return
            extra = {"Idempotency-Key": f"create-{n}-{round_}"} if round_ % 3 == 0 else {}
            response = await client.post("/visits", headers={**headers, **extra}, json={
                "contact_uuid": some_contact(), "shop_uuid": tenant.shop_uuid, "source": f"creator-{n}"})
            ledger.saw("create", response)
            if response.status_code == 201:
                ledger.created[response.json()["data"]["uuid"]] = "api"

    async def batcher() -> None:
        for round_ in range(ROUNDS):
            if not ledger.running(round_):
                return
            items = [{"contact_uuid": some_contact(), "shop_uuid": tenant.shop_uuid, "source": "batch"}
                     for _ in range(4)]
            if round_ % 2:
                items.append({"contact_email": f"batch-{round_}@race.sea", "shop_uuid": tenant.shop_uuid})
            response = await client.post("/visits/batch", json={"visits": items}, headers=headers)
            ledger.saw("batch", response)
            if response.status_code == 200:
                for outcome in response.json()["data"]:
                    if outcome["status"] == 201:
                        ledger.created[outcome["data"]["uuid"]] = "api"

    async def on_visits(what: str, request, pause: float) -> None:
        """`request(uuid, round)` on visits acknowledged so far, one at a time."""
        for round_ in range(ROUNDS):
            if not ledger.running(round_):
                return
            uuid = some_visit()
            if uuid is not None:
                ledger.saw(what, await request(uuid, round_))
            await asyncio.sleep(pause)

    def updater():
        return on_visits("update", lambda uuid, round_: client.put(
            f"/visits/{uuid}", json={"source": f"updated-{round_}"}, headers=headers), 0.0)

    def visit_deleter():
        return on_visits("delete visit", lambda uuid, _: client.delete(f"/visits/{uuid}", headers=headers), 0.02)

    async def contact_deleter() -> None:
        for round_ in range(ROUNDS):
            if not ledger.running(round_):
                return
            await asyncio.sleep(0.15)
            doomed = some_contact()
            response = await client.delete(f"/contacts/{doomed}", params={"type": rng.choice(["DEFAULT", "GDPR"])},
                                           headers=headers)
            ledger.saw("delete contact", response)
            created = await client.post("/contacts", json={"email": f"new-{round_}@race.sea"}, headers=headers)
            ledger.contacts.append(created.json()["data"]["uuid"])

    async def claimer() -> None:
        for round_ in range(ROUNDS):
            if not ledger.running(round_):
                return
            made = await client.post("/contacts/anonymous", headers=headers)
            assert made.status_code == 201, made.text
            anonymous = made.json()["data"]["uuid"]
            ledger.contacts.append(anonymous)
            await asyncio.sleep(0.05)  # creates for it meanwhile
            response = await client.put(f"/contacts/{anonymous}/claim", json={"email": f"claimed-{round_}@race.sea"},
                                        headers=headers)
            ledger.saw("claim", response)

    async def import_and_purge() -> None:
        for round_ in range(ROUNDS):
            if not ledger.running(round_):
                return
            # History from before the run, which the purge below takes away again, in part.
            rows = [(n, {"contact_uuid": some_contact(), "shop_uuid": tenant.shop_uuid, "source": "import",
                         "created_at": (started_at - timedelta(days=2, minutes=n)).isoformat()}) for n in range(8)]
            summary = await importer.import_visits(app.state.database, account, iter(rows), lambda n, why: None)
            assert summary.imported + summary.failed == len(rows)
            await retention.purge(app.state.database, account, started_at - timedelta(days=2, minutes=4))
            await asyncio.sleep(0.05)

    writers = [creator(n) for n in range(4)] + [batcher(), updater(), visit_deleter(), contact_deleter(), claimer(),
                                                  import_and_purge()]
    ledger.start()  # the set-up above does not count against the clients' seconds
    await asyncio.gather(*writers)

    server_errors = [status for status in ledger.statuses if status[1] >= 500]
    assert server_errors == []
    kinds = {(what, status) for what, status, _ in ledger.statuses}
    assert ("create", 201) in kinds and ("delete contact", 200) in kinds  # the run did race

    # The export is what is stored now; the mirror is what the changes feed says, applied in order.
    export = await client.get("/visits/export", params={"format": "ndjson"}, headers=headers)
    stored = {visit["uuid"]: visit for visit in map(json.loads, export.text.splitlines())}
    mirror, tombstones, cursor = {}, set(), None
    while True:
        page = (await client.get("/visits/changes", params={"cursor": cursor, "limit": 500} if cursor else
                                 {"limit": 500}, headers=headers)).json()
        for change in page["data"]:
            if "deleted_at" in change:
                mirror.pop(change["uuid"], None)
                tombstones.add(change["uuid"])
            else:
                mirror[change["uuid"]] = change
        cursor = page["meta"]["next_cursor"]
        if not page["meta"]["has_more"]:
            break
    assert set(mirror) == set(stored)
    for uuid, visit in stored.items():
        shown = mirror[uuid]
        assert (shown["contact"]["uuid"], shown["contact"]["email"], shown["source"], shown["starts_at"]) == (
            visit["contact_uuid"], visit["contact_email"], visit["source"], visit["starts_at"])

    # Every create a client was told of is stored, or was deleted with a tombstone (and, deleted
    # through the API, a visit_deleted event).
    async with app.state.database.transaction(write=False) as tx:
        bodies = await tx.fetch(DELETED_EVENTS[tx.dialect], {"account_id": account.id})
    announced = {json.loads(row.body)["data"]["uuid"] for row in bodies}
    for uuid in ledger.created:
        assert uuid in stored or (uuid in tombstones and uuid in announced), uuid

    # Every total equals what its list holds: the account's, each contact's, and each contact's count.
    listed = await client.get("/visits", params={"limit": 0}, headers=headers)
    assert listed.json()["meta"]["total"] == len(stored)
    per_contact: dict[str, int] = {}
    for visit in stored.values():
        per_contact[visit["contact_uuid"]] = per_contact.get(visit["contact_uuid"], 0) + 1
    for contact_uuid in set(ledger.contacts):
        shown = await client.get(f"/contacts/{contact_uuid}", headers=headers)
        if shown.status_code == 404:
            assert contact_uuid not in per_contact
            continue
        expected = per_contact.get(contact_uuid, 0)
        assert shown.json()["data"]["visit_count"] == expected, contact_uuid
        totals, listed_uuids = set(), []
        for page_number in range(1, 100):
            page = (await client.get("/visits", params={"contact_uuid": contact_uuid, "limit": 50, "page": page_number},
                                     headers=headers)).json()
            totals.add(page["meta"]["total"])
            listed_uuids += [visit["uuid"] for visit in page["data"]]
            if not page["data"]:
                break
        assert totals == {expected} and len(listed_uuids) == len(set(listed_uuids)) == expected
