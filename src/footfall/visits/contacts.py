"""A contact's changes that reach its visits: the claim of an anonymous contact (its visits show the
new email) and the delete of a contact (its visits go with it). They live above contacts, as visits do."""

from uuid import UUID

from footfall.accounts.repository import Account
from footfall.contacts import service as contacts
from footfall.contacts.repository import Contact, ContactRepository
from footfall.db import Tx
from footfall.errors import ContactNotFound, InvalidInput
from footfall.kit.time import utcnow
from footfall.rules import service as rules
from footfall.visits.repository import VisitRepository
from footfall.visits.schemas import tombstone_fields
from footfall.webhooks import service as webhooks


async def claim(tx: Tx, account: Account, uuid: UUID, email: str) -> Contact:
    """Gives an anonymous contact its email; a repeat with the same email answers the same contact."""
    repository = ContactRepository(tx)
    claimed = await repository.claim(account.id, uuid, email)
    if claimed is None:
        raise InvalidInput({"email": ["Another contact of the account has this email."]})
    contact = await contacts.get(tx, account, uuid)
    if not claimed and contact.email != email:
        raise InvalidInput({"email": ["This contact is not anonymous: it has an email already."]})
    if claimed:
        await VisitRepository(tx).touch_contact_visits(contact.id, utcnow())
    return contact


async def delete(tx: Tx, account: Account, uuid: UUID, *, gdpr: bool) -> None:
    """Deletes the contact and its visits (tombstones in the changes feed; visit_deleted and
    contact_deleted go out). With gdpr, the email is also cut out of everything the account keeps
    of this contact (erase); contact_deleted then carries no email."""
    contact = await contacts.get(tx, account, uuid)
    repository = ContactRepository(tx)
    # Every write for the contact that started first commits before this goes on (and is deleted
    # with its tombstone and event); every one after finds the contact gone (404).
    if not await repository.lock(contact.id):
        raise ContactNotFound()
    now = utcnow()
    deleted = await VisitRepository(tx).delete_contact_visits(account.id, contact.id, now)
    await rules.forget_contact(tx, contact.id)
    if not await repository.delete(contact.id):
        raise ContactNotFound()
    subscription_ids = await webhooks.subscribers(tx, account.id, "visit_deleted")
    if subscription_ids:
        await webhooks.emit_to(tx, account.id, "visit_deleted", subscription_ids,
                               [tombstone_fields(visit.uuid, visit.external_id, now) for visit in deleted])
    if gdpr and contact.email is not None:
        await contacts.erase(tx, account, contact)
    await webhooks.emit(tx, account.id, "contact_deleted",
                        {"uuid": contact.uuid, "email": None if gdpr else contact.email, "deleted_at": now})
