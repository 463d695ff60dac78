"""Visit rules through HTTP: the resource, its errors, and each kind firing exactly once (the outbox
records every event of a subscribed type; no worker runs here)."""

import asyncio
import json
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import bindparam, func, select

from footfall.accounts.service import get_account
from footfall.contacts.repository import ContactRepository
from footfall.db import Statement, per_dialect
from footfall.kit.time import utcnow
from footfall.rules.lapses import lapse_pass
from footfall.rules.repository import MAX_CONTACT_ID, RuleRepository
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from footfall.tables import visit_rule_contacts, visit_rule_firings, webhook_events
from footfall.testing.serving import footfall_json
from footfall.visits import service as visits_service
from footfall.visits.schemas import VisitCreate
from tests.conftest import make_tenant

EVENTS = per_dialect(lambda dialect: Statement(
    select(webhook_events.c.type, webhook_events.c.body)
    .where(webhook_events.c.account_id == bindparam("account_id")).order_by(webhook_events.c.id),
    dialect=dialect, bulk=True))
RULE_EVENTS = ("visit_milestone", "contact_lapsed", "contact_returned")


async def account_id(app, tenant) -> int:
    async with app.state.database.transaction(write=False) as tx:
        return (await get_account(tx, UUID(tenant.account_uuid))).id


async def events(app, tenant, kind: str | None = None) -> list[dict]:
    """The data of the account's rule events, oldest first (of one type, when given)."""
    async with app.state.database.transaction(write=False) as tx:
        rows = await tx.fetch(EVENTS[tx.dialect], {"account_id": await account_id(app, tenant)})
    return [json.loads(row.body)["data"] | {"type": row.type} for row in rows
            if row.type in RULE_EVENTS and (kind is None or row.type == kind)]


async def subscribe(client, tenant) -> None:
    for event_type in RULE_EVENTS:
        response = await client.post("/webhook-subscriptions", headers=tenant.headers, json={
            "name": event_type, "event_type": event_type, "url": "http://127.0.0.1:9/hook"})
        assert response.status_code == 201, response.text


async def rule(client, tenant, **fields) -> dict:
    response = await client.post("/visit-rules", headers=tenant.headers, json={"name": "a rule", **fields})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def visit(client, tenant, contact_uuid: str | None = None, **fields) -> dict:
    response = await client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": contact_uuid or tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **fields})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def new_contact(client, tenant) -> str:
    response = await client.post("/contacts", headers=tenant.headers, json={"email": f"{uuid4().hex}@rules.sea"})
    return response.json()["data"]["uuid"]


async def milestone_counts(app, tenant, rule_uuid: str) -> list[int]:
    return [event["count"] for event in await events(app, tenant, "visit_milestone")
            if event["rule"]["uuid"] == rule_uuid]


# The resource

