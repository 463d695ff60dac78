"""Each contact's kept visit count and first and last visit (contact_visit_counts, which audiences and
the stats' new contacts read) stay what counting afresh from the visits gives, through every kind of
visit write: creates, batches, updates that move a start, deletes, imports, purges, claims and
contact deletes, one after another and at once."""

import asyncio
import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

from footfall.accounts.service import get_account
from footfall.stats.cache import StatsCache
from footfall.visits import importer, retention

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)


def moment(rng: random.Random) -> str:
    return (DAY0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 400))).isoformat()


async def kept_and_afresh(client, tenant) -> tuple[dict, dict]:
    """Every contact's (visit_count, first_visit_at, last_visit_at) as GET /contacts shows the kept
    ones, and as counted afresh from every visit the export writes."""
    kept, page = {}, 1
    while True:
        body = (await client.get("/contacts", params={"limit": 100, "page": page}, headers=tenant.headers)).json()
        kept.update({c["uuid"]: (c["visit_count"], c["first_visit_at"], c["last_visit_at"]) for c in body["data"]})
        if page >= body["meta"]["last_page"]:
            break
        page += 1
    starts = defaultdict(list)
    exported = await client.get("/visits/export", headers=tenant.headers)
    for line in exported.text.splitlines():
        visit = json.loads(line)
        starts[visit["contact_uuid"]].append(visit["starts_at"])
    afresh = {uuid: (len(starts[uuid]), min(starts[uuid], default=None), max(starts[uuid], default=None))
              for uuid in kept}
    assert set(starts) <= set(kept)
    return kept, afresh


