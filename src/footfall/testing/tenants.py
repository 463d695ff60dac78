"""Tenants for tests and benchmarks: an account with a token, a shop and a contact, made through the
services as an operator's commands make them."""

from dataclasses import dataclass, field
from uuid import uuid4

from footfall.accounts import service as accounts
from footfall.contacts import service as contacts
from footfall.contacts.schemas import ContactCreate
from footfall.db import Database, migrate, open_database
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate


@dataclass
class Tenant:
    account_uuid: str
    token: str
    shop_uuid: str
    contact_uuid: str
    contact_email: str
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


async def tenant_in(database: Database) -> Tenant:
    async with database.transaction(write=True) as tx:
        account = await accounts.create_account(tx, "Test account")
        issued = await accounts.issue_token(tx, account, name="tests")
        shop = await shops.create(tx, account, ShopCreate(name="Krusty Krab", reference="KK-1"))
        contact, _ = await contacts.create(tx, account, ContactCreate(email=f"{uuid4().hex}@bikinibottom.sea"))
        assert contact.email is not None  # created with one just above
        return Tenant(str(account.uuid), issued.secret, str(shop.uuid), str(contact.uuid), contact.email)


async def make_tenant_at(database_url: str) -> Tenant:
    """A tenant in a database the caller has no app for (worker tests, bench/crash.py); migrates it first."""
    await migrate(database_url)
    database = open_database(database_url, pool_size=1)
    try:
        return await tenant_in(database)
    finally:
        await database.close()
