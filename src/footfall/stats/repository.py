"""The visit stats: visits, unique, new and returning contacts and the median duration, per time
bucket (and group), counted by the database in one statement."""

import functools
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, Integer, String, Text, bindparam, case, cast, extract, func, literal_column, null, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from footfall.db import Statement, Tx
from footfall.db.types import UTCDateTime
from footfall.tables import shops, visits
from footfall.visits.repository import VisitFilter, filtered_where

GROUPS = ("shop", "source")

_v, _s = visits.c, shops.c


class BucketCounts(NamedTuple):
    bucket: int  # 1 for the first bucket: PostgreSQL's width_bucket
    group: Any  # the shop's uuid, the source, or None
    visits: int
    unique_contacts: int
    new_contacts: int
    median_duration_seconds: int | None


class StartsSpan(NamedTuple):
    first: datetime | None
    last: datetime | None


def _width_bucket(dialect: str, moment: Any) -> Any:
    """The number of the bucket the moment falls in: how many of the boundaries (the parameter
    `boundaries`, a JSON array of ascending times) are at or before it."""
    boundaries = bindparam("boundaries", type_=Text)
    if dialect == "postgresql":
        each = func.json_array_elements_text(cast(boundaries, JSON)).table_valued("value").alias("boundary")
        at = cast(each.c.value, UTCDateTime)
        thresholds = select(func.array_agg(aggregate_order_by(at, at))).scalar_subquery()
        return func.width_bucket(moment, thresholds, type_=Integer)
    return func.footfall_width_bucket(moment, boundaries, type_=Integer)


def _median_seconds(dialect: str, duration: Any) -> Any:
    if dialect == "postgresql":
        middle = func.percentile_cont(literal_column("0.5")).within_group(duration)
    else:
        middle = func.footfall_median(duration)
    return cast(func.round(middle), Integer)


def _duration_seconds(dialect: str) -> Any:
    if dialect == "postgresql":
        return extract("epoch", _v.ends_at - _v.starts_at)
    return func.unixepoch(_v.ends_at) - func.unixepoch(_v.starts_at)


def _where(shape: tuple) -> list[Any]:
    return [*filtered_where(shape), _v.starts_at >= bindparam("period_start", type_=_v.starts_at.type),
            _v.starts_at < bindparam("period_end", type_=_v.starts_at.type)]


@functools.cache
def counts_statement(dialect: str, shape: tuple, group_by: str | None) -> Statement[BucketCounts]:
    """Per bucket and group: the visits, the contacts among them (each once), those whose first
    visit to the account (at any shop, from any source) is in that bucket, and the median duration
    of the visits that have an end. Built per combination on first use, as the list's are."""
    group = {None: cast(null(), String), "shop": _s.uuid, "source": _v.source}[group_by]
    source = visits.join(shops, _s.id == _v.shop_id) if group_by == "shop" else visits
    bucketed = (
        select(_width_bucket(dialect, _v.starts_at).label("bucket"), group.label("grp"), _v.contact_id,
               _duration_seconds(dialect).label("duration"))
        .select_from(source)
        .where(*_where(shape))
        .cte("bucketed")
    )
    per_contact = (
        select(bucketed.c.bucket, bucketed.c.grp, bucketed.c.contact_id, func.count().label("visits"))
        .group_by(bucketed.c.bucket, bucketed.c.grp, bucketed.c.contact_id)
        .cte("per_contact")
    )
    # Each contact's first visit, read on ix_visits_contact_starts: once per contact, not per visit.
    earlier = visits.alias("earlier")
    seen = select(bucketed.c.contact_id).distinct().subquery("seen")
    first_start = select(func.min(earlier.c.starts_at)).where(earlier.c.contact_id == seen.c.contact_id)
    # MATERIALIZED: referenced once, it would be inlined, and the lookup run for every row it joins.
    firsts = (select(seen.c.contact_id, _width_bucket(dialect, first_start.scalar_subquery()).label("first_bucket"))
              .cte("firsts").prefix_with("MATERIALIZED"))
    medians = (
        select(bucketed.c.bucket, bucketed.c.grp, _median_seconds(dialect, bucketed.c.duration).label("median"))
        .where(bucketed.c.duration.is_not(None))
        .group_by(bucketed.c.bucket, bucketed.c.grp)
        .cte("medians")
    )
    counted = (
        select(per_contact.c.bucket, per_contact.c.grp,
               cast(func.sum(per_contact.c.visits), Integer).label("visits"),
               func.count().label("unique_contacts"),
               cast(func.sum(case((firsts.c.first_bucket == per_contact.c.bucket, 1), else_=0)), Integer)
               .label("new_contacts"))
        .join_from(per_contact, firsts, firsts.c.contact_id == per_contact.c.contact_id)
        .group_by(per_contact.c.bucket, per_contact.c.grp)
        .subquery("counted")
    )
    return Statement(
        select(counted.c.bucket, counted.c.grp.label("group"), counted.c.visits, counted.c.unique_contacts,
               counted.c.new_contacts, medians.c.median.label("median_duration_seconds"))
        .join_from(counted, medians, (medians.c.bucket == counted.c.bucket)
                   & medians.c.grp.is_not_distinct_from(counted.c.grp), isouter=True)
        .order_by(counted.c.bucket),
        BucketCounts,
        dialect=dialect,
        bulk=True,
    )


@functools.cache
def span_statement(dialect: str, shape: tuple) -> Statement[StartsSpan]:
    """The first and last start among the visits that pass the filters."""
    return Statement(
        select(func.min(_v.starts_at).label("first"), func.max(_v.starts_at).label("last")).where(*filtered_where(shape)),
        StartsSpan,
        dialect=dialect,
        bulk=True,
    )


def _boundary_text(dialect: str, moment: datetime) -> str:
    """A boundary as the dialect compares it with a stored time: on SQLite the text it keeps."""
    utc = moment.astimezone(UTC)
    if dialect == "postgresql":
        return utc.isoformat()
    return utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class StatsRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def bucket_counts(self, account_id: int, filters: VisitFilter, group_by: str | None,
                            boundaries: list[datetime]) -> list[BucketCounts]:
        """The counts of each bucket between consecutive boundaries (and group) that has visits."""
        dialect = self.tx.dialect
        params = {"account_id": account_id, **filters.params(), "period_start": boundaries[0],
                  "period_end": boundaries[-1],
                  "boundaries": json.dumps([_boundary_text(dialect, moment) for moment in boundaries])}
        return await self.tx.fetch(counts_statement(dialect, filters.shape(), group_by), params)

    async def starts_span(self, account_id: int, filters: VisitFilter) -> StartsSpan:
        return await self.tx.fetchrow(span_statement(self.tx.dialect, filters.shape()),
                                      {"account_id": account_id, **filters.params()})
