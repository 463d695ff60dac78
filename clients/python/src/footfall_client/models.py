"""Typed results. Unknown keys are ignored, so answers that grow keys still parse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def parse_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_datetime(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class VisitContact:
    uuid: str
    email: str | None


@dataclass(frozen=True)
class Visit:
    uuid: str
    contact: VisitContact
    external_id: str | None
    source: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None = None  # in the changes feed only

    @classmethod
    def from_json(cls, data: dict) -> Visit:
        contact = data.get("contact") or {}
        return cls(
            uuid=data["uuid"],
            contact=VisitContact(uuid=contact.get("uuid"), email=contact.get("email")),
            external_id=data.get("external_id"),
            source=data.get("source"),
            starts_at=parse_datetime(data.get("starts_at")),
            ends_at=parse_datetime(data.get("ends_at")),
            created_at=parse_datetime(data.get("created_at")),
            updated_at=parse_datetime(data.get("updated_at")),
        )


@dataclass(frozen=True)
class Tombstone:
    """What the changes feed shows of a deleted visit."""

    uuid: str
    external_id: str | None
    deleted_at: datetime | None

    @classmethod
    def from_json(cls, data: dict) -> Tombstone:
        return cls(uuid=data["uuid"], external_id=data.get("external_id"),
                   deleted_at=parse_datetime(data.get("deleted_at")))


@dataclass(frozen=True)
class ChangesPage:
    items: list
    next_cursor: str
    has_more: bool

    @classmethod
    def from_json(cls, body: dict) -> ChangesPage:
        items = [Tombstone.from_json(item) if "deleted_at" in item else Visit.from_json(item) for item in body["data"]]
        return cls(items=items, next_cursor=body["meta"]["next_cursor"], has_more=body["meta"]["has_more"])


@dataclass(frozen=True)
class StatsBucket:
    bucket_start: datetime
    bucket_end: datetime
    visits: int
    unique_contacts: int
    new_contacts: int
    returning_contacts: int
    median_duration_seconds: int | None
    shop_uuid: str | None = None  # with group_by="shop"
    source: str | None = None  # with group_by="source"

    @classmethod
    def from_json(cls, data: dict) -> StatsBucket:
        return cls(bucket_start=parse_datetime(data["bucket_start"]), bucket_end=parse_datetime(data["bucket_end"]),
                   visits=data["visits"], unique_contacts=data["unique_contacts"], new_contacts=data["new_contacts"],
                   returning_contacts=data["returning_contacts"],
                   median_duration_seconds=data.get("median_duration_seconds"), shop_uuid=data.get("shop_uuid"),
                   source=data.get("source"))


@dataclass(frozen=True)
class Stats:
    buckets: list[StatsBucket]
    interval: str
    timezone: str
    group_by: str | None
    period_start: datetime | None
    period_end: datetime | None

    @classmethod
    def from_json(cls, body: dict) -> Stats:
        meta = body["meta"]
        return cls(buckets=[StatsBucket.from_json(item) for item in body["data"]], interval=meta["interval"],
                   timezone=meta["timezone"], group_by=meta.get("group_by"),
                   period_start=parse_datetime(meta.get("period_start")),
                   period_end=parse_datetime(meta.get("period_end")))


@dataclass(frozen=True)
class Shop:
    uuid: str
    name: str
    type: str | None
    reference: str | None

    @classmethod
    def from_json(cls, data: dict) -> Shop:
        return cls(uuid=data["uuid"], name=data.get("name"), type=data.get("type"), reference=data.get("reference"))


@dataclass(frozen=True)
class Contact:
    uuid: str
    email: str | None
    visit_count: int = 0
    first_visit_at: datetime | None = None  # the starts_at of its earliest visit
    last_visit_at: datetime | None = None

    @classmethod
    def from_json(cls, data: dict) -> Contact:
        return cls(uuid=data["uuid"], email=data.get("email"), visit_count=data.get("visit_count", 0),
                   first_visit_at=parse_datetime(data.get("first_visit_at")),
                   last_visit_at=parse_datetime(data.get("last_visit_at")))


@dataclass(frozen=True)
class VisitRule:
    """A visit rule: a milestone (every or at), a frequency (count within within_days) or a lapse
    (after_days, min_visits); the numbers of the other kinds are None."""

    uuid: str
    name: str
    kind: str  # milestone, frequency or lapse
    status: str  # ACTIVE or INACTIVE
    every: int | None = None
    at: list[int] | None = None
    count: int | None = None
    within_days: int | None = None
    after_days: int | None = None
    min_visits: int | None = None
    shop_uuid: str | None = None  # only this shop's visits count
    source: str | None = None  # only visits with this source count
    created_at: datetime | None = None

    @classmethod
    def from_json(cls, data: dict) -> VisitRule:
        return cls(
            uuid=data["uuid"], name=data["name"], kind=data["kind"], status=data["status"],
            every=data.get("every"), at=data.get("at"), count=data.get("count"), within_days=data.get("within_days"),
            after_days=data.get("after_days"), min_visits=data.get("min_visits"), shop_uuid=data.get("shop_uuid"),
            source=data.get("source"), created_at=parse_datetime(data.get("created_at")),
        )


@dataclass(frozen=True)
class RuleProgress:
    """A contact's standing with one rule."""

    rule: VisitRule
    count: int  # the contact's qualifying visits
    reached: list[int]  # milestone: the counts it fired at; frequency: the times it fired (1, 2, ...)
    next_at: int | None  # milestone: the next count it fires at
    lapsed: bool | None  # lapse: whether the contact lapsed and has not returned
    last_visit_at: datetime | None  # the start of the contact's latest qualifying visit

    @classmethod
    def from_json(cls, data: dict) -> RuleProgress:
        return cls(rule=VisitRule.from_json(data["rule"]), count=data.get("count", 0),
                   reached=data.get("reached") or [], next_at=data.get("next_at"), lapsed=data.get("lapsed"),
                   last_visit_at=parse_datetime(data.get("last_visit_at")))


