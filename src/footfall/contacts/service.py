from collections.abc import Sequence
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from footfall.contacts.repository import ContactRepository
from footfall.contacts.schemas import ContactCreate, ContactOut
from footfall.db import SessionTx
from footfall.errors import ContactNotFound
from footfall.kit.pagination import PageParams
from footfall.models import Account, Contact, utcnow
from footfall.webhooks import service as webhooks


async def create(session: AsyncSession, account: Account, data: ContactCreate) -> tuple[Contact, bool]:
    """The account's contact with this email, created when missing; True when it was created now.

    Safe under concurrency: two creates of one email insert one row and return the same contact.
    """
    repository = ContactRepository(session)
    candidate = Contact(uuid=uuid4(), account_id=account.id, email=data.email, created_at=utcnow())
    created = await repository.insert_if_absent(candidate)
    contact = await repository.get_by_email(account.id, data.email)
    assert contact is not None  # inserted now or by the conflicting transaction, which has committed
    if created:
        await webhooks.emit(SessionTx(session), account.id, "contact_created", ContactOut.model_validate(contact).model_dump(mode="json"))
    return contact, created


async def get(session: AsyncSession, account: Account, uuid: UUID) -> Contact:
    contact = await ContactRepository(session).get(account.id, uuid)
    if contact is None:
        raise ContactNotFound()
    return contact


async def list_page(session: AsyncSession, account: Account, params: PageParams) -> tuple[Sequence[Contact], int]:
    repository = ContactRepository(session)
    total = await repository.count(account.id)
    rows = await repository.page(account.id, params.limit, params.offset) if params.reaches_rows(total) else []
    return rows, total
