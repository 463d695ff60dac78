from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field
from pydantic.json_schema import SkipJsonSchema

from footfall.kit.pagination import PageMeta
from footfall.kit.time import IsoDateTimeIn, IsoDateTimeOut
from footfall.kit.types import RequestBody, Text


class VisitCreate(RequestBody):
    contact_uuid: UUID = Field(description="The UUID of the visiting Contact")
    shop_uuid: UUID = Field(description="The UUID of the Shop you want to create the Visit for")
    external_id: Text | None = Field(default=None, description="A unique, external identifier for the Visit")
    source: Text | None = Field(default=None, description="Source from where the Visit was created")
    starts_at: IsoDateTimeIn | None = Field(
        default=None, description="The start date and time of the Visit (ISO 8601); defaults to now"
    )
    ends_at: IsoDateTimeIn | None = Field(default=None, description="The end date and time of the Visit (ISO 8601)")


def _unchangeable(what: str):
    def refuse(_: Any) -> None:
        raise ValueError(f"The {what} of a visit cannot be changed.")

    return BeforeValidator(refuse)


class VisitUpdate(RequestBody):
    """Only the fields sent change. Shop and contact cannot be updated."""

    external_id: Text | None = Field(default=None, description="A unique, external identifier for the Visit")
    source: Text | None = Field(default=None, description="Source from where the Visit was created")
    starts_at: IsoDateTimeIn | None = Field(default=None, description="The start date and time (ISO 8601)")
    ends_at: IsoDateTimeIn | None = Field(default=None, description="The end date and time (ISO 8601)")
    # Refused with a per-field 1003 when sent; absent from the documented schema.
    contact_uuid: SkipJsonSchema[Annotated[None, _unchangeable("contact")]] = None
    shop_uuid: SkipJsonSchema[Annotated[None, _unchangeable("shop")]] = None


class VisitContact(BaseModel):
    uuid: UUID
    email: str


class VisitOut(BaseModel):
    uuid: UUID
    contact: VisitContact
    external_id: str | None
    source: str | None
    starts_at: IsoDateTimeOut
    ends_at: IsoDateTimeOut | None
    created_at: IsoDateTimeOut


class VisitResponse(BaseModel):
    data: VisitOut
    meta: list[None] = []


class VisitListResponse(BaseModel):
    data: list[VisitOut]
    meta: PageMeta
