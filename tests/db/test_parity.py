"""Parity: every prebuilt statement of every repository runs on SQLite and on PostgreSQL, and the two
give the same results.

One scenario of fixed inputs (uuids, times, values) goes through every repository on a fresh database
of each kind; each result is written down as plain data, surrogate ids as the order they were first
seen in (PostgreSQL's sequences skip values that SQLite's rowids do not). The two transcripts must be
equal, and every statement built at import must have run on both databases.
"""

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import asyncpg
import pytest
from sqlalchemy import bindparam, select

from footfall.accounts import repository as accounts
from footfall.accounts.repository import AccountRepository, TokenRepository
from footfall.app import PING
from footfall.contacts import repository as contacts_
from footfall.contacts.repository import ContactRepository
from footfall.db import Statement, Tx, migrate, open_database, per_dialect
from footfall.db.statement import prebuilt
from footfall.idempotency import repository as idempotency
from footfall.idempotency.repository import IdempotencyRepository
from footfall.rules import repository as rules_
from footfall.rules import service as rules_service
from footfall.rules.repository import RuleRepository
from footfall.shops import repository as shops_
from footfall.shops.repository import ShopRepository
from footfall.stats import repository as stats_
from footfall.stats.repository import StatsRepository
from footfall.tables import webhook_events
from footfall.visits import repository as visits_
from footfall.visits.repository import DuplicateExternalId, VisitRepository
from footfall.visits.repository import counts as visit_counts
from footfall.visits.repository import feed as visit_feed
from footfall.webhooks import outbox as webhook_outbox
from footfall.webhooks import repository as webhooks
from footfall.webhooks.repository import DeliveryRepository, OutboxRepository, SubscriptionRepository

# What the scenario reads back that no repository reads: an event's stored body.
EVENT_BODY = per_dialect(lambda dialect: Statement(
    select(webhook_events.c.body).where(webhook_events.c.uuid == bindparam("uuid")), dialect=dialect))

POSTGRES_URL = os.environ.get("FOOTFALL_TEST_DATABASE_URL")
T0 = datetime(2024, 5, 1, 20, 0, 0, tzinfo=UTC)


def uuid(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, name)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class RecordingTx(Tx):
    """Runs on another Tx and notes every statement it runs."""

    def __init__(self, inner: Tx, ran: set[Statement]) -> None:
        self.inner, self.ran, self.dialect = inner, ran, inner.dialect

    async def fetch(self, statement, params=None):
        self.ran.add(statement)
        return await self.inner.fetch(statement, params)

    async def execute(self, statement, params=None):
        self.ran.add(statement)
        return await self.inner.execute(statement, params)

    async def executemany(self, statement, rows):
        self.ran.add(statement)
        return await self.inner.executemany(statement, rows)

    async def copy_records(self, table, columns, records):
        return await self.inner.copy_records(table, columns, records)

    def savepoint(self):
        return self.inner.savepoint()

    async def snapshot(self):
        await self.inner.snapshot()


class Transcript:
    def __init__(self) -> None:
        self.lines: list[tuple[str, Any]] = []
        self.ids: dict[str, dict[int, int]] = {}

    def plain(self, value: Any, name: str = "") -> Any:
        if name == "kept" and isinstance(value, str):  # RuleState.kept: a KeptState's text, with ids inside
            value = rules_.KeptState.read(value)
        if isinstance(value, rules_.KeptState):
            return {"writes": value.writes, "rules": self.plain(value.rules)}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return {field: self.plain(item, field) for field, item in zip(value._fields, value, strict=True)}
        if isinstance(value, (list, tuple)):
            return [self.plain(item, name) for item in value]
        if isinstance(value, dict):
            return {str(self.plain(k, name)): self.plain(v, name) for k, v in value.items()}
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, datetime):
            assert value.tzinfo is UTC, (name, value)
            return value.isoformat()
        if isinstance(value, int) and not isinstance(value, bool) and (name == "id" or name.endswith("_id")):
            seen = self.ids.setdefault(name, {})
            return f"{name}#{seen.setdefault(value, len(seen) + 1)}"
        return value

    def note(self, what: str, value: Any) -> Any:
        self.lines.append((what, self.plain(value)))
        return value


