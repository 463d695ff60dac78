from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.contacts.repository import Contact, ContactRepository
from footfall.contacts.schemas import ContactCreate, ContactOut
from footfall.db import Tx
from footfall.errors import ContactNotFound, InvalidInput
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
        await webhooks.emit(tx, account.id, "contact_created", ContactOut.model_validate(contact).model_dump(mode="json"))
    return contact, created


async def create_anonymous(tx: Tx, account: Account) -> Contact:
    """A contact with no email yet (a kiosk's walk-in), to be claimed with one later."""
    repository = ContactRepository(tx)
    uuid = uuid4()
    await repository.insert_anonymous({"uuid": uuid, "account_id": account.id, "created_at": utcnow()})
    contact = await repository.get(account.id, uuid)
    await webhooks.emit(tx, account.id, "contact_created", ContactOut.model_validate(contact).model_dump(mode="json"))
    return contact


async def claim(tx: Tx, account: Account, uuid: UUID, email: str) -> Contact:
    """Gives an anonymous contact its email; a repeat with the same email answers the same contact."""
    repository = ContactRepository(tx)
    claimed = await repository.claim(account.id, uuid, email)
    if claimed is None:
        raise InvalidInput({"email": ["Another contact of the account has this email."]})
    contact = await get(tx, account, uuid)
    if not claimed and contact.email != email:
        raise InvalidInput({"email": ["This contact is not anonymous: it has an email already."]})
    return contact


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


async def list_page(tx: Tx, account: Account, params: PageParams) -> tuple[list[Contact], int]:
    repository = ContactRepository(tx)
    total = await repository.count(account.id)
    rows = await repository.page(account.id, params.limit, params.offset) if params.reaches_rows(total) else []
    return rows, total
