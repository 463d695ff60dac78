"""Shops."""

from typing import Any
from uuid import UUID

import click

from footfall.accounts import service as accounts
from footfall.cli.common import account_option, database_url_option, run, validate
from footfall.db import Tx
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate, ShopOut


@click.group("shops")
def shops_group() -> None:
    """Shops, where visits happen."""


@shops_group.command("create")
@account_option
@click.option("--name", required=True, help="The shop's name, as visits show it.")
@click.option("--type", "shop_type", default="physical", show_default=True, help="physical or web.")
@click.option("--reference", default=None, help="Your own reference for the shop, e.g. a branch code.")
@database_url_option
def shops_create(account_uuid: UUID, name: str, shop_type: str, reference: str | None, database_url: str) -> None:
    """Create a shop in the account and print it as the API shows it."""
    data = validate(ShopCreate, name=name, type=shop_type, reference=reference)

    async def work(tx: Tx) -> dict[str, Any]:
        shop = await shops.create(tx, await accounts.get_account(tx, account_uuid), data)
        return ShopOut.model_validate(shop).model_dump(mode="json")

    run(database_url, work)


@shops_group.command("list")
@account_option
@database_url_option
def shops_list(account_uuid: UUID, database_url: str) -> None:
    """Print the account's shops by name: {"data": [...]}, each as the API shows it."""

    async def work(tx: Tx) -> dict[str, Any]:
        found = await shops.list_all(tx, await accounts.get_account(tx, account_uuid))
        return {"data": [ShopOut.model_validate(shop).model_dump(mode="json") for shop in found]}

    run(database_url, work)
