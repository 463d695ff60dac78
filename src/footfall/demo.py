"""`footfall demo`: an account a newcomer can curl and look at in the console: the last 90 days of
visits at three shops from four sources, by 8 regulars (one of whom stopped coming) and 40 one-time
visitors, each visit recorded when it happened, two visit rules (a milestone and a lapse, which the
regular who stopped coming has reached), and a webhook subscription whose deliveries fail, with
their attempts in its log."""

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from footfall.accounts import service as accounts
from footfall.accounts.repository import Account, AccountRepository
from footfall.config import Settings
from footfall.contacts import service as contacts
from footfall.contacts.repository import ContactKey
from footfall.contacts.schemas import ContactCreate
from footfall.db import Tx, open_database
from footfall.kit.pagination import PageParams
from footfall.kit.time import utcnow
from footfall.rules import service as rules
from footfall.rules.lapses import lapse_pass
from footfall.rules.schemas import RuleCreate
from footfall.shops import service as shops
from footfall.shops.repository import Shop
from footfall.shops.schemas import ShopCreate
from footfall.visits import service as visits
from footfall.visits.importer import write_rows
from footfall.visits.repository import VisitFilter
from footfall.visits.schemas import VisitCreate
from footfall.webhooks import service as webhooks
from footfall.webhooks.delivery import DeliveryWorker
from footfall.webhooks.outbox import outbox
from footfall.webhooks.repository import Subscription
from footfall.webhooks.schemas import SubscriptionCreate

DEMO_ACCOUNT_NAME = "Footfall demo"
DAYS = 90  # the history: today and the 89 days before it

SHOPS = [
    ShopCreate(name="The Krusty Krab", type="physical", reference="KK-001"),
    ShopCreate(name="Chum Bucket", type="physical", reference="CB-001"),
    ShopCreate(name="Krusty Krab online", type="web"),
]
REGULARS = [
    "spongebob@bikinibottom.sea",
    "patrick@bikinibottom.sea",
    "squidward@bikinibottom.sea",
    "sandy@bikinibottom.sea",
    "mrkrabs@bikinibottom.sea",
    "pearl@bikinibottom.sea",
    "larry@bikinibottom.sea",
    "mrspuff@bikinibottom.sea",
]
ONE_TIME = [f"visitor{n:02d}@bikinibottom.sea" for n in range(1, 41)]  # one visit each
# A regular who has not come for the last AWAY_DAYS days: the lapse rule below finds them.
LAPSED_REGULAR = "larry@bikinibottom.sea"
AWAY_DAYS = 25
RULES = [
    RuleCreate(name="Every 10th visit: a free coffee", kind="milestone", every=10),
    RuleCreate(name="Win back a regular", kind="lapse", after_days=21, min_visits=10),
]
# The odds that a regular visits on a weekday, and on a weekend day: 30 to 40 visits each in 90 days.
REGULAR_ODDS = (0.3, 0.45)
# Hours of the day visits start at, weighted: lunch and after work are busiest.
HOURS = [9, 10, 11, 12, 12, 12, 13, 13, 14, 15, 16, 17, 17, 18, 18, 18, 19, 20]

# The subscription's receiver: `.invalid` is the top-level domain reserved never to resolve (RFC 6761),
# so every attempt fails for a real reason, on any machine, and no server needs to allow private
# addresses for it. A create checks that a URL's host resolves; the demo's is meant not to.
HOOK_NAME = "Back office"
HOOK_URL = "https://back-office.footfall-demo.invalid/visits"
HOOKED_VISITS = 3  # the last visits, checked in just now, after the subscription: its deliveries
# The demo tries those deliveries itself as it makes them, three attempts each, a quarter and a half
# second apart (the server's schedule spreads its attempts over a day), so the log shows them failed.
TRY_SCHEDULE = [0.0, 0.25, 0.5]
TRY_SECONDS = 30  # at most, however slow the resolver is: what is left, the server's worker tries


