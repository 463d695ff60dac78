"""The visit stats: visits, unique, new and returning contacts and the median duration, per time
bucket (and group), counted by the database in one statement."""

import functools
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    distinct,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from footfall.db import Statement, Tx, limit, per_dialect
from footfall.db.types import UTCDateTime, sqlite_text
from footfall.tables import accounts, contact_visit_counts, contacts, shops, visit_tombstones, visits
from footfall.visits.repository import VisitFilter, below_horizon, filtered_where, in_range

_v, _s, _k = visits.c, shops.c, contact_visit_counts.c
_earlier = visits.alias("earlier")


def _first_start(contact_id: Any, *where: Any) -> Any:
    """The contact's earliest start (among the visits `where` admits): one probe of
    ix_visits_contact_starts, however many visits the contact has."""
    return (select(_earlier.c.starts_at).where(_earlier.c.contact_id == contact_id, *where)
            .order_by(_earlier.c.starts_at).limit(1).scalar_subquery())


class BucketCounts(NamedTuple):
    bucket: int  # 1 for the first bucket: PostgreSQL's width_bucket
    group: Any  # the shop's uuid, the source, or None
    visits: int
    unique_contacts: int
    new_contacts: int
    median_duration_seconds: int | None


class FeedPosition(NamedTuple):
    change_xid: int
    change_seq: int


class EarliestStarts(NamedTuple):
    contact_uuid: Any
    first: datetime | None
    first_unchanged: datetime | None


class StatsChange(NamedTuple):
    """A change after a feed position: a visit as it is now, or a tombstone."""

    change_xid: int
    change_seq: int
    contact_uuid: Any
    starts_at: datetime | None
    deleted: bool
    # Older than every transaction still running (always, on SQLite): nothing can commit behind it,
    # so a position may move past it. A newer change is seen all the same, and seen again next time.
    settled: bool


class StartsSpan(NamedTuple):
    first: datetime | None
    last: datetime | None


def _width_bucket(moment: Any, dialect: str) -> Any:
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
        # As numeric: PostgreSQL rounds a double's half to even, SQLite (and numeric) away from zero.
        middle: Any = cast(func.percentile_cont(literal_column("0.5")).within_group(duration), Numeric)
    else:
        middle = func.footfall_median(duration)
    # BIGINT: a visit may last from the year 1 to the year 9999, far past INTEGER's 68 years.
    return cast(func.round(middle), BigInteger)


def _duration_seconds(dialect: str) -> Any:
    if dialect == "postgresql":
        # A float8, as percentile_cont takes it: EXTRACT's numeric, cast for each visit, took as long
        # as sorting the durations.
        return func.date_part(literal_column("'epoch'"), _v.ends_at - _v.starts_at, type_=Float)
    return func.unixepoch(_v.ends_at) - func.unixepoch(_v.starts_at)


def _where(shape: tuple) -> list[Any]:
    return [*filtered_where(shape), _v.starts_at >= bindparam("period_start", type_=_v.starts_at.type),
            _v.starts_at < bindparam("period_end", type_=_v.starts_at.type)]


def _firsts_in_period() -> list[Any]:
    """The account's count rows whose contact's first visit of all is in the period."""
    return [_k.account_id == bindparam("account_id", type_=_k.account_id.type),
            _k.first_visit_at >= bindparam("period_start", type_=_k.first_visit_at.type),
            _k.first_visit_at < bindparam("period_end", type_=_k.first_visit_at.type)]


def _starts_ranges(on: Any, shape: tuple) -> list[Any]:
    """The shape's ranges of starts_at (starts_at[gte] and the like), on `on`."""
    return [in_range(on, name, op) for name, op in shape[4] if name == "starts_at"]