async def scenario(database, ran: set[Statement]) -> list[tuple[str, Any]]:
    t = Transcript()
    async with database.transaction(write=True) as inner:
        tx = RecordingTx(inner, ran)
        accounts, tokens = AccountRepository(tx), TokenRepository(tx)
        account = t.note("account", await accounts.insert(uuid("account"), "Parity", at(0)))
        t.note("account by uuid", await accounts.get_by_uuid(uuid("account")))
        t.note("account by name", await accounts.get_by_name("Parity"))
        t.note("all accounts", [a.uuid for a in await accounts.all()])
        t.note("no account", await accounts.get_by_uuid(uuid("nobody")))
        token = t.note("token", await tokens.insert({
            "uuid": uuid("token"), "account_id": account.id, "name": "till", "token_hash": "a" * 64,
            "expires_at": at(600), "read_only": True, "created_at": at(1)}))
        await tokens.touch(token.id, at(2))
        t.note("credential", await tokens.credential("a" * 64))
        t.note("revoked", await tokens.revoke(uuid("token"), at(3)))
        t.note("revoked again", await tokens.revoke(uuid("token"), at(4)))
        t.note("tokens", await tokens.list(account.id))

        shops = ShopRepository(tx)
        for n, name in enumerate(["Krusty Krab", "Chum Bucket"]):
            t.note("shop", await shops.insert({"uuid": uuid(name), "account_id": account.id, "name": name,
                                               "type": "physical", "reference": None, "created_at": at(5 + n)}))
        shop = t.note("shop by uuid", await shops.get(account.id, uuid("Krusty Krab")))
        t.note("shops", await shops.list(account.id))
        t.note("shop map", await shops.uuid_map(account.id))

        contacts = ContactRepository(tx)
        for n in range(3):
            t.note("contact inserted", await contacts.insert_if_absent({
                "uuid": uuid(f"contact-{n}"), "account_id": account.id, "email": f"c{n}@parity.sea",
                "created_at": at(10 + n)}))
        t.note("contact twice", await contacts.insert_if_absent({
            "uuid": uuid4(), "account_id": account.id, "email": "c0@parity.sea", "created_at": at(20)}))
        contact = t.note("contact", await contacts.get(account.id, uuid("contact-0")))
        t.note("contact by email", await contacts.get_by_email(account.id, "c1@parity.sea"))
        t.note("contact count", await contacts.count(account.id))
        t.note("contact page", await contacts.page(account.id, 2, 1))
        keys = t.note("contacts by uuid", await contacts.keys_of(
            account.id, [*(uuid(f"contact-{n}") for n in range(3)), uuid("contact-0"), uuid("nobody")]))
        for n in range(2):
            await contacts.insert_anonymous({"uuid": uuid(f"anonymous-{n}"), "account_id": account.id,
                                             "created_at": at(30 + n)})
        # Read without ids: PostgreSQL spent a sequence value on "contact twice", SQLite did not.
        t.note("anonymous", (await contacts.get(account.id, uuid("anonymous-0"))).email)
        t.note("claimed", await contacts.claim(account.id, uuid("anonymous-0"), "a0@parity.sea"))
        t.note("claimed again", await contacts.claim(account.id, uuid("anonymous-0"), "a0@parity.sea"))
        t.note("claimed, email taken", await contacts.claim(account.id, uuid("anonymous-1"), "c1@parity.sea"))
        t.note("after the claims", [(c.uuid, c.email) for c in await contacts.page(account.id, 3, 0)])

        subscriptions, outbox = SubscriptionRepository(tx), OutboxRepository(tx)
        subscription = t.note("subscription", await subscriptions.insert({
            "uuid": uuid("subscription"), "account_id": account.id, "name": "hook", "event_type": "visit_created",
            "url": "https://example.com/hook", "secret": "whsec_x", "status": "ACTIVE",
            "consecutive_failures": 0, "created_at": at(21)}))

        visits = VisitRepository(tx)
        t.note("contact and shop", await visits.contact_and_shop(account.id, uuid("contact-0"), uuid("Krusty Krab")))
        t.note("contact, no shop", await visits.contact_and_shop(account.id, uuid("contact-0"), uuid("nowhere")))
        t.note("contact held", await visits.contact_and_shop(account.id, uuid("contact-0"), uuid("Krusty Krab"),
                                                             held=True))
        for n in range(5):
            values = {"uuid": uuid(f"visit-{n}"), "account_id": account.id, "contact_id": contact.id,
                      "shop_id": shop.id, "external_id": f"ext-{n}" if n % 2 else None, "source": "Café/ü",
                      "starts_at": at(30 + n), "ends_at": at(40 + n) if n % 3 else None, "created_at": at(30 + n),
                      "updated_at": at(30 + n)}
            visit = t.note("visit", await visits.insert(values))
            await visits.add_to_counts(account.id, {contact.id: 1}, slot=visit.id)
        t.note("external_id taken", await visits.insert({**values, "uuid": uuid4(), "external_id": "ext-1"}))
        await visits.add_to_counts(account.id, {key.id: 2 for key in keys.values()}, slot=7)
        t.note("visit", await visits.get(account.id, uuid("visit-1")))
        to_update = t.note("to update", await visits.get_to_update(account.id, uuid("visit-2")))
        t.note("by external_id", await visits.get_by_external_id(account.id, "ext-3"))
        t.note("updated", await visits.update(to_update.id, {"source": None, "ends_at": at(99)}, at(98)))
        t.note("external_id set", await visits.update(to_update.id, {"external_id": "ext-2"}, at(99)))
        t.note("moved", await visits.update(to_update.id, {"starts_at": at(36)}, at(99)))
        await visits.respan([to_update.contact_id], held=False)  # as the service does after a moved start
        t.note("its contact", await contacts.get(account.id, uuid("contact-0")))
        await visits.reshaped(account.id)  # after a visit moves to another start
        try:
            await visits.update(to_update.id, {"external_id": "ext-1"}, at(99))
        except DuplicateExternalId:
            t.note("duplicate external_id", True)
        t.note("account count", await visits.account_count(account.id))
        t.note("contact count", await visits.contact_count(account.id, uuid("contact-0")))
        t.note("first page", await visits.first_page(account.id, None, 3))
        t.note("first page by contact", await visits.first_page(account.id, uuid("contact-0"), 3))
        for contact_id in (None, contact.id):
            for offset in (1, 3):
                t.note("page", await visits.page(account.id, contact_id, 2, offset, 5))
        rows = [{"uuid": uuid(f"imported-{n}"), "account_id": account.id, "contact_id": contact.id,
                 "shop_id": shop.id, "external_id": f"ext-{n}", "source": "import", "starts_at": at(50 + n),
                 "ends_at": None, "created_at": at(50), "updated_at": at(50)} for n in range(6)]
        t.note("imported", await visits.insert_many(account.id, rows[:4], full=True))
        t.note("imported contacts", await visits.insert_many(account.id, rows[3:], full=False))
        # A row given the uuid of one of the account's visits is that visit; one given another uuid is new.
        given = [{**rows[0], "uuid": uuid("again-0"), "external_id": None, "given_uuid": uuid("imported-0")},
                 {**rows[0], "uuid": uuid("again-1"), "external_id": None, "given_uuid": uuid("elsewhere")}]
        by_given = t.note("imported by given uuid", await visits.insert_many(account.id, given, full=True))
        assert [visit.uuid for visit in by_given] == [uuid("again-1")]
        await visits.analyze()
        t.note("purged", await visits.purge_batch(account.id, at(51), 2, at(120)))
        t.note("count after the purge", await visits.account_count(account.id))
        await visits.touch_contact_visits(contact.id, at(99))
        t.note("deleted visit", await visits.delete(account.id, uuid("visit-4"), at(100)))
        t.note("deleted again", await visits.delete(account.id, uuid("visit-4"), at(101)))
        t.note("count after the delete", await visits.contact_count(account.id, uuid("contact-0")))

        rules = RuleRepository(tx)
        made = {"account_id": account.id, "every": None, "at": None, "count": None, "within_days": None,
                "after_days": None, "min_visits": None, "shop_id": None, "source": None, "status": "ACTIVE",
                "created_at": at(120), "updated_at": at(120)}
        for name, kind, fields in [
            ("rule-every", "milestone", {"every": 2}), ("rule-at", "milestone", {"at": "[1, 3]"}),
            ("rule-frequency", "frequency", {"count": 2, "within_days": 1, "shop_id": shop.id}),
            ("rule-lapse", "lapse", {"after_days": 1, "min_visits": 1}),
            ("rule-lapse-source", "lapse", {"after_days": 1, "min_visits": 2, "source": "Café/ü"}),
        ]:
            await rules.insert({**made, "uuid": uuid(name), "name": name, "kind": kind, **fields})
        every = t.note("rule", await rules.get(account.id, uuid("rule-every")))
        frequency = await rules.get(account.id, uuid("rule-frequency"))
        t.note("has rules", await rules.has_active(account.id))
        t.note("rule count", await rules.count(account.id))
        t.note("rule page", await rules.page(account.id, 2, 1))
        await rules.update(every.id, "renamed", "ACTIVE", at(121))
        t.note("contacts held in turn", await contacts.share([contact.id, contact.id], in_turn=True))
        third = await visits.get(account.id, uuid("visit-3"))
        who = rules_service.VisitedContact(contact.id, contact.uuid, contact.email)

        def ruled(starts_at: datetime, later: int = 0, source: str | None = None,
                  visit_id: int = third.id) -> rules_service.RuledVisit:
            return rules_service.RuledVisit(account.id, who, rules_service.RecordedVisit(
                visit_id, shop.id, source, starts_at, dict), later, at(122))

        async def record(visit: rules_service.RuledVisit) -> list[rules_service.Moment]:
            return await rules_service.record(tx, visit, await rules.states(account.id, contact.id))

        for later in (1, 0, 0):
            t.note("moments", await record(ruled(at(33), later, "Café/ü")))
        t.note("fired", await rules.fire(contact.id, third.id, at(122), {every.id: 4}))
        t.note("fired again", await rules.fire(contact.id, third.id, at(123), {every.id: 4}))
        t.note("frequency fired", await rules.fire(contact.id, third.id, at(124), {frequency.id: 9}))
        t.note("frequency after firing", await record(ruled(at(33))))
        t.note("recounted", await rules.recount(frequency.id, contact.id, third.id))
        t.note("in window", await rules.in_window(frequency.id, contact.id, 0, third.id, at(31), at(34)))
        t.note("states once counted", await rules.states_once_counted(account.id, contact.id))
        # A create's own path: the insert reads the rules, the count writes what they decided.
        for n, external_id in enumerate((None, "ext-ruled", "ext-ruled")):
            inserted, states = t.note("inserted reading rules", await visits.insert_reading_rules({
                **values, "uuid": uuid(f"ruled-{n}"), "external_id": external_id, "starts_at": at(33)}, account.id))
            if inserted is None:
                continue
            decisions = await rules_service.decide(tx, ruled(at(33), visit_id=inserted.id), states)
            t.note("decided", (decisions.moments, decisions.kept))
            t.note("counted with its rules", await visits.add_one_recording_rules(
                account.id, contact.id, inserted.id, (at(33), at(33)), decisions.kept, decisions.firing, at(125)))
        kept_at = rules_.micros(at(33))
        kept = rules_.KeptState(99, {frequency.uuid.hex: rules_.Kept(7, 1, kept_at, kept_at, 2, third.id, [1234567])})
        for kept_state, firing in ((kept, {}), (None, {every.id: 100}), (kept, {every.id: 102})):
            t.note("counted, kept and fired", await visits.add_one_recording_rules(
                account.id, contact.id, third.id, (at(33), at(33)), kept_state, firing, at(126)))
        t.note("kept state", await rules.states(account.id, contact.id))
        lapse_rules = t.note("lapse rules", await rules.lapse_rules())
        end = t.note("batch end", await rules.batch_end(account.id, 0))
        for lapse_rule in lapse_rules:
            t.note("lapsed", await rules.lapse(lapse_rule, 0, end, at(2000), at(2001)))
            t.note("lapsed again", await rules.lapse(lapse_rule, 0, end, at(2000), at(2002)))
        t.note("lapsed contacts", await rules.contacts_of(lapse_rules[0].id, [contact.id]))
        t.note("lapsed, a visit from before", await record(ruled(at(33))))
        t.note("returned too early", await rules.returned(lapse_rules[0].id, contact.id, at(30)))
        t.note("returned by a visit", await record(ruled(at(3000))))
        t.note("returned", await rules.returned(lapse_rules[1].id, contact.id, at(3000)))
        t.note("returned again", await rules.returned(lapse_rules[0].id, contact.id, at(3001)))
        t.note("progress", await rules.progress(account.id, contact.id))
        t.note("firings", await rules.firings(contact.id))
        t.note("recent", await rules.recent(account.id, at(0)))
        await rules.delete(every.id)
        await rules.forget_contact(contact.id)
        t.note("forgotten", await record(ruled(at(4000))))
        t.note("rule deleted", await rules.get(account.id, uuid("rule-every")))

        t.note("active ids", await outbox.active_subscription_ids(account.id, "visit_created"))
        await outbox.add_events(
            [{"uuid": uuid(f"event-{n}"), "account_id": account.id, "type": "visit_created", "body": f'{{"n":{n}}}',
              "created_at": at(60), "request_id": f"req-{n}" if n else None} for n in range(2)],
            [{"delivery_uuid": uuid(f"delivery-{n}"), "subscription_id": subscription.id,
              "event_uuid": uuid(f"event-{n}"), "now": at(60)} for n in range(2)],
        )
        t.note("subscription count", await subscriptions.count(account.id, None, "ACTIVE"))
        t.note("subscription page", await subscriptions.page(account.id, "visit_created", None, 10, 0))
        t.note("subscription by uuid", await subscriptions.get(account.id, uuid("subscription")))
        deliveries = DeliveryRepository(tx)
        t.note("delivery count", await deliveries.count(subscription.id))
        t.note("delivery page", await deliveries.page(subscription.id, 10, 0))
        claimed = t.note("claimed", await deliveries.claim(at(61), at(62), uuid("lease"), 10))
        t.note("recorded", await deliveries.record(claimed[0].id, uuid("lease"), {
            "last_attempt_at": at(61), "last_status_code": 500, "last_error": "HTTP 500",
            "last_response_body": "no", "next_attempt_at": at(70)}))
        t.note("recorded, lapsed", await deliveries.record(claimed[0].id, uuid("other lease"), {"state": "failed"}))
        await deliveries.make_due(claimed[0].id, at(65), reopen=True)
        await deliveries.resume_pending(subscription.id, at(66))
        t.note("outbox", await webhook_outbox.outbox_status(tx))
        t.note("delivery", await deliveries.get(subscription.id, uuid("delivery-0")))
        await deliveries.subscription_failed(subscription.id, 1)
        t.note("failed", await subscriptions.get(account.id, uuid("subscription")))
        await deliveries.subscription_succeeded(subscription.id)
        await deliveries.deactivate(subscription.id)
        t.note("updated subscription", await subscriptions.update(subscription.id, {"status": "ACTIVE", "name": "x"}))
        await subscriptions.delete(subscription.id)
        t.note("deleted", await subscriptions.get(account.id, uuid("subscription")))

        keys_ = IdempotencyRepository(tx)
        owned = {"fingerprint": "f" * 64, "state": "running", "lock_token": uuid("lock"), "locked_until": at(80),
                 "response_status": None, "response_body": None, "created_at": at(70), "expires_at": at(90)}
        key_id = t.note("key", await keys_.insert(account.id, "k", owned))
        t.note("key again", await keys_.insert(account.id, "k", owned))
        t.note("stored key", await keys_.get(account.id, "k"))
        t.note("taken over early", await keys_.take_over(key_id, at(75), owned))
        t.note("taken over", await keys_.take_over(key_id, at(85), {**owned, "lock_token": uuid("lock 2")}))
        t.note("answer stored", await keys_.store_answer(key_id, uuid("lock 2"), 201, '{"ok":true}'))
        t.note("done key", await keys_.get(account.id, "k"))
        await keys_.release(key_id, uuid("lock 2"))
        await keys_.purge_expired(at(100))
        t.note("purged", await keys_.get(account.id, "k"))

        doomed = await contacts.get(account.id, uuid("contact-2"))
        t.note("account of a contact", await contacts.account_uuid_of(doomed.uuid))
        for n in range(2):
            await visits.insert({"uuid": uuid(f"doomed-{n}"), "account_id": account.id, "contact_id": doomed.id,
                                 "shop_id": shop.id, "external_id": f"doomed-{n}", "source": None,
                                 "starts_at": at(n), "ends_at": None, "created_at": at(n), "updated_at": at(n)})
        t.note("contact's visits deleted", sorted(
            visit.external_id for visit in await visits.delete_contact_visits(account.id, doomed.id, at(110))))
        t.note("contact held", await contacts.share([doomed.id, contact.id, doomed.id]))
        t.note("contact locked", await contacts.lock(doomed.id))
        t.note("contact deleted", await contacts.delete(doomed.id))
        t.note("contact deleted again", await contacts.delete(doomed.id))
        t.note("gone contact held", await contacts.share([doomed.id]))
        t.note("gone contact locked", await contacts.lock(doomed.id))
        owner = f'"uuid":"{uuid("contact-0")}"'
        holders = ['"uuid":"another"', owner]  # the second event is the contact's
        await outbox.add_events(
            [{"uuid": uuid(f"owned-{n}"), "account_id": account.id, "type": "visit_created",
              "body": '{"contact":{' + holder + ',"email":"c1@parity.sea"},"source":"c1@parity.sea"}',
              "created_at": at(60),
              "request_id": None} for n, holder in enumerate(holders)], [])
        await outbox.erase(account.id, owner, '"email":"c1@parity.sea"', "c1@parity.sea")
        t.note("erased events", [(await tx.fetchval(EVENT_BODY[tx.dialect], {"uuid": uuid(f"owned-{n}")}))
                                 for n in range(2)])
        await keys_.insert(account.id, "erase", {**owned, "response_body": '{"data":{' + owner + '}}'})
        await keys_.forget_answers_with(account.id, owner)
        t.note("answer forgotten", await keys_.get(account.id, "erase"))
        t.note("ping", await tx.fetchval(PING[tx.dialect]))

    # The feed reads committed changes only (on PostgreSQL, below the oldest running transaction).
    async with database.transaction(write=False) as inner:
        visits = VisitRepository(RecordingTx(inner, ran))
        changes = await visits.changes(account.id, (0, 0), 100)
        # Positions differ between the databases (transaction ids, sequences), and so does the order
        # of the rows one UPDATE moves (its scan order): compared as sets; tests/visits/test_changes.py
        # holds the order through HTTP.
        t.note("changes", sorted(change[2:] for change in changes))
        t.note("changes after the third", len(await visits.changes(
            account.id, (changes[2].change_xid, changes[2].change_seq), 3)))

        stats = StatsRepository(RecordingTx(inner, ran))
        t.note("shops at most", await stats.groups_at_most(account.id, "shop", 10))
        t.note("sources at most", await stats.groups_at_most(account.id, "source", 1))
        t.note("visit epoch", await stats.visit_epoch(account.id))
        head = await stats.feed_head(account.id)
        t.note("feed head", head > (0, 0))
        # Positions differ between the databases; what each change is does not.
        t.note("stats changes", sorted((str(change.contact_uuid), change.starts_at, change.deleted)
                                       for change in await stats.changes(account.id, (0, 0), 100)))
        t.note("earliest starts", await stats.earliest_starts(account.id, [uuid("contact-0"), uuid("nobody")], head))
    return t.lines


