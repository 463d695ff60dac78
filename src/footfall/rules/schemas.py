from typing import Annotated, Literal
from uuid import UUID

from fastapi import Path
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from footfall.kit.pagination import PageMeta
from footfall.kit.time import IsoDateTimeOut
from footfall.kit.types import NonEmptyText, RequestBody, ResponseBody, Text, unchangeable

RuleKind = Literal["milestone", "frequency", "lapse"]
RuleStatus = Literal["ACTIVE", "INACTIVE"]
MAX_AT = 20

RuleUuid = Annotated[UUID, Path(description="The visit rule's UUID")]
# Counts and spans: at least 1; bounded so that no arithmetic on them leaves int64 or a date.
Count = Annotated[int, Field(ge=1, le=1_000_000_000)]
Days = Annotated[int, Field(ge=1, le=36_500)]



class RuleCreate(RequestBody):
    name: NonEmptyText
    kind: RuleKind
    every: Count | None = Field(default=None, description="milestone: fires at every multiple of it")
    at: list[Count] | None = Field(default=None, max_length=MAX_AT,
                                   description="milestone: the counts it fires at, each once (at most 20)")
    count: Count | None = Field(default=None, description="frequency: visits needed within within_days")
    within_days: Days | None = Field(default=None, description="frequency: the window, ending at a visit's start")
    after_days: Days | None = Field(default=None, description="lapse: days since the latest qualifying visit")
    min_visits: Count | None = Field(default=None, description="lapse: qualifying visits before one can lapse "
                                                               "(default 1)")
    shop_uuid: UUID | None = Field(default=None, description="Only this shop's visits qualify")
    source: Text | None = Field(default=None, description="Only visits with this source qualify")
    status: RuleStatus = "ACTIVE"


class RuleUpdate(RequestBody):
    name: NonEmptyText | None = None
    status: RuleStatus | None = None
    kind: SkipJsonSchema[Annotated[None, unchangeable("kind", "a visit rule")]] = None
    every: SkipJsonSchema[Annotated[None, unchangeable("every", "a visit rule")]] = None
    at: SkipJsonSchema[Annotated[None, unchangeable("at", "a visit rule")]] = None
    count: SkipJsonSchema[Annotated[None, unchangeable("count", "a visit rule")]] = None
    within_days: SkipJsonSchema[Annotated[None, unchangeable("within_days", "a visit rule")]] = None
    after_days: SkipJsonSchema[Annotated[None, unchangeable("after_days", "a visit rule")]] = None
    min_visits: SkipJsonSchema[Annotated[None, unchangeable("min_visits", "a visit rule")]] = None
    shop_uuid: SkipJsonSchema[Annotated[None, unchangeable("shop_uuid", "a visit rule")]] = None
    source: SkipJsonSchema[Annotated[None, unchangeable("source", "a visit rule")]] = None


class RuleOut(ResponseBody):
    uuid: UUID
    name: str
    kind: RuleKind
    every: int | None
    at: list[int] | None
    count: int | None
    within_days: int | None
    after_days: int | None
    min_visits: int | None
    shop_uuid: UUID | None
    source: str | None
    status: RuleStatus
    created_at: IsoDateTimeOut


class RuleResponse(ResponseBody):
    data: RuleOut
    meta: list[None] = []


class RuleListResponse(ResponseBody):
    data: list[RuleOut]
    meta: PageMeta


class RuleProgressOut(ResponseBody):
    rule: RuleOut
    count: int = Field(description="The contact's qualifying visits")
    reached: list[int] = Field(description="milestone: the counts it fired at; frequency: the times it fired "
                                           "(1, 2, ...); lapse: empty")
    next_at: int | None = Field(description="milestone: the next count it fires at; null for the other kinds")
    lapsed: bool | None = Field(description="lapse: whether the contact has lapsed and not returned; null otherwise")
    last_visit_at: IsoDateTimeOut | None = Field(description="The contact's latest qualifying visit's start")


class RuleProgressResponse(ResponseBody):
    data: list[RuleProgressOut]
    meta: list[None] = []


class RuleRef(BaseModel):
    uuid: UUID
    name: str
    kind: RuleKind
