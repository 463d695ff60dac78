"""Visit rules, a contact's progress, the rules' webhook events, audiences and the contacts export,
sync and async, against a real Footfall over SQLite and over PostgreSQL."""

import csv
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from footfall_client import (
    AsyncClient,
    Client,
    Contact,
    NotFoundError,
    Page,
    RuleProgress,
    ValidationError,
    VisitRule,
    webhooks,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(footfall_on):
    base_url, demo = footfall_on
    with Client(base_url, demo["token"]) as client:
        yield client


@pytest.fixture
def receiver():
    """(url, received): a webhook receiver that keeps each delivery's path, headers and body."""
    received: list[tuple[str, dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def events_of(received, subscription, contact_uuid: str, count: int = 1) -> list[dict]:
    """The verified events of the subscription about this contact, once `count` of them came (30 s at most)."""
    path = subscription.url.split("/", 3)[3]
    deadline = time.monotonic() + 30
    while True:
        events = [event for event in (webhooks.verify(headers, body, subscription.secret)
                                      for to, headers, body in list(received) if to == f"/{path}")
                  if event["type"] == subscription.event_type and event["data"]["contact"]["uuid"] == contact_uuid]
        if len(events) >= count or time.monotonic() > deadline:
            assert len(events) >= count, f"{len(events)} {subscription.event_type} events of {count}"
            return events
        time.sleep(0.05)


def test_visit_rules_create_get_list_iter_update_delete(client, footfall_on):
    _, demo = footfall_on
    every = client.visit_rules.create(unique("every 10th"), "milestone", every=10)
    assert isinstance(every, VisitRule) and (every.kind, every.every, every.at, every.status) == (
        "milestone", 10, None, "ACTIVE")
    assert every.created_at.tzinfo is not None
    at = client.visit_rules.create(unique("at"), "milestone", at=[25, 5, 5], shop_uuid=demo["shops"][0],
                                   source="Kiosk", status="INACTIVE")
    assert (at.at, at.shop_uuid, at.source, at.status) == ([5, 25], demo["shops"][0], "Kiosk", "INACTIVE")
    frequency = client.visit_rules.create(unique("three in a week"), "frequency", count=3, within_days=7)
    assert (frequency.count, frequency.within_days, frequency.every) == (3, 7, None)
    lapse = client.visit_rules.create(unique("win back"), "lapse", after_days=30)
    assert (lapse.after_days, lapse.min_visits) == (30, 1)
    assert client.visit_rules.get(at.uuid) == at

    page = client.visit_rules.list(limit=2)
    assert isinstance(page, Page) and page.per_page == 2 and page.total >= 4
    assert [rule.uuid for rule in page.items] == [lapse.uuid, frequency.uuid]  # newest first
    every_rule = list(client.visit_rules.iter(limit=3))
    assert len(every_rule) == page.total and {every.uuid, at.uuid} <= {rule.uuid for rule in every_rule}

    renamed = client.visit_rules.update(at.uuid, name="Fifth and 25th", status="ACTIVE")
    assert renamed == VisitRule(**{**at.__dict__, "name": "Fifth and 25th", "status": "ACTIVE"})
    with pytest.raises(ValidationError) as refused:
        client.visit_rules.update(at.uuid, every=3)
    assert refused.value.code == 1003 and "every" in refused.value.errors
    with pytest.raises(ValidationError) as refused:
        client.visit_rules.create("both", "milestone", every=2, at=[3])
    assert "every" in refused.value.errors
    with pytest.raises(ValidationError) as refused:
        client.visit_rules.create("wrong kind", "frequency", count=3, within_days=7, after_days=2)
    assert "after_days" in refused.value.errors
    with pytest.raises(NotFoundError):
        client.visit_rules.create("no shop", "milestone", every=2, shop_uuid=str(uuid.uuid4()))

    for rule in (every, at, frequency, lapse):
        assert client.visit_rules.delete(rule.uuid) is None
    with pytest.raises(NotFoundError) as gone:
        client.visit_rules.get(at.uuid)
    assert gone.value.code == 91301
    with pytest.raises(NotFoundError):
        client.visit_rules.delete(at.uuid)


def test_a_milestone_its_event_and_the_contacts_progress(client, footfall_on, receiver):
    _, demo = footfall_on
    url, received = receiver
    source = unique("milestone")
    subscription = client.webhook_subscriptions.create(unique("milestones"), "visit_milestone", f"{url}/milestone")
    rule = client.visit_rules.create("Every 2nd visit", "milestone", every=2, source=source)
    contact = client.contacts.create(f"{unique('gary')}@bikinibottom.sea")
    first = client.visits.create(contact.uuid, demo["shops"][0], source=source)
    [progress] = [p for p in client.contacts.rule_progress(contact.uuid) if p.rule.uuid == rule.uuid]
    assert isinstance(progress, RuleProgress) and progress.rule == rule
    assert (progress.count, progress.reached, progress.next_at, progress.lapsed) == (1, [], 2, None)
    assert progress.last_visit_at == first.starts_at
    second = client.visits.create(contact.uuid, demo["shops"][1], source=source)
    client.visits.create(contact.uuid, demo["shops"][1], source="elsewhere")  # does not count

    [event] = events_of(received, subscription, contact.uuid)
    assert event["data"]["rule"] == {"uuid": rule.uuid, "name": "Every 2nd visit", "kind": "milestone"}
    assert event["data"]["contact"] == {"uuid": contact.uuid, "email": contact.email}
    assert event["data"]["count"] == 2 and event["data"]["visit"]["uuid"] == second.uuid
    [progress] = [p for p in client.contacts.rule_progress(contact.uuid) if p.rule.uuid == rule.uuid]
    assert (progress.count, progress.reached, progress.next_at) == (2, [2], 4)
    with pytest.raises(NotFoundError):
        client.contacts.rule_progress(str(uuid.uuid4()))
    client.webhook_subscriptions.delete(subscription.uuid)
    client.visit_rules.delete(rule.uuid)


def test_a_lapse_and_a_return_as_events(client, footfall_on, receiver):
    _, demo = footfall_on
    url, received = receiver
    source = unique("lapse")
    lapsed_hook = client.webhook_subscriptions.create(unique("lapsed"), "contact_lapsed", f"{url}/lapsed")
    returned_hook = client.webhook_subscriptions.create(unique("returned"), "contact_returned", f"{url}/returned")
    rule = client.visit_rules.create("Gone a day", "lapse", after_days=1, source=source)
    contact = client.contacts.create(f"{unique('plankton')}@chumbucket.sea")
    ten_days_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    client.visits.create(contact.uuid, demo["shops"][0], source=source, starts_at=ten_days_ago)

    [lapsed] = events_of(received, lapsed_hook, contact.uuid)  # the worker's next pass
    assert lapsed["data"]["rule"]["uuid"] == rule.uuid and lapsed["data"]["days"] == 10
    assert datetime.fromisoformat(lapsed["data"]["last_visit_at"]) == ten_days_ago
    [progress] = [p for p in client.contacts.rule_progress(contact.uuid) if p.rule.uuid == rule.uuid]
    assert (progress.lapsed, progress.count, progress.next_at) == (True, 1, None)

    back = client.visits.create(contact.uuid, demo["shops"][2], source=source)
    [returned] = events_of(received, returned_hook, contact.uuid)
    assert returned["data"]["visit"]["uuid"] == back.uuid and returned["data"]["days_away"] == 10
    assert returned["data"]["rule"] == {"uuid": rule.uuid, "name": "Gone a day", "kind": "lapse"}
    [progress] = [p for p in client.contacts.rule_progress(contact.uuid) if p.rule.uuid == rule.uuid]
    assert (progress.lapsed, progress.count) == (False, 2)
    for subscription in (lapsed_hook, returned_hook):
        client.webhook_subscriptions.delete(subscription.uuid)
    client.visit_rules.delete(rule.uuid)


def make_audience(client, demo, year: int) -> tuple[Contact, Contact, Contact]:
    """Three new contacts with visits in a year of their own (no other test's visits reach it):
    three, one and none."""
    regular, once, never = (client.contacts.create(f"{unique(name)}@krabs.sea")
                            for name in ("regular", "once", "never"))
    for month, shop in ((1, 0), (2, 0), (3, 1)):
        client.visits.create(regular.uuid, demo["shops"][shop], starts_at=datetime(year, month, 1, 12, tzinfo=UTC))
    client.visits.create(once.uuid, demo["shops"][2], starts_at=datetime(year, 6, 1, 12, tzinfo=UTC))
    return regular, once, never


def first_visit_in(year: int) -> dict:
    return {"first_visit_at_gte": datetime(year, 1, 1, tzinfo=UTC), "first_visit_at_lt": f"{year + 1}-01-01"}


def test_audiences_on_the_list_and_iter(client, footfall_on):
    _, demo = footfall_on
    regular, once, never = make_audience(client, demo, 1998)
    in_1998 = first_visit_in(1998)
    page = client.contacts.list(sort="-visit_count", **in_1998)
    assert [c.uuid for c in page.items] == [regular.uuid, once.uuid] and page.total == 2
    assert page.items[0] == Contact(regular.uuid, regular.email, 3, datetime(1998, 1, 1, 12, tzinfo=UTC),
                                    datetime(1998, 3, 1, 12, tzinfo=UTC))
    assert [c.uuid for c in client.contacts.list(sort="last_visit_at", **in_1998).items] == [regular.uuid, once.uuid]
    assert [c.uuid for c in client.contacts.list(visit_count_gte=2, **in_1998).items] == [regular.uuid]
    assert [c.uuid for c in client.contacts.list(last_visit_at_gte="1998-04-01", **in_1998).items] == [once.uuid]
    at_shop = client.contacts.list(shop_uuid=demo["shops"][1], **in_1998).items
    assert [(c.uuid, c.visit_count, c.first_visit_at.month) for c in at_shop] == [(regular.uuid, 1, 3)]
    assert [c.uuid for c in client.contacts.iter(limit=1, sort="first_visit_at", **in_1998)] == [regular.uuid,
                                                                                                 once.uuid]
    without_visits = {c.uuid for c in client.contacts.iter(visit_count_lte=0)}
    assert never.uuid in without_visits and regular.uuid not in without_visits
    with pytest.raises(ValidationError) as refused:
        client.contacts.list(sort="email")
    assert refused.value.code == 1003 and "sort" in refused.value.errors
    with pytest.raises(ValidationError) as refused:
        client.contacts.list(visit_count_gte=-1)
    assert "visit_count[gte]" in refused.value.errors


def test_the_contacts_export_streams_lines(client, footfall_on):
    _, demo = footfall_on
    regular, once, _ = make_audience(client, demo, 1996)
    in_1996 = first_visit_in(1996)
    lines = list(client.contacts.export(format="csv", **in_1996))
    assert lines[0] == "uuid,email,visit_count,first_visit_at,last_visit_at"
    rows = list(csv.DictReader(lines))
    assert [(row["uuid"], row["email"], row["visit_count"]) for row in rows] == [
        (regular.uuid, regular.email, "3"), (once.uuid, once.email, "1")]  # in the order stored
    assert rows[0]["first_visit_at"] == "1996-01-01T12:00:00+00:00"
    exported = [json.loads(line) for line in client.contacts.export(visit_count_gte=3, **in_1996)]
    assert exported == [{"uuid": regular.uuid, "email": regular.email, "visit_count": 3,
                         "first_visit_at": "1996-01-01T12:00:00+00:00", "last_visit_at": "1996-03-01T12:00:00+00:00"}]
    everyone = client.contacts.list(limit=0).total
    assert sum(1 for _ in client.contacts.export()) == everyone
    with pytest.raises(ValidationError) as refused:
        list(client.contacts.export(format="xml"))
    assert "format" in refused.value.errors


def test_the_export_is_retried_until_its_answer_begins(footfall, proxy):
    _, demo = footfall
    proxy.plan = [("status", 503, {"Retry-After": "0"})]
    with Client(proxy.url, demo["token"]) as client:
        client._policy.sleep_scale = 0
        lines = list(client.contacts.export(format="csv"))
    assert lines[0].startswith("uuid,") and len(lines) > 1
    assert [path.split("?")[0] for _, path, _ in proxy.seen] == ["/api/v3/oauth/clients/contacts/export"] * 2


async def test_the_async_client_has_rules_progress_audiences_and_the_export(footfall_on):
    base_url, demo = footfall_on
    async with AsyncClient(base_url, demo["token"]) as client:
        rule = await client.visit_rules.create(unique("async"), "frequency", count=2, within_days=3)
        assert (await client.visit_rules.get(rule.uuid)) == rule
        assert (await client.visit_rules.update(rule.uuid, status="INACTIVE")).status == "INACTIVE"
        assert rule.uuid in {r.uuid async for r in client.visit_rules.iter(limit=1)}
        assert (await client.visit_rules.list()).total >= 1
        progress = await client.contacts.rule_progress(demo["contacts"][0])
        assert rule.uuid in {p.rule.uuid for p in progress}
        contact = await client.contacts.create(f"{unique('async')}@krabs.sea")
        await client.visits.create(contact.uuid, demo["shops"][0], starts_at="1997-05-01T10:00:00Z")
        in_1997 = {"first_visit_at_gte": "1997-01-01", "first_visit_at_lt": "1998-01-01"}
        assert [c.uuid for c in (await client.contacts.list(**in_1997)).items] == [contact.uuid]
        assert [c.uuid async for c in client.contacts.iter(**in_1997)] == [contact.uuid]
        lines = [line async for line in client.contacts.export(format="csv", **in_1997)]
        assert len(lines) == 2 and lines[1].startswith(f"{contact.uuid},{contact.email},1,")
        with pytest.raises(ValidationError):
            [line async for line in client.contacts.export(format="xml")]
        await client.visit_rules.delete(rule.uuid)


def test_event_types_are_the_servers(footfall):
    base_url, _ = footfall
    document = httpx.get(f"{base_url}/openapi.json").json()
    declared = document["components"]["schemas"]["SubscriptionCreate"]["properties"]["event_type"]["enum"]
    assert list(webhooks.EVENT_TYPES) == declared