@pytest.fixture
async def databases(tmp_path):
    if not POSTGRES_URL:
        pytest.skip("FOOTFALL_TEST_DATABASE_URL is not set: parity needs PostgreSQL beside SQLite")
    name = f"footfall_parity_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    urls = {"sqlite": f"sqlite:///{tmp_path}/parity.db", "postgresql": POSTGRES_URL.rsplit("/", 1)[0] + "/" + name}
    try:
        yield urls
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_every_statement_gives_the_same_results_on_both_databases(databases):
    transcripts, ran = {}, set()
    for dialect, url in databases.items():
        await migrate(url)
        database = open_database(url, pool_size=2)
        try:
            transcripts[dialect] = await scenario(database, ran)
        finally:
            await database.close()
    for sqlite_line, postgresql_line in zip(transcripts["sqlite"], transcripts["postgresql"], strict=True):
        assert sqlite_line == postgresql_line
    never_ran = [statement for statement in prebuilt() if statement not in ran]
    assert never_ran == [], "\n\n".join(f"{s.dialect}: {s}" for s in never_ran)


def test_every_repository_registers_its_statements():
    """per_dialect registers what it builds: every repository's statements are walked, the stats' too."""
    found = set(prebuilt())
    for module in (accounts, contacts_, idempotency, rules_, shops_, visits_, visit_counts, visit_feed, webhooks,
                   webhook_outbox):
        assert {s for built in module.STATEMENTS.values() for s in _statements(built)} <= found
    for structure in (stats_.BOUND_STATEMENTS, stats_.CACHE_STATEMENTS, PING):
        assert set(structure["sqlite"].values() if isinstance(structure["sqlite"], dict)
                   else [structure["sqlite"]]) <= found
    assert {statement.dialect for statement in found} == {"postgresql", "sqlite"}


def _statements(built: Any) -> list[Statement]:
    return [getattr(built, field.name) for field in dataclasses.fields(built)
            if isinstance(getattr(built, field.name), Statement)]