async def test_a_rule_is_made_shown_listed_updated_and_deleted(client, tenant):
    made = await rule(client, tenant, kind="milestone", at=[10, 1, 5, 5])
    assert made == {
        "uuid": made["uuid"], "name": "a rule", "kind": "milestone", "every": None, "at": [1, 5, 10], "count": None,
        "within_days": None, "after_days": None, "min_visits": None, "shop_uuid": None, "source": None,
        "status": "ACTIVE", "created_at": made["created_at"]}
    lapse = await rule(client, tenant, kind="lapse", after_days=30, shop_uuid=tenant.shop_uuid, source="till")
    assert (lapse["min_visits"], lapse["shop_uuid"], lapse["source"]) == (1, tenant.shop_uuid, "till")

    shown = await client.get(f"/visit-rules/{made['uuid']}", headers=tenant.headers)
    assert shown.status_code == 200 and shown.json() == {"data": made, "meta": []}
    listed = (await client.get("/visit-rules", params={"limit": 1}, headers=tenant.headers)).json()
    assert [r["uuid"] for r in listed["data"]] == [lapse["uuid"]]  # newest first
    assert listed["meta"]["total"] == 2 and listed["meta"]["last_page"] == 2

    updated = await client.put(f"/visit-rules/{made['uuid']}", headers=tenant.headers,
                               json={"name": "tenth", "status": "INACTIVE"})
    assert updated.status_code == 200
    assert (updated.json()["data"]["name"], updated.json()["data"]["status"]) == ("tenth", "INACTIVE")
    refused = await client.put(f"/visit-rules/{made['uuid']}", headers=tenant.headers, json={"every": 3})
    assert refused.status_code == 422 and "every" in refused.json()["errors"]

    deleted = await client.delete(f"/visit-rules/{made['uuid']}", headers=tenant.headers)
    assert deleted.status_code == 200 and deleted.json() == {"data": [], "meta": []}
    gone = await client.get(f"/visit-rules/{made['uuid']}", headers=tenant.headers)
    assert gone.status_code == 404 and gone.json()["code"] == 91301


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "streak", "every": 3}, "kind"),
    ({"kind": "milestone"}, "every"),
    ({"kind": "milestone", "every": 3, "at": [3]}, "every"),
    ({"kind": "milestone", "every": 0}, "every"),
    ({"kind": "milestone", "every": -2}, "every"),
    ({"kind": "milestone", "every": 2**63}, "every"),
    ({"kind": "milestone", "at": []}, "at"),
    ({"kind": "milestone", "at": list(range(1, 22))}, "at"),
    ({"kind": "milestone", "at": [0, 5]}, "at"),
    ({"kind": "milestone", "every": 3, "after_days": 5}, "after_days"),
    ({"kind": "frequency", "count": 3}, "within_days"),
    ({"kind": "frequency", "within_days": 30}, "count"),
    ({"kind": "frequency", "count": 3, "within_days": 0}, "within_days"),
    ({"kind": "lapse"}, "after_days"),
    ({"kind": "lapse", "after_days": 30, "min_visits": 0}, "min_visits"),
    ({"kind": "lapse", "after_days": 30, "every": 2}, "every"),
    ({"kind": "lapse", "after_days": 30, "status": "PAUSED"}, "status"),
    ({"kind": "lapse", "after_days": 30, "source": "a\x00b"}, "source"),
    ({"kind": "lapse", "after_days": 30, "name": ""}, "name"),
])
async def test_bad_rules_are_1003_on_the_field(client, tenant, body, field):
    response = await client.post("/visit-rules", headers=tenant.headers, json={"name": "bad", **body})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003, response.json()
    assert field in {key.split(".")[0] for key in response.json()["errors"]}, response.json()


async def test_an_unknown_shop_is_404_and_another_accounts_rule_is_404(client, tenant, other_tenant):
    response = await client.post("/visit-rules", headers=tenant.headers,
                                 json={"name": "x", "kind": "lapse", "after_days": 3, "shop_uuid": str(uuid4())})
    assert response.status_code == 404 and response.json()["code"] == 1008
    theirs = await client.post("/visit-rules", headers=tenant.headers,
                               json={"name": "x", "kind": "lapse", "after_days": 3,
                                     "shop_uuid": other_tenant.shop_uuid})
    assert theirs.status_code == 404
    mine = await rule(client, tenant, kind="milestone", every=2)
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, f"/visit-rules/{mine['uuid']}", headers=other_tenant.headers,
                                         json={"name": "x"} if method == "PUT" else None)
        assert response.status_code == 404, method
    progress = await client.get(f"/contacts/{tenant.contact_uuid}/visit-rules", headers=other_tenant.headers)
    assert progress.status_code == 404 and progress.json()["code"] == 55031


# Milestones: exactly once, never retroactive

