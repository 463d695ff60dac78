"""`footfall demo`: an account a newcomer can curl and look at in the console: 90 days of visits at
three shops from four sources, by regulars and one-time visitors, and a webhook subscription with a
few deliveries in its log."""

import random
from datetime import timedelta

from footfall.accounts import service as accounts
from footfall.accounts.repository import Account, AccountRepository
from footfall.config import Settings
from footfall.contacts import service as contacts
from footfall.contacts.schemas import ContactCreate
from footfall.db import Tx
from footfall.kit.pagination import PageParams
from footfall.kit.time import utcnow
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from footfall.visits import service as visits
from footfall.visits.repository import VisitFilter
from footfall.visits.schemas import VisitCreate
from footfall.webhooks import service as webhooks
from footfall.webhooks.schemas import SubscriptionCreate

DEMO_ACCOUNT_NAME = "Footfall demo"
DAYS = 90

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
ONE_TIME = [f"visitor{n:02d}@bikinibottom.sea" for n in range(1, 41)]
# Hours of the day visits start at, weighted: lunch and after work are busiest.
HOURS = [9, 10, 11, 12, 12, 12, 13, 13, 14, 15, 16, 17, 17, 18, 18, 18, 19, 20]
# Nobody listens here: the subscription's deliveries fail and retry, as the console's log shows.
HOOK_URL = "http://127.0.0.1:9/footfall-demo"
HOOKED_VISITS = 3  # the last visits, made after the subscription: its deliveries


async def ensure_demo(tx: Tx, settings: Settings) -> tuple[Account, bool]:
    """The demo account, with its data created on the first run only; True when created now."""
    account = await AccountRepository(tx).get_by_name(DEMO_ACCOUNT_NAME)
    if account is not None:
        return account, False
    account = await accounts.create_account(tx, DEMO_ACCOUNT_NAME)
    demo_shops = [await shops.create(tx, account, shop) for shop in SHOPS]
    regulars = [(await contacts.create(tx, account, ContactCreate(email=e)))[0] for e in REGULARS]
    one_time = [(await contacts.create(tx, account, ContactCreate(email=e)))[0] for e in ONE_TIME]
    rng = random.Random(7)  # the same demo every time
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    planned = []
    for day in range(DAYS, -1, -1):
        date = today - timedelta(days=day)
        weekend = date.weekday() >= 5
        for contact in regulars:
            if rng.random() < (0.45 if weekend else 0.3):
                planned.append((date, contact))
        if rng.random() < 0.45:
            planned.append((date, one_time[len(planned) % len(one_time)]))
    planned.sort(key=lambda item: item[0])
    now = utcnow()
    for n, (date, contact) in enumerate(planned):
        if n == len(planned) - HOOKED_VISITS:
            allowing = settings.model_copy(update={"webhook_allow_private_urls": True})
            await webhooks.create(tx, account, SubscriptionCreate(name="Back office", event_type="visit_created",
                                                                  url=HOOK_URL), allowing)
        shop = demo_shops[0] if rng.random() < 0.55 else demo_shops[1] if rng.random() < 0.6 else demo_shops[2]
        if shop.type == "web":
            source = "Website"
        else:
            source = rng.choice(["Kiosk", "Kiosk", "POS", "App"])
        starts_at = date + timedelta(hours=rng.choice(HOURS), minutes=rng.randrange(60))
        starts_at = min(starts_at, now - timedelta(minutes=5 * (len(planned) - n)))
        ends_at = starts_at + timedelta(minutes=rng.randrange(8, 75)) if rng.random() < 0.85 else None
        await visits.create(tx, account, VisitCreate(
            contact_uuid=contact.uuid, shop_uuid=shop.uuid, external_id=f"demo-{n + 1:04d}", source=source,
            starts_at=starts_at, ends_at=ends_at if ends_at is None or ends_at < now else None,
        ))
    return account, True


async def examples(tx: Tx, account: Account, settings: Settings) -> dict[str, str]:
    """The uuids the README's examples name, from this demo: a regular's contact, the first shop, the
    regular's latest visit and the webhook subscription. The examples delete some of them; what is
    gone is made again (the regular, a visit of theirs now, the subscription), so the README runs as
    printed again and again."""
    contact, _ = await contacts.create(tx, account, ContactCreate(email=REGULARS[0]))
    shop = next(shop for shop in await shops.list_all(tx, account) if shop.name == SHOPS[0].name)
    latest, _ = await visits.list_page(tx, account, PageParams(1, 1), VisitFilter(contact.uuid))
    if latest:
        visit = latest[0]
    else:
        visit, _ = await visits.create(tx, account, VisitCreate(
            contact_uuid=contact.uuid, shop_uuid=shop.uuid, source="Kiosk", starts_at=utcnow()))
    subscriptions, _ = await webhooks.list_page(tx, account, PageParams(1, 1), None, None)
    if subscriptions:
        subscription = subscriptions[0]
    else:
        allowing = settings.model_copy(update={"webhook_allow_private_urls": True})
        subscription = await webhooks.create(tx, account, SubscriptionCreate(
            name="Back office", event_type="visit_created", url=HOOK_URL), allowing)
    return {"contact_uuid": str(contact.uuid), "shop_uuid": str(shop.uuid), "visit_uuid": str(visit.uuid),
            "subscription_uuid": str(subscription.uuid)}
