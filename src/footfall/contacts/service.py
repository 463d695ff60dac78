from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.contacts.repository import EVERYONE, Audience, Contact, ContactRepository
from footfall.contacts.schemas import ContactCreate, ContactOut
from footfall.db import Tx
from footfall.errors import ContactNotFound
from footfall.idempotency.repository import IdempotencyRepository
from footfall.kit.pagination import PageParams
from footfall.kit.time import utcnow
from footfall.webhooks import service as webhooks


async def create(tx: Tx, account: Account, data: ContactCreate) -> tuple[Contact, bool]:
    """The account's contact with this email, created when missing; True when it was created now.

    Safe under concurrency: two creates of one email insert one row and return the same contact.
    """
    repository = ContactRepository(tx)
    created = await repository.insert_if_absent(
        {"uuid": uuid4(), "account_id": account.id, "email": data.email, "created_at": utcnow()}
    )
    contact = await repository.get_by_email(account.id, data.email)
    assert contact is not None  # inserted now or by the conflicting transaction, which has committed
    if created:
        await webhooks.emit(tx, account.id, "contact_created",
                            ContactOut.model_validate(contact).model_dump(mode="json"))
    return contact, created


async def create_anonymous(tx: Tx, account: Account) -> Contact:
    """A contact with no email yet (a kiosk's walk-in), to be claimed with one later."""
    repository = ContactRepository(tx)
    uuid = uuid4()
    await repository.insert_anonymous({"uuid": uuid, "account_id": account.id, "created_at": utcnow()})
    contact = await get(tx, account, uuid)
    await webhooks.emit(tx, account.id, "contact_created", ContactOut.model_validate(contact).model_dump(mode="json"))
    return contact


async def account_of(tx: Tx, uuid: UUID) -> UUID:
    """The uuid of the contact's account; ContactNotFound when no account has it."""
    account_uuid = await ContactRepository(tx).account_uuid_of(uuid)
    if account_uuid is None:
        raise ContactNotFound()
    return account_uuid


async def erase(tx: Tx, account: Account, contact: Contact) -> None:
    """Cuts the contact's email out of what the account keeps besides its contacts and visits: its
    events (the email field set to null, the email cut out of any other field) and their delivery
    log, and the stored Idempotency-Key answers that show the contact (dropped: a repeat runs afresh).

    Each is found by the contact it belongs to, never by the email's text (which other emails can
    contain): stored JSON shows the contact as an object whose "uuid" is its uuid, and `"uuid":"<its
    uuid>"` matches that alone (a uuid is one contact's; inside another string the quotes would be
    escaped; a longer key such as "contact_uuid" leaves no quote before `uuid`)."""
    owner = f'"uuid":"{contact.uuid}"'
    assert contact.email is not None  # an anonymous contact has no email to erase (the callers check)
    await webhooks.erase(tx, account.id, owner, contact.email)
    await IdempotencyRepository(tx).forget_answers_with(account.id, owner)


async def get(tx: Tx, account: Account, uuid: UUID) -> Contact:
    contact = await ContactRepository(tx).get(account.id, uuid)
    if contact is None:
        raise ContactNotFound()
    return contact


async def find_by_email(tx: Tx, account: Account, email: str) -> Contact:
    contact = await ContactRepository(tx).get_by_email(account.id, email)
    if contact is None:
        raise ContactNotFound()
    return contact


async def list_page(
    tx: Tx, account: Account, params: PageParams, audience: Audience = EVERYONE
) -> tuple[list[Contact], int]:
    """A page of the account's contacts (of an audience's, when one is given) and their total."""
    repository = ContactRepository(tx)
    await tx.snapshot()  # the page and its total agree
    if audience.everyone:
        total = await repository.count(account.id)
        rows = await repository.page(account.id, params.limit, params.offset) if params.reaches_rows(total) else []
        return rows, total
    total = await repository.audience_count(account.id, audience)
    if not params.reaches_rows(total):
        return [], total
    return await repository.audience_page(account.id, audience, params.limit, params.offset), total