async def test_twelve_concurrent_creates_fire_every_third_count_once(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    every_three = await rule(client, tenant, kind="milestone", every=3)
    answers = await asyncio.gather(*(client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid}) for _ in range(12)))
    assert [answer.status_code for answer in answers] == [201] * 12
    assert sorted(await milestone_counts(app, tenant, every_three["uuid"])) == [3, 6, 9, 12]
    fired = await events(app, tenant, "visit_milestone")
    assert {event["contact"]["uuid"] for event in fired} == {tenant.contact_uuid}
    assert all(event["visit"]["contact"]["uuid"] == tenant.contact_uuid for event in fired)
    # Again for another contact, now that the process knows the account has rules (the lookup holds
    # the contact itself: rules.service.expects_rules).
    other = await new_contact(client, tenant)
    answers = await asyncio.gather(*(client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": other, "shop_uuid": tenant.shop_uuid}) for _ in range(12)))
    assert [answer.status_code for answer in answers] == [201] * 12
    assert sorted(event["count"] for event in await events(app, tenant, "visit_milestone")
                  if event["contact"]["uuid"] == other) == [3, 6, 9, 12]


async def test_a_batch_fires_its_items_counts_in_order(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    every_three = await rule(client, tenant, kind="milestone", every=3)
    items = [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "source": f"item-{n}"}
             for n in range(12)]
    response = await client.post("/visits/batch", headers=tenant.headers, json={"visits": items})
    assert response.status_code == 200
    fired = [event for event in await events(app, tenant, "visit_milestone")
             if event["rule"]["uuid"] == every_three["uuid"]]
    assert [(event["count"], event["visit"]["source"]) for event in fired] == [
        (3, "item-2"), (6, "item-5"), (9, "item-8"), (12, "item-11")]


async def test_a_rule_made_later_fires_from_the_next_count_only(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    for _ in range(7):
        await visit(client, tenant)
    every_five = await rule(client, tenant, kind="milestone", every=5)
    listed = await rule(client, tenant, kind="milestone", at=[1, 5, 10])
    for _ in range(3):
        await visit(client, tenant)
    assert await milestone_counts(app, tenant, every_five["uuid"]) == [10]
    assert await milestone_counts(app, tenant, listed["uuid"]) == [10]


async def test_a_count_fires_once_ever_though_visits_are_deleted_and_made_again(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    every_two = await rule(client, tenant, kind="milestone", every=2)
    made = [await visit(client, tenant) for _ in range(2)]
    assert await milestone_counts(app, tenant, every_two["uuid"]) == [2]
    await client.delete(f"/visits/{made[1]['uuid']}", headers=tenant.headers)
    await visit(client, tenant)  # the count is 2 again
    await visit(client, tenant)  # and 3
    await visit(client, tenant)  # 4: new
    assert await milestone_counts(app, tenant, every_two["uuid"]) == [2, 4]


async def test_an_inactive_rule_fires_nothing_and_does_not_catch_up(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    every_two = await rule(client, tenant, kind="milestone", every=2, status="INACTIVE")
    for _ in range(3):
        await visit(client, tenant)
    assert await milestone_counts(app, tenant, every_two["uuid"]) == []
    await client.put(f"/visit-rules/{every_two['uuid']}", headers=tenant.headers, json={"status": "ACTIVE"})
    await visit(client, tenant)  # 4
    assert await milestone_counts(app, tenant, every_two["uuid"]) == [4]


async def test_shop_and_source_restrict_what_counts(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    async with app.state.database.transaction(write=True) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
        other_shop = await shops.create(tx, account, ShopCreate(name="Other"))
    kiosk = await rule(client, tenant, kind="milestone", every=2, source="kiosk", shop_uuid=tenant.shop_uuid)
    await visit(client, tenant, source="kiosk")
    await visit(client, tenant, source="till")
    response = await client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": tenant.contact_uuid, "shop_uuid": str(other_shop.uuid), "source": "kiosk"})
    assert response.status_code == 201
    assert await milestone_counts(app, tenant, kiosk["uuid"]) == []
    await visit(client, tenant, source="kiosk")
    assert await milestone_counts(app, tenant, kiosk["uuid"]) == [2]


# Frequency

async def test_frequency_fires_on_enough_visits_in_the_window_then_counts_afresh(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    three_in_a_month = await rule(client, tenant, kind="frequency", count=3, within_days=30)
    now = utcnow().replace(microsecond=0)
    await visit(client, tenant, starts_at=(now - timedelta(days=40)).isoformat())  # outside the window
    await visit(client, tenant, starts_at=(now - timedelta(days=10)).isoformat())
    await visit(client, tenant, starts_at=(now - timedelta(days=5)).isoformat())
    assert await milestone_counts(app, tenant, three_in_a_month["uuid"]) == []
    await visit(client, tenant, starts_at=now.isoformat())
    assert await milestone_counts(app, tenant, three_in_a_month["uuid"]) == [4]
    await visit(client, tenant)
    await visit(client, tenant)
    assert await milestone_counts(app, tenant, three_in_a_month["uuid"]) == [4]  # only two since it fired
    await visit(client, tenant)
    assert await milestone_counts(app, tenant, three_in_a_month["uuid"]) == [4, 7]
    progress = (await client.get(f"/contacts/{tenant.contact_uuid}/visit-rules", headers=tenant.headers)).json()
    [standing] = progress["data"]
    assert (standing["count"], standing["reached"], standing["next_at"]) == (7, [1, 2], None)


# Lapses

async def test_a_lapse_fires_once_then_a_return_rearms_it(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    away = await new_contact(client, tenant)
    long_ago = (utcnow() - timedelta(days=45)).replace(microsecond=0)
    await visit(client, tenant, away, starts_at=long_ago.isoformat())
    await visit(client, tenant)  # the tenant's own contact visits today
    lapse = await rule(client, tenant, kind="lapse", after_days=30)

    await asyncio.gather(lapse_pass(app.state.database), lapse_pass(app.state.database))  # two workers at once
    await lapse_pass(app.state.database)
    lapsed = await events(app, tenant, "contact_lapsed")
    assert [(event["rule"]["uuid"], event["contact"]["uuid"], event["days"]) for event in lapsed] == [
        (lapse["uuid"], away, 45)]
    assert lapsed[0]["last_visit_at"].startswith(long_ago.strftime("%Y-%m-%d"))

    progress = (await client.get(f"/contacts/{away}/visit-rules", headers=tenant.headers)).json()["data"]
    assert [(p["lapsed"], p["count"]) for p in progress] == [(True, 1)]

    back = await visit(client, tenant, away)
    returned = await events(app, tenant, "contact_returned")
    assert [(event["contact"]["uuid"], event["visit"]["uuid"], event["days_away"]) for event in returned] == [
        (away, back["uuid"], 45)]
    await visit(client, tenant, away)  # a second visit is no return
    await lapse_pass(app.state.database)
    assert len(await events(app, tenant, "contact_returned")) == 1
    assert len(await events(app, tenant, "contact_lapsed")) == 1

    # Lapsing again, later, fires again (and the tenant's own contact, seen today, lapses too).
    await lapse_pass(app.state.database, now=utcnow() + timedelta(days=31))
    later = [event["contact"]["uuid"] for event in await events(app, tenant, "contact_lapsed")][1:]
    assert sorted(later) == sorted([away, tenant.contact_uuid])


@pytest.mark.parametrize("source", [None, "Kiosk"], ids=["every source", "one source"])
async def test_a_visit_and_a_lapse_pass_at_once_never_leave_a_visitor_lapsed(client, app, source):
    """The pass holds the contacts it marks as a create under rules holds its contact, whichever
    comes first: a visit in flight keeps its contact from lapsing, and a pass in flight makes the
    visit a return."""
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    first, second = await new_contact(client, tenant), await new_contact(client, tenant)
    long_ago = (utcnow() - timedelta(days=45)).replace(microsecond=0)
    for contact in (first, second):
        await visit(client, tenant, contact, starts_at=long_ago.isoformat(), source="Kiosk")
    await rule(client, tenant, kind="lapse", after_days=30, source=source)
    await visit(client, tenant)  # the hint that the account has rules, as a running server has it
    account = await get_account_of(app, tenant)

    # A visit in flight (its transaction open), then a pass: the visitor does not lapse.
    async with app.state.database.transaction(write=True) as tx:
        await visits_service.create(tx, account, VisitCreate(
            contact_uuid=UUID(first), shop_uuid=UUID(tenant.shop_uuid), source="Kiosk"))
        passing = asyncio.create_task(lapse_pass(app.state.database))
        await asyncio.sleep(0.3)
    await passing
    assert [event["contact"]["uuid"] for event in await events(app, tenant, "contact_lapsed")] == [second]

    # A pass in flight (it has marked the contact), then a visit: the visit is a return.
    async with app.state.database.transaction(write=False) as tx:
        [lapse_rule] = [found for found in await RuleRepository(tx).lapse_rules() if found.account_id == account.id]
    await client.delete(f"/contacts/{second}", headers=tenant.headers)
    third = await new_contact(client, tenant)
    await visit(client, tenant, third, starts_at=long_ago.isoformat(), source="Kiosk")
    async with app.state.database.transaction(write=True) as tx:
        marked = await RuleRepository(tx).lapse(lapse_rule, 0, MAX_CONTACT_ID, utcnow() - timedelta(days=30), utcnow())
        assert [row.last_visit_at for row in marked] == [long_ago]
        visiting = asyncio.create_task(client.post("/visits", headers=tenant.headers, json={
            "contact_uuid": third, "shop_uuid": tenant.shop_uuid, "source": "Kiosk"}))
        await asyncio.sleep(0.3)
    assert (await visiting).status_code == 201
    assert [event["contact"]["uuid"] for event in await events(app, tenant, "contact_returned")] == [third]


async def get_account_of(app, tenant):
    async with app.state.database.transaction(write=False) as tx:
        return await get_account(tx, UUID(tenant.account_uuid))


async def test_min_visits_and_an_old_visit_imported_late(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    once = await new_contact(client, tenant)
    twice = await new_contact(client, tenant)
    long_ago = utcnow() - timedelta(days=60)
    await visit(client, tenant, once, starts_at=long_ago.isoformat())
    for _ in range(2):
        await visit(client, tenant, twice, starts_at=long_ago.isoformat())
    await rule(client, tenant, kind="lapse", after_days=30, min_visits=2, source=None)
    await lapse_pass(app.state.database)
    assert [event["contact"]["uuid"] for event in await events(app, tenant, "contact_lapsed")] == [twice]
    # History recorded late (a visit from before the latest) returns no one.
    await visit(client, tenant, twice, starts_at=(long_ago - timedelta(days=5)).isoformat())
    assert await events(app, tenant, "contact_returned") == []


# Progress, deletion, erasure

async def test_progress_shows_each_rule(client, app):
    tenant = await make_tenant(app)
    every_three = await rule(client, tenant, kind="milestone", every=3)
    listed = await rule(client, tenant, kind="milestone", at=[2, 4])
    for _ in range(3):
        await visit(client, tenant)
    response = await client.get(f"/contacts/{tenant.contact_uuid}/visit-rules", headers=tenant.headers)
    assert response.status_code == 200
    by_rule = {p["rule"]["uuid"]: p for p in response.json()["data"]}
    assert (by_rule[every_three["uuid"]]["count"], by_rule[every_three["uuid"]]["reached"],
            by_rule[every_three["uuid"]]["next_at"], by_rule[every_three["uuid"]]["lapsed"]) == (3, [3], 6, None)
    assert (by_rule[listed["uuid"]]["reached"], by_rule[listed["uuid"]]["next_at"]) == ([2], 4)
    assert by_rule[listed["uuid"]]["last_visit_at"] is not None
    unknown = await client.get(f"/contacts/{uuid4()}/visit-rules", headers=tenant.headers)
    assert unknown.status_code == 404


# A contact's rows in the rules' tables (neither has a foreign key to contacts).
ROWS_OF_CONTACT = {table.name: per_dialect(lambda dialect, table=table: Statement(
    select(func.count().label("rows")).select_from(table).where(table.c.contact_id == bindparam("contact_id")),
    dialect=dialect)) for table in (visit_rule_firings, visit_rule_contacts)}


async def test_deleting_a_contact_deletes_its_rule_state_and_gdpr_erases_its_events(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    await rule(client, tenant, kind="milestone", every=1)
    doomed_email = f"{uuid4().hex}@erased.sea"
    doomed = (await client.post("/contacts", headers=tenant.headers, json={"email": doomed_email})).json()["data"]
    await visit(client, tenant, doomed["uuid"])
    assert [event["contact"]["email"] for event in await events(app, tenant, "visit_milestone")] == [doomed_email]
    account = await get_account_of(app, tenant)
    async with app.state.database.transaction(write=False) as tx:
        doomed_id = (await ContactRepository(tx).get(account.id, UUID(doomed["uuid"]))).id
    response = await client.delete(f"/contacts/{doomed['uuid']}", params={"type": "GDPR"}, headers=tenant.headers)
    assert response.status_code == 200
    async with app.state.database.transaction(write=False) as tx:  # its firings and standing went with it
        for rows_of in ROWS_OF_CONTACT.values():
            assert await tx.fetchval(rows_of[tx.dialect], {"contact_id": doomed_id}) == 0
    bodies = json.dumps(await events(app, tenant))
    assert doomed_email not in bodies
    # A contact made again with the same email starts from nothing.
    again = (await client.post("/contacts", headers=tenant.headers, json={"email": doomed_email})).json()["data"]
    await visit(client, tenant, again["uuid"])
    progress = (await client.get(f"/contacts/{again['uuid']}/visit-rules", headers=tenant.headers)).json()["data"]
    assert [(p["count"], p["reached"]) for p in progress] == [(1, [1])]


async def test_a_frequency_rule_counts_from_its_own_last_firing_not_another_rules(client, app):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    await rule(client, tenant, kind="milestone", at=[1])  # fires at the first visit
    twice = await rule(client, tenant, kind="frequency", count=2, within_days=7)
    for _ in range(2):
        await visit(client, tenant)
    assert await milestone_counts(app, tenant, twice["uuid"]) == [2]



async def test_a_frequency_rule_of_one_source_tells_its_qualifying_count(client, app):
    """The event's count is the contact's visits of the rule's source, whether the rule counted them
    afresh (its first visit) or from what it kept (the visits after)."""
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    kiosk_twice = await rule(client, tenant, kind="frequency", count=2, within_days=7, source="Kiosk")
    for source in ("Till", "Kiosk", "Till", "Kiosk", "Kiosk", "Till", "Kiosk"):
        await visit(client, tenant, source=source)
    assert await milestone_counts(app, tenant, kiosk_twice["uuid"]) == [2, 4]


# Imports

async def test_an_import_counts_toward_rules_silently_unless_told_to_fire(client, app, database_url, tmp_path):
    tenant = await make_tenant(app)
    await subscribe(client, tenant)
    every_three = await rule(client, tenant, kind="milestone", every=3)
    history = tmp_path / "history.csv"
    history.write_text("contact_uuid,shop_uuid,starts_at\n" + "".join(
        f"{tenant.contact_uuid},{tenant.shop_uuid},2024-05-0{day}T10:00:00+00:00\n" for day in range(1, 5)))
    summary = footfall_json("visits", "import", str(history), "--account", tenant.account_uuid,
                            database_url=database_url)
    assert summary["imported"] == 4
    assert await milestone_counts(app, tenant, every_three["uuid"]) == []  # 3 was reached, silently
    progress = (await client.get(f"/contacts/{tenant.contact_uuid}/visit-rules", headers=tenant.headers)).json()
    assert progress["data"][0]["reached"] == [3]
    await visit(client, tenant)
    await visit(client, tenant)
    assert await milestone_counts(app, tenant, every_three["uuid"]) == [6]  # 3 does not fire late

    more = tmp_path / "more.csv"
    more.write_text("contact_uuid,shop_uuid,starts_at\n" + "".join(
        f"{tenant.contact_uuid},{tenant.shop_uuid},2024-06-0{day}T10:00:00+00:00\n" for day in range(1, 4)))
    footfall_json("visits", "import", str(more), "--account", tenant.account_uuid, "--fire-rules",
                  database_url=database_url)
    assert await milestone_counts(app, tenant, every_three["uuid"]) == [6, 9]