def _counted_per_bucket(shape: tuple, group_by: str | None, group: Any, source: Any) -> Any:
    """PostgreSQL: each bucket counted on its own, its visits read along the index of its range of
    starts (ix_visits_account_starts, or the contact's or shop's): only a bucket's contacts and
    durations are sorted, never the period's visits by bucket."""
    edge = (func.json_array_elements_text(cast(bindparam("boundaries", type_=Text), JSON))
            .table_valued("value", with_ordinality="n").render_derived(name="edge"))
    at = cast(edge.c.value, UTCDateTime)
    spans = select(cast(edge.c.n, Integer).label("bucket"), at.label("start"),
                   func.lead(at).over(order_by=edge.c.n).label("end")).cte("spans")

    def in_span(moment: Any) -> Any:
        return and_(moment >= spans.c.start, moment < spans.c.end)

    columns = [group.label("grp"), cast(func.count(), Integer).label("visits"),
               cast(func.count(distinct(_v.contact_id)), Integer).label("unique_contacts"),
               _median_seconds("postgresql", _duration_seconds("postgresql")).label("median")]  # nulls left out
    # A contact is new in a bucket where its first visit of all (kept on its count row) is in it.
    # Filtered or grouped, the count row is read beside each visit.
    plain = group_by is None and not any(shape[:4]) and all(name == "starts_at" for name, _ in shape[4])
    from_ = source
    if not plain:
        columns.append(cast(func.count(distinct(_v.contact_id)).filter(in_span(_k.first_visit_at)), Integer)
                       .label("new_contacts"))
        from_ = source.outerjoin(contact_visit_counts, _k.contact_id == _v.contact_id)
    bucket_rows = select(*columns).select_from(from_).where(*_where(shape), in_span(_v.starts_at))
    counted = (bucket_rows if group_by is None else bucket_rows.group_by(group)).lateral("counted")
    answer = [spans.c.bucket, counted.c.grp.label("group"), counted.c.visits, counted.c.unique_contacts]
    joined = spans.join(counted, true())
    if plain:
        # Unfiltered, the count rows are read once, each numbered by its first visit's bucket (beside
        # each visit they cost 0.2 s a million visits). The first visit is among its bucket's
        # counted visits unless it is before the period's first moment: then a later one must be.
        counted_there = (select(_earlier.c.id).where(
            _earlier.c.contact_id == _k.contact_id, in_span(_earlier.c.starts_at),
            *_starts_ranges(_earlier.c.starts_at, shape)).exists())
        first_counted = and_(true(), *_starts_ranges(_k.first_visit_at, shape))
        firsts = (
            select(spans.c.bucket, func.count().label("new"))
            .select_from(contact_visit_counts.join(
                spans, spans.c.bucket == _width_bucket(_k.first_visit_at, "postgresql")))
            .where(*_firsts_in_period(), or_(first_counted, counted_there))
            .group_by(spans.c.bucket)
            .subquery("firsts"))
        joined = joined.outerjoin(firsts, firsts.c.bucket == spans.c.bucket)
        answer.append(cast(func.coalesce(firsts.c.new, literal_column("0")), Integer).label("new_contacts"))
    else:
        answer.append(counted.c.new_contacts)
    # Grouped, a bucket without visits has no group; ungrouped (no GROUP BY, which would sort each
    # bucket's visits once more) it counts 0.
    return (select(*answer, counted.c.median.label("median_duration_seconds"))
            .select_from(joined).where(spans.c.end.is_not(None), counted.c.visits > 0).order_by(spans.c.bucket))


@functools.cache
def counts_statement(dialect: str, shape: tuple, group_by: str | None) -> Statement[BucketCounts]:
    """Per bucket and group: the visits, the contacts among them (each once), those whose first
    visit to the account (at any shop, from any source) is in that bucket, and the median duration
    of the visits that have an end. A contact's first visit is its kept one
    (contact_visit_counts.first_visit_at, moved by every write in the write's own transaction), not
    the visits probed for every contact seen. Built per combination on first use, as the list's are."""
    group = {None: cast(null(), String), "shop": _s.uuid, "source": _v.source}[group_by]
    source = visits.join(shops, _s.id == _v.shop_id) if group_by == "shop" else visits
    statement = functools.partial(Statement, record=BucketCounts, dialect=dialect, bulk=True)
    if dialect == "postgresql":
        # Its cost estimate (a guess of thousands of visits for each of hundreds of buckets) would set
        # off JIT compiling that takes as long as the count (0.4 s at a year by day).
        return statement(_counted_per_bucket(shape, group_by, group, source), no_jit=True)
    # The bucket of each first visit in the period, found once per contact (a Python function call
    # each), not once per visit: materialized, as flattened SQLite would find it once per visit.
    firsts = (select(_k.contact_id, _width_bucket(_k.first_visit_at, dialect).label("first_bucket"))
              .where(*_firsts_in_period())
              .cte("firsts").prefix_with("MATERIALIZED"))
    bucketed = (
        select(_width_bucket(_v.starts_at, dialect).label("bucket"), group.label("grp"), _v.contact_id,
               _duration_seconds(dialect).label("duration"), firsts.c.first_bucket)
        .select_from(source.outerjoin(firsts, firsts.c.contact_id == _v.contact_id))
        .where(*_where(shape))
    )
    # SQLite: a DISTINCT aggregate keeps a table of its own per group (a second of 1,000,000 visits
    # for each), so the contacts are counted a level below, one row per contact in a bucket.
    rows = bucketed.cte("bucketed").c
    per_contact = (
        select(rows.bucket, rows.grp, func.count().label("visits"),
               func.max(case((rows.first_bucket == rows.bucket, 1), else_=0)).label("new"))
        .group_by(rows.bucket, rows.grp, rows.contact_id)
        .subquery("per_contact")
    )
    counted = (
        select(per_contact.c.bucket, per_contact.c.grp, cast(func.sum(per_contact.c.visits), Integer).label("visits"),
               func.count().label("unique_contacts"), cast(func.sum(per_contact.c.new), Integer).label("new_contacts"))
        .group_by(per_contact.c.bucket, per_contact.c.grp)
        .subquery("counted")
    )
    medians = (
        select(rows.bucket, rows.grp, _median_seconds(dialect, rows.duration).label("median"))  # nulls left out
        .group_by(rows.bucket, rows.grp)
        .subquery("medians")
    )
    return statement(
        select(counted.c.bucket, counted.c.grp.label("group"), counted.c.visits, counted.c.unique_contacts,
               counted.c.new_contacts, medians.c.median.label("median_duration_seconds"))
        .join_from(counted, medians,
                   (medians.c.bucket == counted.c.bucket) & medians.c.grp.is_not_distinct_from(counted.c.grp))
        .order_by(counted.c.bucket))


