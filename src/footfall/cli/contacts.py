"""Contacts."""

from typing import Any
from uuid import UUID

import click

from footfall.accounts import service as accounts
from footfall.cli.common import UUID_PARAM, CommandError, account_option, database_url_option, run, validate
from footfall.contacts import service as contacts
from footfall.contacts.schemas import ContactCreate, ContactOut
from footfall.db import Tx
from footfall.errors import ContactNotFound
from footfall.visits import contacts as contact_changes


@click.group("contacts")
def contacts_group() -> None:
    """Contacts, who visit."""


@contacts_group.command("create")
@account_option
@click.option("--email", required=True, help="The contact's email (kept lower-cased).")
@database_url_option
def contacts_create(account_uuid: UUID, email: str, database_url: str) -> None:
    """Create a contact (or print the account's existing contact with this email)."""
    data = validate(ContactCreate, email=email)

    async def work(tx: Tx) -> dict[str, Any]:
        contact, _ = await contacts.create(tx, await accounts.get_account(tx, account_uuid), data)
        return ContactOut.model_validate(contact).model_dump(mode="json")

    run(database_url, work)


@contacts_group.command("delete")
@click.argument("contact_uuid", type=UUID_PARAM)
@click.option("--gdpr", is_flag=True, help="Also erase the email from every stored event, delivery log and answer.")
@database_url_option
def contacts_delete(contact_uuid: UUID, gdpr: bool, database_url: str) -> None:
    """Delete a contact and its visits, as DELETE /contacts/{uuid} does (type GDPR with --gdpr)."""

    async def work(tx: Tx) -> dict[str, Any]:
        try:
            account = await accounts.get_account(tx, await contacts.account_of(tx, contact_uuid))
            await contact_changes.delete(tx, account, contact_uuid, gdpr=gdpr)
        except ContactNotFound:
            raise CommandError(f"no contact {contact_uuid}") from None
        return {"deleted": str(contact_uuid), "type": "GDPR" if gdpr else "DEFAULT"}

    run(database_url, work)
