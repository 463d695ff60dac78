"""`footfall demo`: an account a newcomer can curl, with shops, contacts and visits."""

from datetime import timedelta

from footfall.accounts import service as accounts
from footfall.accounts.repository import Account, AccountRepository
from footfall.contacts import service as contacts
from footfall.contacts.schemas import ContactCreate
from footfall.db import Tx
from footfall.kit.time import utcnow
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from footfall.visits import service as visits
from footfall.visits.schemas import VisitCreate

DEMO_ACCOUNT_NAME = "Footfall demo"

SHOPS = [
    ShopCreate(name="The Krusty Krab", type="physical", reference="KK-001"),
    ShopCreate(name="Chum Bucket", type="physical", reference="CB-001"),
    ShopCreate(name="Krusty Krab online", type="web"),
]
EMAILS = [
    "spongebob@bikinibottom.sea",
    "patrick@bikinibottom.sea",
    "squidward@bikinibottom.sea",
    "sandy@bikinibottom.sea",
    "mrkrabs@bikinibottom.sea",
]


async def ensure_demo(tx: Tx) -> tuple[Account, bool]:
    """The demo account, with its data created on the first run only; True when created now."""
    account = await AccountRepository(tx).get_by_name(DEMO_ACCOUNT_NAME)
    if account is not None:
        return account, False
    account = await accounts.create_account(tx, DEMO_ACCOUNT_NAME)
    demo_shops = [await shops.create(tx, account, shop) for shop in SHOPS]
    demo_contacts = [(await contacts.create(tx, account, ContactCreate(email=e)))[0] for e in EMAILS]
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=12)
    for n in range(24):
        starts_at = start + timedelta(hours=11 * n)
        shop = demo_shops[n % len(demo_shops)]
        await visits.create(
            tx,
            account,
            VisitCreate(
                contact_uuid=demo_contacts[n % len(demo_contacts)].uuid,
                shop_uuid=shop.uuid,
                external_id=f"demo-{n + 1:03d}",
                source="Website" if shop.type == "web" else "Kiosk",
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=20 + 5 * (n % 7)),
            ),
        )
    return account, True
