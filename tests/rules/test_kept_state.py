"""What rules keep of a contact (contact_visit_counts.rule_state) against counting afresh: random creates, batches,
deletes, moved sources and starts and paused rules, and after each the firings a model of the
rules' definitions gives, counted from every visit there is."""

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import bindparam, select

from footfall.db import Statement, per_dialect
from footfall.kit.time import utcnow
from footfall.rules.repository import KeptState
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from footfall.tables import contact_visit_counts, contacts
from footfall.visits import service as visits_service
from footfall.visits.schemas import VisitUpdate
from tests.conftest import make_tenant
from tests.rules.test_rules import get_account_of, new_contact, rule, visit

# The account's contacts' count rows: their writes and what their rules kept.
KEPT_STATES = per_dialect(lambda dialect: Statement(
    select(contacts.c.uuid, contact_visit_counts.c.writes, contact_visit_counts.c.rule_state)
    .select_from(contact_visit_counts.join(contacts, contacts.c.id == contact_visit_counts.c.contact_id))
    .where(contact_visit_counts.c.account_id == bindparam("account_id")),
    dialect=dialect, bulk=True))


@dataclass
class Visit:
    seq: int  # the order visits were recorded in (their ids' order)
    uuid: str
    contact: str
    shop: str
    source: str | None
    starts_at: datetime
    alive: bool = True


@dataclass
class Model:
    """Each rule's firings as its definition gives them, from every visit there is."""

    rules: dict[str, dict]
    visits: list[Visit] = field(default_factory=list)
    active: dict[str, bool] = field(default_factory=dict)
    fired: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)  # -> [(key, visit seq)]

    def qualifies(self, rule: dict, visit: Visit) -> bool:
        return ((rule["shop_uuid"] is None or rule["shop_uuid"] == visit.shop)
                and (rule["source"] is None or rule["source"] == visit.source))

    def record(self, new: Visit) -> None:
        self.visits.append(new)
        for uuid, definition in self.rules.items():
            if not self.active[uuid] or not self.qualifies(definition, new):
                continue
            counted = [visit for visit in self.visits if visit.alive and visit.contact == new.contact
                       and visit.seq <= new.seq and self.qualifies(definition, visit)]
            fired = self.fired.setdefault((uuid, new.contact), [])
            keys = {key for key, _ in fired}
            if definition["kind"] == "milestone":
                total = len(counted)
                every = definition["every"]
                reached = total % every == 0 if every else total in definition["at"]
                if reached and total not in keys:
                    fired.append((total, new.seq))
            else:
                last = max((seq for _, seq in fired), default=0)
                start = new.starts_at - timedelta(days=definition["within_days"])
                in_window = [visit for visit in counted
                             if visit.seq > last and start < visit.starts_at <= new.starts_at]
                if len(in_window) >= definition["count"]:
                    fired.append((len(fired) + 1, new.seq))

    def reached(self, rule_uuid: str, contact: str) -> list[int]:
        return sorted(key for key, _ in self.fired.get((rule_uuid, contact), []))