@dataclass(frozen=True)
class PlannedVisit:
    contact: ContactKey
    shop: Shop
    source: str
    starts_at: datetime
    ends_at: datetime | None
    recorded_at: datetime  # when the till recorded it: created_at and updated_at


async def ensure_demo(tx: Tx, settings: Settings) -> tuple[Account, bool]:
    """The demo account, with its data created on the first run only; True when created now."""
    account = await AccountRepository(tx).get_by_name(DEMO_ACCOUNT_NAME)
    if account is not None:
        return account, False
    account = await accounts.create_account(tx, DEMO_ACCOUNT_NAME)
    demo_shops = [await shops.create(tx, account, shop) for shop in SHOPS]
    regulars = [await _contact(tx, account, email) for email in REGULARS]
    one_time = [await _contact(tx, account, email) for email in ONE_TIME]
    now = utcnow().replace(microsecond=0)
    history = plan(random.Random(7), now, regulars, one_time, demo_shops)  # the same demo every time
    # Written as an import writes a history: each visit created and updated when it was recorded,
    # in the order it was recorded, so the changes feed's order is updated_at's.
    await write_rows(tx, account, [
        visits.new_visit(account.id, VisitCreate(
            contact_uuid=visit.contact.uuid, shop_uuid=visit.shop.uuid, external_id=f"demo-{n:04d}",
            source=visit.source, starts_at=visit.starts_at, ends_at=visit.ends_at,
        ), visit.contact.id, visit.shop.id, visit.recorded_at)
        for n, visit in enumerate(history, start=1)
    ], {contact.id: contact for contact in regulars + one_time})
    await _subscribe(tx, account, settings)
    for rule in RULES:  # after the history: rules count from when they are made
        await rules.create(tx, account, rule)
    # Checked in just now, through the API's own create: their visit_created events are the
    # subscription's deliveries.
    for n, contact in enumerate(regulars[:HOOKED_VISITS], start=len(history) + 1):
        await visits.create(tx, account, VisitCreate(
            contact_uuid=contact.uuid, shop_uuid=demo_shops[0].uuid, external_id=f"demo-{n:04d}", source="Kiosk",
            starts_at=now - timedelta(minutes=len(history) + HOOKED_VISITS + 1 - n),  # 3, 2 and 1 minutes ago
        ))
    return account, True


def plan(rng: random.Random, now: datetime, regulars: list[ContactKey], one_time: list[ContactKey],
         demo_shops: list[Shop]) -> list[PlannedVisit]:
    """The history, in the order it was recorded: regulars on about a third of the days (more at
    weekends), each one-time visitor once on a day of their own, the first of them on the first day
    so that the history spans exactly DAYS days; nothing recorded after `now`."""
    today = now.replace(hour=0, minute=0, second=0)
    days = [today - timedelta(days=ago) for ago in range(DAYS - 1, -1, -1)]
    # One-time visitors come on days before today (a visit later today would still be to come).
    one_time_days = [days[0], *rng.sample(days[1:-1], len(one_time) - 1)]
    planned = [_visit(rng, day, contact, demo_shops) for day, contact in zip(one_time_days, one_time, strict=True)]
    away_since = today - timedelta(days=AWAY_DAYS - 1)
    for day in days:
        odds = REGULAR_ODDS[day.weekday() >= 5]
        planned += [_visit(rng, day, contact, demo_shops) for contact in regulars if rng.random() < odds
                    and not (contact.email == LAPSED_REGULAR and day >= away_since)]
    return sorted((visit for visit in planned if visit.recorded_at <= now), key=lambda visit: visit.recorded_at)


def _visit(rng: random.Random, day: datetime, contact: ContactKey, demo_shops: list[Shop]) -> PlannedVisit:
    shop = demo_shops[0] if rng.random() < 0.55 else demo_shops[1] if rng.random() < 0.6 else demo_shops[2]
    source = "Website" if shop.type == "web" else rng.choice(["Kiosk", "Kiosk", "POS", "App"])
    starts_at = day + timedelta(hours=rng.choice(HOURS), minutes=rng.randrange(60))
    ends_at = starts_at + timedelta(minutes=rng.randrange(8, 75)) if rng.random() < 0.85 else None
    # Recorded at the till a few seconds after the visit ended (or, with no end, after it began).
    recorded_at = (ends_at or starts_at) + timedelta(seconds=rng.randrange(5, 90))
    return PlannedVisit(contact, shop, source, starts_at, ends_at, recorded_at)


