"""The whole surface, sync and async, against a real Footfall."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from footfall_client import (
    AsyncClient,
    Client,
    Contact,
    NotFoundError,
    Page,
    Shop,
    Tombstone,
    Visit,
    WebhookSubscription,
)


@pytest.fixture
def client(footfall):
    base_url, demo = footfall
    with Client(base_url, demo["token"]) as client:
        yield client


def test_visits_create_get_update_list_and_iter(client, footfall):
    _, demo = footfall
    starts = datetime(2024, 5, 1, 22, 0, tzinfo=timezone(timedelta(hours=2)))
    visit = client.visits.create(demo["contacts"][0], demo["shops"][0], external_id="cli-1", source="Kiosk",
                                 starts_at=starts, ends_at=starts + timedelta(minutes=30))
    assert isinstance(visit, Visit) and visit.external_id == "cli-1" and visit.source == "Kiosk"
    assert visit.starts_at == datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
    assert visit.starts_at.tzinfo is not None and visit.created_at.tzinfo is not None
    assert visit.contact.uuid == demo["contacts"][0] and "@" in visit.contact.email
    assert client.visits.get(visit.uuid) == visit
    updated = client.visits.update(visit.uuid, source="Website", ends_at=None)
    assert updated.source == "Website" and updated.ends_at is None and updated.external_id == "cli-1"
    page = client.visits.list(limit=5)
    assert isinstance(page, Page) and page.per_page == 5 and page.current_page == 1
    assert page.total >= 25 and page.last_page == -(-page.total // 5) and page.items[0].uuid == visit.uuid
    every = list(client.visits.iter(limit=7))
    assert len(every) == page.total and len({v.uuid for v in every}) == page.total
    mine = list(client.visits.iter(contact_uuid=demo["contacts"][0]))
    assert mine and all(v.contact.uuid == demo["contacts"][0] for v in mine)


def test_shops_and_contacts(client, footfall):
    _, demo = footfall
    shops = client.shops.list()
    assert all(isinstance(s, Shop) for s in shops) and {s.uuid for s in shops} == set(demo["shops"])
    assert client.shops.get(shops[0].uuid) == shops[0]
    contact = client.contacts.create("Plankton@ChumBucket.sea")
    assert isinstance(contact, Contact) and contact.email == "plankton@chumbucket.sea"
    assert client.contacts.create("plankton@chumbucket.sea") == contact
    assert client.contacts.get(contact.uuid) == contact
    assert client.contacts.find_by_email("PLANKTON@chumbucket.sea") == contact
    assert client.contacts.find_or_create("plankton@chumbucket.sea") == contact
    anonymous = client.contacts.create_anonymous()
    assert anonymous.email is None
    assert client.contacts.claim(anonymous.uuid, "Pearl@Krabs.sea").email == "pearl@krabs.sea"
    with pytest.raises(NotFoundError):
        client.contacts.find_by_email("nobody@krabs.sea")
    listed = client.contacts.list(limit=100)
    assert contact.uuid in {c.uuid for c in listed.items} and listed.total >= 6
    regular = client.contacts.get(demo["contacts"][0])
    visits = list(client.visits.iter(contact_uuid=regular.uuid))
    assert regular.visit_count == len(visits) > 0
    assert (regular.first_visit_at, regular.last_visit_at) == (min(v.starts_at for v in visits),
                                                               max(v.starts_at for v in visits))


def test_webhook_subscriptions_and_deliveries(client, footfall):
    _, demo = footfall
    created = client.webhook_subscriptions.create("Stamp cards", "visit_created", "http://127.0.0.1:9/hook")
    assert isinstance(created, WebhookSubscription) and created.secret.startswith("whsec_")
    assert client.webhook_subscriptions.get(created.uuid).secret is None
    updated = client.webhook_subscriptions.update(created.uuid, name="Renamed", status="INACTIVE")
    assert (updated.name, updated.status) == ("Renamed", "INACTIVE")
    listed = client.webhook_subscriptions.list(status="INACTIVE")
    assert created.uuid in {s.uuid for s in listed.items}
    client.webhook_subscriptions.update(created.uuid, status="ACTIVE")
    client.visits.create(demo["contacts"][1], demo["shops"][1])
    [delivery] = client.webhook_subscriptions.deliveries(created.uuid).items
    assert delivery.event_type == "visit_created"
    retried = client.webhook_subscriptions.retry_delivery(created.uuid, delivery.id)
    assert retried.id == delivery.id and retried.state == "pending"
    assert client.webhook_subscriptions.delete(created.uuid) is None


async def test_the_async_client_has_the_same_surface(footfall):
    base_url, demo = footfall
    async with AsyncClient(base_url, demo["token"]) as client:
        visit = await client.visits.create(demo["contacts"][2], demo["shops"][2], external_id="async-1")
        assert (await client.visits.get(visit.uuid)) == visit
        assert (await client.visits.update(visit.uuid, source="Kiosk")).source == "Kiosk"
        page = await client.visits.list(limit=3)
        assert len(page.items) == 3
        seen = [v async for v in client.visits.iter(limit=10)]
        assert len(seen) == page.total
        assert len(await client.shops.list()) == 3
        contact = await client.contacts.create("karen@chumbucket.sea")
        assert (await client.contacts.get(contact.uuid)) == contact
        assert (await client.contacts.list()).total >= 1
        subscription = await client.webhook_subscriptions.create("a", "contact_created", "http://127.0.0.1:9/h")
        assert (await client.webhook_subscriptions.get(subscription.uuid)).name == "a"
        assert (await client.webhook_subscriptions.list(event_type="contact_created")).total >= 1
        assert (await client.webhook_subscriptions.deliveries(subscription.uuid)).total == 0
        await client.webhook_subscriptions.delete(subscription.uuid)


def test_delete_the_changes_feed_filters_and_export(client, footfall):
    _, demo = footfall
    start = client.visits.changes(limit=50)
    before = list(start)
    assert before and all(isinstance(item, (Visit, Tombstone)) for item in before)
    visit = client.visits.create(demo["contacts"][0], demo["shops"][0], external_id="client-feed-1", source="Feed")
    client.visits.delete(visit.uuid)
    later = list(client.visits.changes(start.cursor))
    assert [type(item) for item in later] == [Tombstone] and later[0].uuid == visit.uuid
    assert later[0].external_id == "client-feed-1"
    kept = client.visits.create(demo["contacts"][0], demo["shops"][0], source="Feed",
                                starts_at=datetime(2024, 5, 1, 19, tzinfo=UTC))
    found = client.visits.list(source="Feed", starts_at_lte=datetime(2024, 5, 2, tzinfo=UTC), sort="starts_at")
    assert [v.uuid for v in found.items] == [kept.uuid]
    assert [v.uuid for v in client.visits.iter(source="Feed")] == [kept.uuid]
    stats = client.visits.stats("month", group_by="source", source="Feed", timezone="Europe/Amsterdam")
    assert stats.group_by == "source" and stats.timezone == "Europe/Amsterdam" and stats.buckets
    assert {b.source for b in stats.buckets} == {"Feed"} and sum(b.visits for b in stats.buckets) >= 1
    assert stats.buckets[0].bucket_start == stats.period_start and stats.period_start.utcoffset() is not None
    exported = client.visits.export(format="csv", source="Feed")
    assert exported.splitlines()[0].startswith("uuid,contact_uuid") and kept.uuid in exported
    contact = client.contacts.create("gone@krabs.sea")
    client.contacts.delete(contact.uuid, gdpr=True)
    with pytest.raises(NotFoundError):
        client.contacts.get(contact.uuid)