async def new_contacts_by_day(client, app, tenant) -> dict[str, int]:
    """Each day's new contacts, as the stats count them from the visits (their cache emptied first)."""
    app.state.stats_cache = StatsCache()
    period = {"interval": "day", "starts_at[gte]": DAY0.isoformat(),
              "starts_at[lt]": (DAY0 + timedelta(days=401)).isoformat()}
    response = await client.get("/visits/stats", params=period, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return {item["bucket_start"][:10]: item["new_contacts"] for item in response.json()["data"] if item["new_contacts"]}


def first_days(afresh: dict) -> dict[str, int]:
    """How many contacts' first visit (counted afresh) is on each day."""
    return dict(Counter(first[:10] for _, first, _ in afresh.values() if first is not None))


class Writer:
    """Random visit writes for one tenant, through HTTP and the importer, as a client and an operator
    make them."""

    def __init__(self, client, app, tenant, seed: int) -> None:
        self.client, self.app, self.tenant = client, app, tenant
        self.rng = random.Random(seed)
        self.contacts: list[str] = [tenant.contact_uuid]
        self.visits: list[str] = []
        self.anonymous: list[str] = []
        self.n = 0

    async def account(self):
        async with self.app.state.database.transaction(write=False) as tx:
            return await get_account(tx, UUID(self.tenant.account_uuid))

    def contact(self) -> str:
        return self.rng.choice(self.contacts)

    async def new_contact(self) -> None:
        self.n += 1
        if self.rng.random() < 0.3:
            made = await self.client.post("/contacts/anonymous", headers=self.tenant.headers)
            self.anonymous.append(made.json()["data"]["uuid"])
        else:
            made = await self.client.post("/contacts", json={"email": f"k{self.n}@x.sea"}, headers=self.tenant.headers)
        assert made.status_code == 201, made.text
        self.contacts.append(made.json()["data"]["uuid"])

    async def create(self) -> None:
        response = await self.client.post("/visits", headers=self.tenant.headers, json={
            "contact_uuid": self.contact(), "shop_uuid": self.tenant.shop_uuid, "starts_at": moment(self.rng)})
        assert response.status_code == 201, response.text
        self.visits.append(response.json()["data"]["uuid"])

    async def batch(self) -> None:
        items = []
        for _ in range(self.rng.randrange(1, 8)):
            self.n += 1
            who = ({"contact_email": f"b{self.n}@x.sea"} if self.rng.random() < 0.2
                   else {"contact_uuid": self.contact()})
            items.append({**who, "shop_uuid": self.tenant.shop_uuid, "starts_at": moment(self.rng)})
        response = await self.client.post("/visits/batch", json={"visits": items}, headers=self.tenant.headers)
        assert response.status_code == 200, response.text
        for outcome in response.json()["data"]:
            assert outcome["status"] == 201, outcome
            self.visits.append(outcome["data"]["uuid"])
            if outcome["data"]["contact"]["uuid"] not in self.contacts:
                self.contacts.append(outcome["data"]["contact"]["uuid"])

    async def update(self) -> None:
        if not self.visits:
            return
        change = ({"starts_at": moment(self.rng)} if self.rng.random() < 0.8 else {"source": "moved"})
        response = await self.client.put(f"/visits/{self.rng.choice(self.visits)}", json=change,
                                         headers=self.tenant.headers)
        assert response.status_code in (200, 404), response.text  # 404: deleted meanwhile (when run at once)

    async def delete(self) -> None:
        if not self.visits:
            return
        uuid = self.visits.pop(self.rng.randrange(len(self.visits)))
        response = await self.client.delete(f"/visits/{uuid}", headers=self.tenant.headers)
        assert response.status_code in (200, 404), response.text

    async def import_rows(self) -> None:
        rows = []
        only = self.contact() if self.rng.random() < 0.3 else None  # one contact's rows: its counts in one statement
        for number in range(1, self.rng.randrange(2, 30)):
            # Recorded long ago, some of them: for the purges.
            created = DAY0 - timedelta(days=self.rng.randrange(0, 30)) if self.rng.random() < 0.5 else None
            rows.append((number, {"contact_uuid": only or self.contact(), "shop_uuid": self.tenant.shop_uuid,
                                  "starts_at": moment(self.rng), "created_at": created and created.isoformat()}))
        failed: list = []
        summary = await importer.import_visits(self.app.state.database, await self.account(), iter(rows),
                                               lambda number, reason: failed.append((number, reason)))
        assert summary.imported + summary.failed == len(rows) and (summary.failed == 0 or failed)

    async def purge(self) -> None:
        before = DAY0 - timedelta(days=self.rng.randrange(0, 30))
        await retention.purge(self.app.state.database, await self.account(), before)

    async def claim(self) -> None:
        if not self.anonymous:
            return
        self.n += 1
        uuid = self.anonymous.pop()
        response = await self.client.put(f"/contacts/{uuid}/claim", json={"email": f"claimed{self.n}@x.sea"},
                                         headers=self.tenant.headers)
        assert response.status_code in (200, 404), response.text

    async def delete_contact(self) -> None:
        if len(self.contacts) < 3:
            return
        uuid = self.contacts.pop(self.rng.randrange(1, len(self.contacts)))
        response = await self.client.delete(f"/contacts/{uuid}", headers=self.tenant.headers)
        assert response.status_code in (200, 404), response.text

    async def any(self) -> None:
        write = self.rng.choices(
            [self.new_contact, self.create, self.batch, self.update, self.delete, self.import_rows, self.purge,
             self.claim, self.delete_contact],
            weights=[3, 10, 4, 8, 5, 2, 1, 2, 1],
        )[0]
        await write()


async def test_kept_spans_equal_counting_afresh_after_random_writes(client, app, tenant):
    writer = Writer(client, app, tenant, seed=23)
    for _ in range(4):
        await writer.new_contact()
    for step in range(160):
        await writer.any()
        if step % 40 == 39:
            kept, afresh = await kept_and_afresh(client, tenant)
            assert kept == afresh, step
            assert await new_contacts_by_day(client, app, tenant) == first_days(afresh), step
    kept, afresh = await kept_and_afresh(client, tenant)
    assert kept == afresh
    assert await new_contacts_by_day(client, app, tenant) == first_days(afresh)
    assert any(count for count, _, _ in kept.values())  # the writes left visits to compare
    # An audience reads the same kept values.
    visited = (await client.get("/contacts", params={"visit_count[gte]": 1, "limit": 100},
                                headers=tenant.headers)).json()
    assert {c["uuid"] for c in visited["data"]} == {uuid for uuid, (count, _, _) in afresh.items() if count}


async def test_kept_spans_equal_counting_afresh_after_writes_at_once(client, app, tenant):
    """Many writes for a few contacts at once (on PostgreSQL each in a transaction of its own, on
    its own connection): a delete or a moved start reads the span afresh under the count row's lock,
    and a create widens it, whichever commits first."""
    writer = Writer(client, app, tenant, seed=5)
    for _ in range(2):
        await writer.new_contact()
    for _ in range(20):
        await writer.create()
    for round_ in range(4):
        writes = [writer.create, writer.create, writer.update, writer.update, writer.delete, writer.batch]
        await asyncio.gather(*(writer.rng.choice(writes)() for _ in range(24)))
        kept, afresh = await kept_and_afresh(client, tenant)
        assert kept == afresh, round_
