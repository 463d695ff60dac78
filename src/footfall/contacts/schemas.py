import re
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from footfall.kit.pagination import PageMeta
from footfall.kit.types import RequestBody, Text

# Deliberately loose (one @, no spaces, a dot in the domain): the address is an identifier
# here, and a stricter rule would refuse contacts that Leat accepts.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _normalise_email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("Must be a valid email address.")
    return value


Email = Annotated[Text, AfterValidator(_normalise_email), Field(examples=["spongebob@bikinibottom.sea"])]


class ContactCreate(RequestBody):
    email: Email


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uuid: UUID
    email: str


class ContactResponse(BaseModel):
    data: ContactOut
    meta: list[None] = []


class ContactListResponse(BaseModel):
    data: list[ContactOut]
    meta: PageMeta
