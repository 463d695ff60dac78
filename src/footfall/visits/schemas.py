from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, create_model
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from footfall.contacts.schemas import Email
from footfall.errors import MESSAGES, ErrorBody, InvalidInput, field_errors
from footfall.kit.pagination import PageMeta
from footfall.kit.rendering import json_answer
from footfall.kit.time import IsoDateTimeIn, IsoDateTimeOut
from footfall.kit.types import RequestBody, ResponseBody, Text, unchangeable
from footfall.visits.repository import RANGE_COLUMNS, RANGE_OPERATORS, SORTS, Change, VisitFilter, VisitRow


class VisitCreate(RequestBody):
    contact_uuid: UUID = Field(description="The UUID of the visiting Contact")
    shop_uuid: UUID = Field(description="The UUID of the Shop you want to create the Visit for")
    external_id: Text | None = Field(default=None, description="A unique, external identifier for the Visit")
    source: Text | None = Field(default=None, description="Source from where the Visit was created")
    starts_at: IsoDateTimeIn | None = Field(
        default=None, description="The start date and time of the Visit (ISO 8601); defaults to now"
    )
    ends_at: IsoDateTimeIn | None = Field(default=None, description="The end date and time of the Visit (ISO 8601)")


class VisitUpdate(RequestBody):
    """Only the fields sent change. Shop and contact cannot be updated."""

    external_id: Text | None = Field(default=None, description="A unique, external identifier for the Visit")
    source: Text | None = Field(default=None, description="Source from where the Visit was created")
    starts_at: IsoDateTimeIn | None = Field(default=None, description="The start date and time (ISO 8601)")
    ends_at: IsoDateTimeIn | None = Field(default=None, description="The end date and time (ISO 8601)")
    # Refused with a per-field 1003 when sent; absent from the documented schema.
    contact_uuid: SkipJsonSchema[Annotated[None, unchangeable("contact", "a visit")]] = None
    shop_uuid: SkipJsonSchema[Annotated[None, unchangeable("shop", "a visit")]] = None


BATCH_LIMIT = 1000  # items in one POST /visits/batch


class BatchVisit(RequestBody):
    """One visit of a batch. Its contact by contact_uuid, or by contact_email (the account's contact
    with that email, created when there is none, as POST /contacts does); its shop by shop_uuid, or
    business_profile_uuid, Leat's name in its batch request, read as the same field."""

    contact_uuid: UUID | None = Field(default=None, description="The UUID of the visiting Contact")
    contact_email: Email | None = Field(default=None, description="Or the Contact's email")
    shop_uuid: UUID | None = Field(
        default=None,
        validation_alias=AliasChoices("shop_uuid", "business_profile_uuid"),
        description="The UUID of the Shop (business_profile_uuid is read as the same field)",
    )
    external_id: Text | None = Field(default=None, description="A unique, external identifier for the Visit")
    source: Text | None = Field(default=None, description="Source from where the Visit was created")
    starts_at: IsoDateTimeIn | None = Field(default=None, description="The start (ISO 8601); defaults to now")
    ends_at: IsoDateTimeIn | None = Field(default=None, description="The end (ISO 8601)")


class VisitBatch(BaseModel):
    # Each item is checked on its own (a bad one is answered in its place, the others go in): the
    # list is taken as it comes, and documented as BatchVisit items.
    visits: Annotated[
        list[Any],
        Field(min_length=1, max_length=BATCH_LIMIT),
        WithJsonSchema({"type": "array", "minItems": 1, "maxItems": BATCH_LIMIT,
                        "items": BatchVisit.model_json_schema()}),
    ]


class VisitContact(BaseModel):
    uuid: UUID
    email: str | None = Field(description="None for an anonymous contact")


class VisitOut(BaseModel):
    """A visit as every answer and event shows it (rendered by visit_fields; documented here)."""

    uuid: UUID
    contact: VisitContact
    external_id: str | None
    source: str | None
    starts_at: IsoDateTimeOut
    ends_at: IsoDateTimeOut | None
    created_at: IsoDateTimeOut


def visit_fields(row: VisitRow | Change) -> dict[str, Any]:
    """A visit resource, the one place its keys are written: rendered by kit.rendering.dumps."""
    return {
        "uuid": row.uuid,
        "contact": {"uuid": row.contact_uuid, "email": row.contact_email},
        "external_id": row.external_id,
        "source": row.source,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "created_at": row.created_at,
    }


class ChangedVisitOut(VisitOut):
    """A visit in Footfall's own routes (the changes feed): Leat's keys and updated_at."""

    updated_at: IsoDateTimeOut


class TombstoneOut(BaseModel):
    """What the changes feed and visit_deleted show of a deleted visit."""

    uuid: UUID
    external_id: str | None
    deleted_at: IsoDateTimeOut