# Starts at random over 40 days, or mostly each after the last (as visits are recorded as they
# happen: the frequency rules decide from the latest starts they keep), now and then one backdated.
@pytest.mark.parametrize("order", ["random", "mostly in order"])
async def test_what_rules_keep_agrees_with_counting_afresh(client, app, order):
    tenant = await make_tenant(app)
    account = await get_account_of(app, tenant)
    async with app.state.database.transaction(write=True) as tx:
        other_shop = str((await shops.create(tx, account, ShopCreate(name="Other"))).uuid)
    made = [
        await rule(client, tenant, kind="milestone", every=3, source="kiosk"),
        await rule(client, tenant, kind="milestone", at=[2, 4, 7, 11], shop_uuid=other_shop),
        await rule(client, tenant, kind="frequency", count=2, within_days=10),
        await rule(client, tenant, kind="frequency", count=3, within_days=20, source="kiosk"),
        await rule(client, tenant, kind="milestone", every=4),
        # A count above what a rule keeps starts for (rules.service.KEPT_STARTS): counted from the visits.
        await rule(client, tenant, kind="frequency", count=12, within_days=40),
    ]
    model = Model({made_rule["uuid"]: made_rule for made_rule in made})
    model.active = {uuid: True for uuid in model.rules}
    the_contacts = [tenant.contact_uuid, await new_contact(client, tenant)]
    rng = random.Random(23)
    now = utcnow().replace(microsecond=0)
    seq = 0
    latest = now - timedelta(days=80)
    kept_starts: list[list[int]] = []  # the latest starts kept, at each check

    async def count_rows() -> dict[str, tuple[int, KeptState | None]]:
        """Each of the account's contacts' writes and what its rules kept, by contact uuid."""
        async with app.state.database.transaction(write=False) as tx:
            rows = await tx.fetch(KEPT_STATES[tx.dialect], {"account_id": account.id})
        return {str(row.uuid): (row.writes, KeptState.read(row.rule_state)) for row in rows}

    async def kept() -> list:
        return [kept for _, state in (await count_rows()).values() if state is not None
                for kept in state.rules.values()]

    def starts() -> datetime:
        nonlocal latest
        if order == "random" or rng.random() < 0.1:
            return now - timedelta(hours=rng.randrange(0, 40 * 24))
        latest += timedelta(hours=rng.randrange(0, 18))
        return latest

    def fields() -> dict:
        return {"contact_uuid": rng.choice(the_contacts), "shop_uuid": rng.choice([tenant.shop_uuid, other_shop]),
                "source": rng.choice(["kiosk", "kiosk", "till", None]), "starts_at": starts().isoformat()}

    def add(body: dict, uuid: str) -> None:
        nonlocal seq
        seq += 1
        model.record(Visit(seq, uuid, body["contact_uuid"], body["shop_uuid"], body["source"],
                           datetime.fromisoformat(body["starts_at"])))

    for step in range(160):
        alive = [visit for visit in model.visits if visit.alive]
        roll = rng.random()
        if roll < 0.55 or not alive:
            body = fields()
            response = await client.post("/visits", headers=tenant.headers, json=body)
            assert response.status_code == 201, response.text
            add(body, response.json()["data"]["uuid"])
        elif roll < 0.65:
            bodies = [fields() for _ in range(rng.randrange(1, 5))]
            response = await client.post("/visits/batch", headers=tenant.headers, json={"visits": bodies})
            assert response.status_code == 200, response.text
            for body, outcome in zip(bodies, response.json()["data"], strict=True):
                assert outcome["status"] == 201, outcome
                add(body, outcome["data"]["uuid"])
        elif roll < 0.75:
            gone = rng.choice(alive)
            response = await client.delete(f"/visits/{gone.uuid}", headers=tenant.headers)
            assert response.status_code == 200, response.text
            gone.alive = False
        elif roll < 0.85:
            moved = rng.choice(alive)
            moved.source = rng.choice(["kiosk", "till"])
            response = await client.put(f"/visits/{moved.uuid}", headers=tenant.headers, json={"source": moved.source})
            assert response.status_code == 200, response.text
        elif roll < 0.95:
            moved = rng.choice(alive)
            moved.starts_at = starts()
            response = await client.put(f"/visits/{moved.uuid}", headers=tenant.headers,
                                        json={"starts_at": moved.starts_at.isoformat()})
            assert response.status_code == 200, response.text
        else:
            paused = rng.choice(list(model.rules))
            model.active[paused] = not model.active[paused]
            status = "ACTIVE" if model.active[paused] else "INACTIVE"
            response = await client.put(f"/visit-rules/{paused}", headers=tenant.headers, json={"status": status})
            assert response.status_code == 200, response.text
        if step % 20 == 19 or step == 159:
            for contact in the_contacts:
                response = await client.get(f"/contacts/{contact}/visit-rules", headers=tenant.headers)
                reached = {standing["rule"]["uuid"]: standing["reached"] for standing in response.json()["data"]}
                assert reached == {uuid: model.reached(uuid, contact) for uuid in model.rules}, f"step {step}"
            kept_starts += [kept.latest_starts for kept in await kept() if kept.latest_starts is not None]
    assert sum(len(fired) for fired in model.fired.values()) > 30  # the rules fired, often
    assert model.reached(made[-1]["uuid"], the_contacts[0]) or model.reached(made[-1]["uuid"], the_contacts[1])
    assert await kept()  # and kept their state
    # A create under the frequency rule of every shop and source keeps its state at the writes the
    # count row has then, so the contact's next visit trusts it rather than counting afresh.
    frequency = made[2]["uuid"]
    if not model.active[frequency]:
        response = await client.put(f"/visit-rules/{frequency}", headers=tenant.headers, json={"status": "ACTIVE"})
        assert response.status_code == 200, response.text
    response = await client.post("/visits", headers=tenant.headers,
                                 json={**fields(), "contact_uuid": the_contacts[0]})
    assert response.status_code == 201, response.text
    writes, state = (await count_rows())[the_contacts[0]]
    assert state is not None and state.writes == writes and UUID(frequency).hex in state.rules
    if order == "mostly in order":
        assert any(kept_starts)  # the latest starts too, once a count of the window learnt them


@pytest.mark.parametrize("change", ["delete", "source"])
async def test_a_change_in_flight_is_counted_by_the_create_that_waits_for_it(client, app, change):
    """A delete or a moved source holds the visit's contact against a create under rules: the create
    waits for it before it counts, so what the rule keeps is counted without the change's visit.
    (A create that waited inside its counting statement would count in a snapshot from before the
    change, and keep that count.)"""
    tenant = await make_tenant(app)
    kiosk = await rule(client, tenant, kind="milestone", every=3, source="kiosk")
    contact = await new_contact(client, tenant)
    account = await get_account_of(app, tenant)
    made = [await visit(client, tenant, contact, source="kiosk") for _ in range(3)]  # fires 3

    async with app.state.database.transaction(write=True) as tx:
        if change == "delete":
            await visits_service.delete(tx, account, UUID(made[0]["uuid"]))
        else:
            await visits_service.update(tx, account, UUID(made[0]["uuid"]), VisitUpdate(source="till"))
        creating = asyncio.create_task(client.post("/visits", headers=tenant.headers, json={
            "contact_uuid": contact, "shop_uuid": tenant.shop_uuid, "source": "kiosk"}))
        await asyncio.sleep(0.3)
    assert (await creating).status_code == 201
    for _ in range(2):  # the kiosk visits now number 5
        await visit(client, tenant, contact, source="kiosk")
    response = await client.get(f"/contacts/{contact}/visit-rules", headers=tenant.headers)
    [standing] = [found for found in response.json()["data"] if found["rule"]["uuid"] == kiosk["uuid"]]
    assert (standing["count"], standing["reached"]) == (5, [3])
    await visit(client, tenant, contact, source="kiosk")
    response = await client.get(f"/contacts/{contact}/visit-rules", headers=tenant.headers)
    [standing] = [found for found in response.json()["data"] if found["rule"]["uuid"] == kiosk["uuid"]]
    assert (standing["count"], standing["reached"]) == (6, [3, 6])
