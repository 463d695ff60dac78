import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from footfall.contacts.repository import AUDIENCE_BOUNDS, AUDIENCE_SORTS, Audience
from footfall.errors import InvalidInput, field_errors
from footfall.kit.pagination import PageMeta
from footfall.kit.time import IsoDateTimeIn, IsoDateTimeOut
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


class _AudienceFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shop_uuid: UUID | None = Field(
        default=None, description="Count and date only the visits at this shop (an unknown shop matches no contact)")
    sort: Literal[AUDIENCE_SORTS] = Field(  # type: ignore[valid-type]
        default="-created_at",
        description="The order (`-` for descending; contacts without visits last by either date); the "
                    "contact's id breaks ties. Newest contact first unless given")


_BOUND_WORDS = {"gte": "at least", "lte": "at most"}
_TIME_WORDS = {"gte": "at or after", "lt": "before"}
_MAX_COUNT = 2**63 - 1  # a BIGINT

# GET /contacts's audience bounds, named in Leat's bracket syntax: visit_count[gte], last_visit_at[lt].
_BOUND_FIELDS: dict[str, Any] = {
    f"{field}_{op}": (
        (Annotated[int, Field(ge=0, le=_MAX_COUNT)] | None,
         Field(default=None, alias=f"{field}[{op}]", description=f"Contacts with {_BOUND_WORDS[op]} this many visits"))
        if field == "visit_count" else
        (IsoDateTimeIn | None,
         Field(default=None, alias=f"{field}[{op}]",
               description=f"Contacts whose {field.removesuffix('_at').replace('_', ' ')} started "
                           f"{_TIME_WORDS[op]} this time (a contact without visits never passes)"))
    )
    for field, ops in AUDIENCE_BOUNDS.items()
    for op in ops
}
AudienceFilters = create_model("AudienceFilters", __base__=_AudienceFilters, **_BOUND_FIELDS)


def read_audience(query: Mapping[str, str]) -> Audience:
    """GET /contacts's audience from its query; 1003 on the parameter (as sent) that is malformed."""
    try:
        given = AudienceFilters.model_validate(dict(query))
    except ValidationError as error:
        raise InvalidInput(field_errors(error.errors(), located=False)) from None
    bounds = tuple((field, op, bound) for field, ops in AUDIENCE_BOUNDS.items() for op in ops
                   if (bound := getattr(given, f"{field}_{op}")) is not None)
    return Audience(given.shop_uuid, bounds, given.sort)


def audience_parameters(ordered: bool = True) -> list[dict[str, Any]]:
    """AudienceFilters as OpenAPI query parameters (without `sort` for the export, in id order)."""
    schema = AudienceFilters.model_json_schema(by_alias=True)
    return [
        {"name": name, "in": "query", "required": False, "description": field.pop("description", ""), "schema": field}
        for name, field in schema["properties"].items()
        if ordered or name != "sort"
    ]
