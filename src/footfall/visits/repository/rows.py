"""What the visits' queries read a visit into, and the join a visit answer is read from."""

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from sqlalchemy import select

from footfall.tables import contacts, visits

_v, _c = visits.c, contacts.c


class Visit(NamedTuple):
    """A row of visits, as a write returns it."""

    id: int
    uuid: UUID
    contact_id: int
    shop_id: int
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime


class VisitRow(NamedTuple):
    """A visit with its contact's uuid and email: what a visit answer is made of."""

    id: int
    uuid: UUID
    contact_id: int
    shop_id: int
    contact_uuid: UUID
    contact_email: str | None
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, visit: Visit, contact_uuid: UUID, contact_email: str | None) -> "VisitRow":
        return cls(contact_uuid=contact_uuid, contact_email=contact_email, **visit._asdict())


# The same fields and one more: the account subscribes to visit_updated; page 1 carries its total.
# Made from VisitRow's fields at run time, so they cannot drift from it; mypy sees them as Any.
if TYPE_CHECKING:
    VisitToUpdate = Any
    PageRow = Any
else:
    _VISIT_FIELDS = list(VisitRow.__annotations__.items())
    VisitToUpdate = NamedTuple("VisitToUpdate", [*_VISIT_FIELDS, ("notify", bool)])
    PageRow = NamedTuple("PageRow", [*_VISIT_FIELDS, ("total", int)])  # a page's row and the page's total


class DeletedVisit(NamedTuple):
    """What a delete returns of a visit: its tombstone's fields, and whose count it leaves."""

    uuid: UUID
    external_id: str | None
    contact_id: int


class ContactAndShop(NamedTuple):
    id: int
    uuid: UUID
    email: str | None
    shop_id: int | None  # None when the account has no such shop
    notify: bool  # the account subscribes to visit_created
    rules: bool  # the account has ACTIVE visit rules


# What a visit answer needs, read in one joined query.
_VISIT_ROW = (
    _v.id, _v.uuid, _v.contact_id, _v.shop_id, _c.uuid.label("contact_uuid"), _c.email.label("contact_email"),
    _v.external_id, _v.source, _v.starts_at, _v.ends_at, _v.created_at,
)
visit_rows = select(*_VISIT_ROW).select_from(visits.join(contacts, _c.id == _v.contact_id))
