import itertools
from datetime import datetime
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from footfall.errors import InvalidInput
from footfall.stats.service import GROUPS, INTERVALS, Stats


class StatsBucket(BaseModel):
    bucket_start: datetime = Field(description="Where the bucket begins, in the timezone asked for",
                                   examples=["2024-05-01T00:00:00+02:00"])
    bucket_end: datetime = Field(description="Where the next bucket begins", examples=["2024-05-02T00:00:00+02:00"])
    shop_uuid: UUID | None = Field(default=None, description="With group_by=shop only: the shop")
    source: str | None = Field(default=None, description="With group_by=source only: the source (null for none)")
    visits: int
    unique_contacts: int = Field(description="Contacts with a visit in the bucket, each counted once")
    new_contacts: int = Field(description="Of those, the contacts whose first visit to the account is in the bucket")
    returning_contacts: int = Field(description="unique_contacts less new_contacts")
    median_duration_seconds: int | None = Field(description="The median of ends_at - starts_at over the visits "
                                                            "that have an ends_at; null when none has")


class StatsMeta(BaseModel):
    interval: Literal[INTERVALS]  # type: ignore[valid-type]
    timezone: str
    group_by: Literal[GROUPS] | None  # type: ignore[valid-type]
    period_start: datetime | None = Field(description="The first bucket's start; null without visits or bounds")
    period_end: datetime | None = Field(description="The last bucket's end")


class StatsResponse(BaseModel):
    data: list[StatsBucket]
    meta: StatsMeta


def read_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput({"timezone": ["Must be an IANA time zone name, e.g. Europe/Amsterdam or UTC."]}) from None


def _local(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def stats_fields(stats: Stats | None, interval: str, zone: ZoneInfo, group_by: str | None) -> dict[str, Any]:
    """The answer: a bucket per group, in bucket order, zeros where there were no visits."""
    group_key = {"shop": "shop_uuid", "source": "source"}.get(group_by or "")
    data = []
    edges = stats.buckets if stats else []
    for number, (start, end) in enumerate(itertools.pairwise(edges), start=1):
        assert stats is not None  # edges come from it
        for group in stats.groups:
            counts = stats.counts.get((number, group))
            item: dict[str, Any] = {"bucket_start": _local(start), "bucket_end": _local(end)}
            if group_key:
                item[group_key] = str(group) if group is not None and group_key == "shop_uuid" else group
            unique = counts.unique_contacts if counts else 0
            new = counts.new_contacts if counts else 0
            item.update(visits=counts.visits if counts else 0, unique_contacts=unique, new_contacts=new,
                        returning_contacts=unique - new,
                        median_duration_seconds=counts.median_duration_seconds if counts else None)
            data.append(item)
    meta = {"interval": interval, "timezone": zone.key, "group_by": group_by,
            "period_start": _local(edges[0]) if edges else None,
            "period_end": _local(edges[-1]) if len(edges) > 1 else None}
    return {"data": data, "meta": meta}