@dataclass(frozen=True)
class WebhookSubscription:
    uuid: str
    name: str
    event_type: str
    url: str
    status: str
    version: str | None
    created_at: datetime | None
    secret: str | None = None  # only in the answer to a create

    @classmethod
    def from_json(cls, data: dict) -> WebhookSubscription:
        return cls(
            uuid=data["uuid"], name=data.get("name"), event_type=data.get("event_type"), url=data.get("url"),
            status=data.get("status"), version=data.get("version"), created_at=parse_datetime(data.get("created_at")),
            secret=data.get("secret"),
        )


@dataclass(frozen=True)
class WebhookDelivery:
    id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime | None
    uuid: str | None = None  # the same as id

    @classmethod
    def from_json(cls, data: dict) -> WebhookDelivery:
        return cls(
            uuid=data.get("uuid", data["id"]), id=data["id"], event_id=data.get("event_id"),
            event_type=data.get("event_type"), state=data.get("state"),
            attempts=data.get("attempts", 0), last_status_code=data.get("last_status_code"),
            last_error=data.get("last_error"), last_attempt_at=parse_datetime(data.get("last_attempt_at")),
            next_attempt_at=parse_datetime(data.get("next_attempt_at")),
            delivered_at=parse_datetime(data.get("delivered_at")), created_at=parse_datetime(data.get("created_at")),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    current_page: int
    last_page: int
    per_page: int
    total: int

    @classmethod
    def from_json(cls, body: dict, parse: Any) -> Page[T]:
        meta = body.get("meta") or {}
        items = [parse(item) for item in body.get("data") or []]
        return cls(
            items=items,
            current_page=int(meta.get("current_page", 1)),
            last_page=int(meta.get("last_page", 1)),
            per_page=int(meta.get("per_page", len(items))),
            total=int(meta.get("total", len(items))),
        )