class ChangesMeta(BaseModel):
    next_cursor: str = Field(description="Call with this cursor next; it stays put while nothing changes")
    has_more: bool = Field(description="More changes wait after next_cursor: call again at once")


class ChangesResponse(BaseModel):
    data: list[ChangedVisitOut | TombstoneOut]
    meta: ChangesMeta


def tombstone_fields(uuid: UUID, external_id: str | None, deleted_at: datetime) -> dict[str, Any]:
    return {"uuid": uuid, "external_id": external_id, "deleted_at": deleted_at}


def change_fields(change: Change) -> dict[str, Any]:
    """A change of the feed: the visit as it is now with updated_at, or its tombstone."""
    if change.deleted_at is not None:
        return tombstone_fields(change.uuid, change.external_id, change.deleted_at)
    return {**visit_fields(change), "updated_at": change.updated_at}


def changes_answer(rows: Sequence[Change], next_cursor: str, has_more: bool) -> Response:
    return json_answer({"data": [change_fields(row) for row in rows],
                        "meta": {"next_cursor": next_cursor, "has_more": has_more}})


_BOUND_WORDS = {"gte": "at or after", "gt": "after", "lte": "at or before", "lt": "before"}


class _ListFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shop_uuid: UUID | None = Field(default=None, description="A shop's UUID to filter the Visits by")
    source: Text | None = Field(default=None, description="Visits with exactly this source")
    external_id: Text | None = Field(default=None, description="The visit with this external_id")
    sort: Literal[SORTS] = Field(  # type: ignore[valid-type]
        default="-created_at", description="The order (`-` for descending); the visit's id breaks ties")


# Footfall's filters and sort of GET /visits, beside Leat's contact_uuid (query parameters), with a
# range bound per column and operator, named in Leat's bracket syntax: created_at[gte].
_RANGE_FIELDS: dict[str, Any] = {
    f"{column}_{op}": (IsoDateTimeIn | None, Field(default=None, alias=f"{column}[{op}]",
                                                   description=f"{column} {_BOUND_WORDS[op]} this time"))
    for column in RANGE_COLUMNS
    for op in RANGE_OPERATORS
}
VisitListFilters = create_model("VisitListFilters", __base__=_ListFilters, **_RANGE_FIELDS)


def read_filters(query: Mapping[str, str], contact_uuid: UUID | None) -> VisitFilter:
    """The list's filters from its query; 1003 on the parameter (as sent) that is malformed."""
    try:
        given = VisitListFilters.model_validate(dict(query))
    except ValidationError as error:
        raise InvalidInput(field_errors(error.errors(), located=False)) from None
    ranges = tuple((column, op, bound) for column in RANGE_COLUMNS for op in RANGE_OPERATORS
                   if (bound := getattr(given, f"{column}_{op}")) is not None)
    return VisitFilter(contact_uuid, given.shop_uuid, given.source, given.external_id, ranges, given.sort)


def read_query_filters(query: Mapping[str, str]) -> VisitFilter:
    """read_filters, with Leat's contact_uuid read from the same query: where FastAPI has not parsed
    it (the console's pages, the CLI's --filter)."""
    contact = query.get("contact_uuid")
    try:
        contact_uuid = UUID(contact) if contact else None
    except ValueError:
        raise InvalidInput({"contact_uuid": [MESSAGES["uuid_parsing"]]}) from None
    return read_filters(query, contact_uuid)


def filter_parameters(ordered: bool = True) -> list[dict[str, Any]]:
    """VisitListFilters as OpenAPI query parameters, for the documentation of the list (and, without
    `sort`, of the routes that take its filters but keep an order of their own)."""
    schema = VisitListFilters.model_json_schema(by_alias=True)
    return [
        {"name": name, "in": "query", "required": False, "description": field.pop("description", ""), "schema": field}
        for name, field in schema["properties"].items()
        if ordered or name != "sort"
    ]


class VisitResponse(ResponseBody):
    data: VisitOut
    meta: list[None] = []


class VisitListResponse(BaseModel):
    data: list[VisitOut]
    meta: PageMeta


class BatchOutcome(BaseModel):
    index: int = Field(description="The item's place in the request, from 0")
    status: int = Field(description="201 created, 200 the stored visit (a retry), or the error's status")
    data: VisitOut | None = Field(description="The visit as GET answers it; null when the item was refused")
    error: ErrorBody | None = Field(description="Why the item was refused, in Leat's error shape; null otherwise")


class BatchMeta(BaseModel):
    created: int
    retried: int
    failed: int


class VisitBatchResponse(BaseModel):
    data: list[BatchOutcome]
    meta: BatchMeta


def visit_answer(row: VisitRow, status_code: int = 200) -> Response:
    return json_answer({"data": visit_fields(row), "meta": []}, status_code)


def visits_answer(rows: Sequence[VisitRow], meta: PageMeta) -> Response:
    return json_answer({"data": [visit_fields(row) for row in rows], "meta": meta.model_dump()})