@functools.cache
def groups_statement(dialect: str, shape: tuple, group_by: str) -> Statement:
    """How many groups the period's visits that pass the filters fall in (a missing source is one),
    counting no further than `limit`."""
    group = {"shop": _v.shop_id, "source": _v.source}[group_by]
    found = limit(select(group).where(*_where(shape)).distinct()).subquery("found")
    return Statement(select(func.count().label("groups")).select_from(found), dialect=dialect, bulk=True)


def _build_bound_statements(dialect: str) -> dict[str, Statement]:
    """How many groups an account's visits can fall in at most, counting to about `limit`: its
    shops, or its distinct sources and one for none, read by skipping along
    ix_visits_account_source_created, one probe a source, however many visits each has."""
    account_id = bindparam("account_id", type_=accounts.c.id.type)
    shop_count = select(func.count().label("groups")).select_from(
        limit(select(_s.id).where(_s.account_id == account_id)).subquery("some"))

    def source_after(*where: Any) -> Any:
        return (select(_v.source).where(_v.account_id == account_id, *where)
                .order_by(_v.source).limit(1).scalar_subquery())

    # Row n holds the account's n-th source in order, or null past the last one.
    sources = select(source_after(_v.source.is_not(None)).label("source"),
                     cast(literal_column("1"), Integer).label("n")).cte("sources", recursive=True)
    sources = sources.union_all(
        select(source_after(_v.source > sources.c.source), sources.c.n + 1)
        .where(sources.c.source.is_not(None), sources.c.n < bindparam("limit", type_=Integer)))
    source_count = select((func.count(sources.c.source) + 1).label("groups"))
    return {"shop": Statement(shop_count, dialect=dialect), "source": Statement(source_count, dialect=dialect)}


BOUND_STATEMENTS = per_dialect(_build_bound_statements)


@functools.cache
def span_statement(dialect: str, shape: tuple) -> Statement[StartsSpan]:
    """The first and last start among the visits that pass the filters."""
    return Statement(
        select(func.min(_v.starts_at).label("first"), func.max(_v.starts_at).label("last"))
        .where(*filtered_where(shape)),
        StartsSpan,
        dialect=dialect,
        bulk=True,
    )