async def _contact(tx: Tx, account: Account, email: str) -> ContactKey:
    contact, _ = await contacts.create(tx, account, ContactCreate(email=email))
    return ContactKey(contact.uuid, contact.id, contact.email)


async def _subscribe(tx: Tx, account: Account, settings: Settings) -> Subscription:
    # The create checks the URL's form; that its host resolves is checked only where private
    # addresses are refused, and the demo's host is meant never to resolve.
    unresolved = settings.model_copy(update={"webhook_allow_private_urls": True})
    return await webhooks.create(tx, account, SubscriptionCreate(name=HOOK_NAME, event_type="visit_created",
                                                                 url=HOOK_URL), unresolved)


async def try_deliveries(database_url: str, settings: Settings) -> None:
    """Runs the demo subscription's first deliveries through the delivery worker now, on
    TRY_SCHEDULE, until they have failed for good: real attempts, each refused because the host
    does not resolve, as a server would record them. Only when they are the only deliveries
    waiting: the worker claims any account's, and another account's are its server's to send."""
    database = open_database(database_url, pool_size=2,
                             statement_cache_size=settings.database_statement_cache_size)
    worker = DeliveryWorker(database, settings.model_copy(
        update={"webhook_retry_schedule": TRY_SCHEDULE, "webhook_allow_private_urls": False}))
    try:
        async with database.transaction(write=False) as tx:
            if (await outbox(tx)).pending != HOOKED_VISITS:
                return
        deadline = time.monotonic() + TRY_SECONDS
        while time.monotonic() < deadline:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await worker.run_once()
            async with database.transaction(write=False) as tx:
                if (await outbox(tx)).pending == 0:
                    return
            await asyncio.sleep(0.05)
    except TimeoutError:
        pass  # a resolver that does not answer: the server's worker tries what is left
    finally:
        await worker.close()
        await database.close()


async def find_lapses(database_url: str, settings: Settings) -> None:
    """A lapse pass now, as the worker runs one every FOOTFALL_RULES_INTERVAL seconds, so that the
    demo's lapsed regular shows as lapsed at once."""
    database = open_database(database_url, pool_size=2,
                             statement_cache_size=settings.database_statement_cache_size)
    try:
        await lapse_pass(database)
    finally:
        await database.close()


async def examples(tx: Tx, account: Account, settings: Settings) -> dict[str, str]:
    """The uuids the README's examples name, from this demo: a regular's contact, the first shop, the
    regular's latest visit, the webhook subscription and the regular who lapsed. The examples delete
    some of them; what is gone is made again (the regular, a visit of theirs now, the subscription),
    so the README runs as printed again and again."""
    contact, _ = await contacts.create(tx, account, ContactCreate(email=REGULARS[0]))
    shop = next(shop for shop in await shops.list_all(tx, account) if shop.name == SHOPS[0].name)
    latest, _ = await visits.list_page(tx, account, PageParams(1, 1), VisitFilter(contact.uuid))
    if latest:
        visit = latest[0]
    else:
        visit, _ = await visits.create(tx, account, VisitCreate(
            contact_uuid=contact.uuid, shop_uuid=shop.uuid, source="Kiosk", starts_at=utcnow()))
    subscriptions, _ = await webhooks.list_page(tx, account, PageParams(1, 1), None, None)
    subscription = subscriptions[0] if subscriptions else await _subscribe(tx, account, settings)
    lapsed, _ = await contacts.create(tx, account, ContactCreate(email=LAPSED_REGULAR))
    return {"contact_uuid": str(contact.uuid), "shop_uuid": str(shop.uuid), "visit_uuid": str(visit.uuid),
            "subscription_uuid": str(subscription.uuid), "lapsed_contact_uuid": str(lapsed.uuid)}
