import re
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from footfall.kit.pagination import PageMeta
from footfall.kit.time import IsoDateTimeOut
from footfall.kit.types import RequestBody, ResponseBody, Text

# Deliberately loose (one @, no spaces, a dot in the domain): the address is an identifier
# here, and a stricter rule would refuse contacts that Leat accepts.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _normalise_email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("Must be a valid email address.")
    return value


Email = Annotated[Text, AfterValidator(_normalise_email), Field(examples=["spongebob@bikinibottom.sea"])]


# The {uuid} of a contact's routes (here and in visits.contact_routes).
ContactUuid = Annotated[UUID, Path(description="The contact's UUID")]


class ContactCreate(RequestBody):
    email: Email


def _no_identifier(value: Any) -> None:
    if value is not None:
        raise ValueError("Footfall keeps no contact identifiers; leave contact_identifier_value out.")


class AnonymousContactCreate(RequestBody):
    contact_identifier_value: Annotated[None, BeforeValidator(_no_identifier)] = Field(
        default=None, description="Leat's contact identifier (a card or a code); Footfall keeps none"
    )


class ContactClaim(RequestBody):
    email: Email


DeletionKind = Literal["DEFAULT", "GDPR"]


def _deletion_type(value: Any) -> str:
    if value is None:
        return "DEFAULT"
    if not isinstance(value, str) or value.upper() not in get_args(DeletionKind):
        raise ValueError("Must be DEFAULT or GDPR.")
    return value.upper()


# Documented as its two values, and read in any case.
DeletionType = Annotated[
    DeletionKind, BeforeValidator(_deletion_type),
    Field(description="DEFAULT, or GDPR to erase the email from everything kept (read in any case)",
          examples=["GDPR"]),
]


class ContactDelete(RequestBody):
    type: DeletionType = "DEFAULT"


class DeletedContactResponse(ResponseBody):
    """Leat's recorded answer to a contact delete."""

    data: None = None
    meta: dict[str, Any] = {}


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uuid: UUID
    email: str | None = Field(description="None for an anonymous contact until it is claimed")
    visit_count: int = Field(description="How many visits the contact has")
    first_visit_at: IsoDateTimeOut | None = Field(description="The start of its first visit; null without visits")
    last_visit_at: IsoDateTimeOut | None = Field(description="The start of its latest visit; null without visits")


class ContactResponse(ResponseBody):
    data: ContactOut
    meta: list[None] = []


class ContactListResponse(BaseModel):
    data: list[ContactOut]
    meta: PageMeta