def _build_cache_statements(dialect: str) -> dict[str, Statement]:
    account_id = bindparam("account_id", type_=accounts.c.id.type)

    def newest(table: Table) -> Any:
        columns = table.c
        return (select(columns.change_xid, columns.change_seq)
                .where(columns.account_id == account_id, *below_horizon(dialect, table))
                .order_by(columns.change_xid.desc(), columns.change_seq.desc()).limit(1).subquery())

    newest_visit, newest_tombstone = newest(visits), newest(visit_tombstones)
    both = union_all(select(newest_visit.c.change_xid, newest_visit.c.change_seq),
                     select(newest_tombstone.c.change_xid, newest_tombstone.c.change_seq)).subquery("newest")
    elements = func.json_each(bindparam("contact_uuids", type_=Text)) if dialect == "sqlite" else \
        func.json_array_elements_text(cast(bindparam("contact_uuids", type_=Text), JSON))
    given = elements.table_valued("value").alias("given")
    unchanged = tuple_(_earlier.c.change_xid, _earlier.c.change_seq) <= tuple_(
        bindparam("at_xid", type_=BigInteger), bindparam("at_seq", type_=BigInteger))

    # Every change this transaction sees after a position, not only those the feed shows: a write
    # that has committed counts at once, even while an older transaction (of any database on the
    # server) holds the feed's horizon back.
    def after_position(table: Table) -> list[Any]:
        columns = table.c
        return [columns.account_id == account_id, tuple_(columns.change_xid, columns.change_seq) > tuple_(
            bindparam("after_xid", type_=BigInteger), bindparam("after_seq", type_=BigInteger))]

    def settled(table: Table) -> Any:
        return (below_horizon(dialect, table) or [true()])[0].label("settled")

    live = limit(
        select(_v.change_xid, _v.change_seq, contacts.c.uuid.label("contact_uuid"), _v.starts_at,
               false().label("deleted"), settled(visits))
        .select_from(visits.join(contacts, contacts.c.id == _v.contact_id))
        .where(*after_position(visits)).order_by(_v.change_xid, _v.change_seq)).subquery("live")
    _t = visit_tombstones.c
    dead = limit(
        select(_t.change_xid, _t.change_seq, cast(null(), Uuid).label("contact_uuid"),
               cast(null(), UTCDateTime).label("starts_at"), true().label("deleted"), settled(visit_tombstones))
        .where(*after_position(visit_tombstones)).order_by(_t.change_xid, _t.change_seq)).subquery("dead")
    merged = union_all(select(*live.c), select(*dead.c)).subquery("changes")

    return {
        "changes": Statement(limit(select(*merged.c).order_by(merged.c.change_xid, merged.c.change_seq)),
                             StatsChange, dialect=dialect),
        "epoch": Statement(select(accounts.c.visit_epoch).where(accounts.c.id == account_id), dialect=dialect),
        "feed_head": Statement(
            select(both.c.change_xid, both.c.change_seq)
            .order_by(both.c.change_xid.desc(), both.c.change_seq.desc()).limit(1),
            FeedPosition, dialect=dialect),
        # Each contact's first start, and the first among its visits unchanged since a feed position:
        # the contact's first visit then (or one changed since, whose own bucket is counted again).
        "earliest_starts": Statement(
            select(contacts.c.uuid.label("contact_uuid"), _first_start(contacts.c.id).label("first"),
                   _first_start(contacts.c.id, unchanged).label("first_unchanged"))
            .where(contacts.c.account_id == account_id, contacts.c.uuid == cast(given.c.value, Uuid)),
            EarliestStarts, dialect=dialect, bulk=True),
    }


CACHE_STATEMENTS = per_dialect(_build_cache_statements)


def _boundary_text(dialect: str, moment: datetime) -> str:
    """A boundary as the dialect compares it with a stored time: on SQLite the text it keeps."""
    return moment.astimezone(UTC).isoformat() if dialect == "postgresql" else sqlite_text(moment)


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

    async def group_count(self, account_id: int, filters: VisitFilter, group_by: str, start: datetime,
                          end: datetime, most: int) -> int:
        """The number of groups with visits from start to end that pass the filters: exact up to
        `most`, and more than `most` past it (counting stops there)."""
        return int(await self.tx.fetchval(groups_statement(self.tx.dialect, filters.shape(), group_by),
                                          {"account_id": account_id, **filters.params(), "period_start": start,
                                           "period_end": end, "limit": most + 1}))

    async def groups_at_most(self, account_id: int, group_by: str, most: int) -> int:
        """At least as many as the groups any of the account's visits fall in, read without
        reading visits (its shops, or its sources and one for none), when that is at most `most`;
        more than `most` otherwise (counting stops there)."""
        return int(await self.tx.fetchval(BOUND_STATEMENTS[self.tx.dialect][group_by],
                                          {"account_id": account_id, "limit": most + 1}))

    async def starts_span(self, account_id: int, filters: VisitFilter) -> StartsSpan:
        return await self.tx.fetchone(span_statement(self.tx.dialect, filters.shape()),
                                      {"account_id": account_id, **filters.params()})

    async def visit_epoch(self, account_id: int) -> int:
        return int(await self.tx.fetchval(CACHE_STATEMENTS[self.tx.dialect]["epoch"], {"account_id": account_id}))

    async def feed_head(self, account_id: int) -> tuple[int, int]:
        """The position of the account's latest change the changes feed can show now."""
        row = await self.tx.fetchrow(CACHE_STATEMENTS[self.tx.dialect]["feed_head"], {"account_id": account_id})
        return (row.change_xid, row.change_seq) if row else (0, 0)

    async def changes(self, account_id: int, after: tuple[int, int], limit: int) -> list[StatsChange]:
        """Up to `limit` changes after the position `after` that this transaction sees, oldest first."""
        return await self.tx.fetch(CACHE_STATEMENTS[self.tx.dialect]["changes"], {
            "account_id": account_id, "after_xid": after[0], "after_seq": after[1], "limit": limit})

    async def earliest_starts(self, account_id: int, contact_uuids: list[Any],
                              position: tuple[int, int]) -> list[EarliestStarts]:
        return await self.tx.fetch(CACHE_STATEMENTS[self.tx.dialect]["earliest_starts"],
                                   {"account_id": account_id, "at_xid": position[0], "at_seq": position[1],
                                    "contact_uuids": json.dumps(
                                       # as each dialect keeps a uuid: SQLite as 32 hex digits
                                       [u.hex if self.tx.dialect == "sqlite" else str(u) for u in contact_uuids])})
