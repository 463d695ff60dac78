"""Visit stats over time: the period cut into buckets where the caller's days begin, each bucket
counted by the database, and buckets without visits filled in with zeros so a chart has no gaps."""

import bisect
import itertools
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from footfall.accounts.repository import Account
from footfall.db import Tx
from footfall.errors import InvalidInput
from footfall.stats.cache import MAX_CHANGES, Entry, StatsCache
from footfall.stats.repository import BucketCounts, StatsRepository
from footfall.visits.repository import VisitFilter

INTERVALS = ("hour", "day", "week", "month")
GROUPS = ("shop", "source")  # what a bucket may be split by
MAX_BUCKETS = 2200  # a year by day is 366, 90 days by hour 2,160
# Items in one answer, a bucket per group: a year by day for 54 shops, about 4 MB of JSON. Checked
# before anything is counted, since the zeros of buckets without visits fill the answer too.
MAX_ITEMS = 20_000


@dataclass(frozen=True)
class Stats:
    buckets: list[datetime]  # the boundaries, local: bucket n runs from buckets[n] to buckets[n + 1]
    groups: list[Any]  # [None] without group_by
    counts: dict[tuple[int, Any], BucketCounts]  # by (bucket number from 1, group)


def _floor(moment: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket the moment falls in, in the zone."""
    local = moment.astimezone(zone)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if interval == "week":  # weeks begin on Monday (ISO 8601)
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return datetime.combine(day, time(), tzinfo=zone)


def _next(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket after the one starting at `start`. Days, weeks and months step on the
    wall clock (a day can be 23 or 25 hours long); hours step on UTC, so none is skipped or doubled
    where the clocks change."""
    if interval == "hour":
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    day = start.date()
    if interval == "day":
        day += timedelta(days=1)
    elif interval == "week":
        day += timedelta(days=7)
    else:
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return datetime.combine(day, time(), tzinfo=zone)


def _written(edge: datetime) -> datetime:
    """The edge, once it is a time an answer can write and a statement can take: in the years 1 to
    9999 on the zone's wall clock (it is made there) and in UTC (OverflowError otherwise)."""
    edge.astimezone(UTC)
    return edge


def _before_time(field: str, interval: str, zone: ZoneInfo) -> InvalidInput:
    return InvalidInput({field: [
        f"The first bucket (one {interval} in {zone.key}) would begin before the year 1, in UTC or in the "
        "time zone, where no time can be written; begin the period later."]})


def _after_time(field: str, interval: str, zone: ZoneInfo) -> InvalidInput:
    return InvalidInput({field: [
        f"The last bucket (one {interval} in {zone.key}) would end after the year 9999, in UTC or in the "
        "time zone, where no time can be written; end the period earlier."]})


def _first_edge(first: datetime, interval: str, zone: ZoneInfo, fields: tuple[str, str]) -> datetime:
    try:
        return _written(_floor(first, interval, zone))
    except (OverflowError, ValueError):  # what datetime and date raise past the years 1 to 9999
        # A moment of the year 9999 (in UTC) is past it on the zone's clock; one of the year 1, before it.
        if first.astimezone(UTC).year == MAXYEAR:
            raise _after_time(fields[1], interval, zone) from None
        raise _before_time(fields[0], interval, zone) from None


def boundaries(first: datetime, last: datetime, interval: str, zone: ZoneInfo,
               fields: tuple[str, str] = ("starts_at[gte]", "starts_at[lt]")) -> list[datetime]:
    """From the start of the bucket holding `first` to the end of the bucket holding `last`; 1003 on
    `fields` (the parameters that set the period's start and end) where a bucket would begin or end
    outside the years 1 to 9999."""
    edges = [_first_edge(first, interval, zone, fields)]
    while edges[-1] <= last:
        try:
            edges.append(_written(_next(edges[-1], interval, zone)))
        except (OverflowError, ValueError):
            raise _after_time(fields[1], interval, zone) from None
        if len(edges) > MAX_BUCKETS + 1:
            raise InvalidInput({"interval": [f"The period holds more than {MAX_BUCKETS} buckets of one {interval}; "
                                              "narrow starts_at or choose a longer interval."]})
    return edges


class _Period(NamedTuple):
    """The starts_at range the filters give, and the parameters (as sent) that give each end."""

    start: datetime | None
    end: datetime | None
    end_included: bool
    fields: tuple[str, str]


def _period(filters: VisitFilter) -> _Period:
    start = end = None
    end_included = False
    start_field, end_field = "starts_at[gte]", "starts_at[lt]"
    for column, op, bound in filters.ranges:
        if column != "starts_at":
            continue
        if op in ("gte", "gt"):
            if start is None or bound >= start:
                start, start_field = bound, f"starts_at[{op}]"
        elif end is None or bound < end or (bound == end and op == "lt"):
            end, end_included, end_field = bound, op == "lte", f"starts_at[{op}]"
    return _Period(start, end, end_included, (start_field, end_field))


async def _bound_groups(repository: StatsRepository, account_id: int, filters: VisitFilter, group_by: str,
                        edges: list[datetime], interval: str) -> None:
    """1003 on group_by, before anything is counted, when the answer would hold more than MAX_ITEMS
    items. The cheap bounds go first: a filter that leaves one group, then the account's shops or
    sources; only past those are the period's groups counted."""
    buckets = len(edges) - 1
    most = MAX_ITEMS // buckets  # at least 1: MAX_BUCKETS is below MAX_ITEMS
    if {"shop": filters.shop_uuid, "source": filters.source}[group_by] is not None or filters.external_id is not None:
        return
    if await repository.groups_at_most(account_id, group_by, most) <= most:
        return
    if await repository.group_count(account_id, filters, group_by, edges[0], edges[-1], most) <= most:
        return
    raise InvalidInput({"group_by": [
        f"The answer would hold more than {MAX_ITEMS} items, a bucket per {group_by}: {buckets} buckets of one "
        f"{interval} for more than {most} {group_by}s. Narrow starts_at, choose a longer interval, or filter by "
        f"{'shop_uuid' if group_by == 'shop' else 'source'}."]})


async def visit_stats(tx: Tx, account: Account, filters: VisitFilter, interval: str, group_by: str | None,
                      zone: ZoneInfo, cache: StatsCache | None = None) -> Stats | None:
    """The stats of the period the starts_at filters give, or, where they leave it open, from the
    first to the last visit that passes the filters; None when that leaves no period."""
    repository = StatsRepository(tx)
    start, end, end_included, fields = _period(filters)
    if start is None or end is None:
        span = await repository.starts_span(account.id, filters)
        if span.first is None or span.last is None:
            if start is None or end is None:
                return None
        else:
            start = span.first if start is None else start
            if end is None:
                end, end_included = span.last, True
    assert start is not None and end is not None  # given, or the span's (returned above without one)
    if end < start:
        return Stats([_first_edge(start, interval, zone, fields)], [], {})
    # The last edge is past `end` (or at it, when `end` itself is left out).
    edges = boundaries(start, end if end_included else end - timedelta(microseconds=1), interval, zone, fields)
    if group_by is not None:
        await _bound_groups(repository, account.id, filters, group_by, edges, interval)
    counted = await _counted(repository, account.id, filters, group_by, edges, cache, (interval, zone.key))
    counts = {(number, group): row for number, span in enumerate(itertools.pairwise(edges), start=1)
              for group, row in counted[span].items()}
    groups = [None] if group_by is None else sorted({group for _, group in counts},
                                                    key=lambda group: (group is not None, str(group)))
    return Stats(edges, groups, counts)


async def period_totals(tx: Tx, account: Account, filters: VisitFilter, start: datetime, end: datetime,
                        cache: StatsCache | None = None) -> BucketCounts | None:
    """The whole period as one bucket (its contacts each counted once); None without visits."""
    counted = await _counted(StatsRepository(tx), account.id, filters, None, [start, end], cache, ("period",))
    return counted[(start, end)].get(None)


async def visits_by_hour_of_day(tx: Tx, account: Account, filters: VisitFilter, start: datetime, end: datetime,
                                zone: ZoneInfo, cache: StatsCache | None = None) -> list[int]:
    """The period's visits by the hour of the day they started at, in the zone: 24 counts."""
    edges = boundaries(start, end - timedelta(microseconds=1), "hour", zone)
    counted = await _counted(StatsRepository(tx), account.id, filters, None, edges, cache, ("hour", zone.key))
    hours = [0] * 24
    for span, groups in counted.items():
        if None in groups:
            hours[span[0].astimezone(zone).hour] += groups[None].visits
    return hours


Span = tuple[datetime, datetime]


async def _counted(repository: StatsRepository, account_id: int, filters: VisitFilter, group_by: str | None,
                   edges: list[datetime], cache: StatsCache | None, kind: tuple) -> dict[Span, dict[Any, BucketCounts]]:
    """Each bucket's counts by group, counted now or, with a cache, kept from before where no
    change since can have moved them (stats/cache.py)."""
    spans = list(itertools.pairwise(edges))
    if cache is None:
        return await _count(repository, account_id, filters, group_by, spans)
    key = (account_id, kind, group_by, filters)
    epoch = await repository.visit_epoch(account_id)
    entry = cache.get(key)
    changes = [] if entry is None or entry.epoch != epoch else \
        await repository.changes(account_id, entry.position, MAX_CHANGES + 1)
    if entry is None or entry.epoch != epoch or len(changes) > MAX_CHANGES or \
            any(change.deleted for change in changes):
        # Read before counting: a change made meanwhile is then applied again next time, never missed.
        entry = Entry(await repository.feed_head(account_id), epoch)
        stale = set(spans)
    else:
        instants = [change.starts_at for change in changes]
        touched = {change.contact_uuid for change in changes}
        # A contact is new in the bucket of its first visit: where that was, and where it is now, when
        # the two differ (a first visit among the changes is in a stale bucket already).
        for earliest in await repository.earliest_starts(account_id, list(touched), entry.position) if touched else []:
            if earliest.first != earliest.first_unchanged:
                instants += [earliest.first, earliest.first_unchanged]
        moments = sorted(moment for moment in instants if moment is not None)
        stale = {span for span in spans
                 if span not in entry.buckets or _holds_any(span, moments)}
        settled = [change for change in changes if change.settled]  # the first ones, in feed order
        if settled:
            entry.position = (settled[-1].change_xid, settled[-1].change_seq)
    if stale:
        entry.buckets.update(await _count(repository, account_id, filters, group_by,
                                          [span for span in spans if span in stale]))
    cache.put(key, entry)
    return {span: entry.buckets[span] for span in spans}


def _holds_any(span: Span, moments: list[datetime]) -> bool:
    at = bisect.bisect_left(moments, span[0])
    return at < len(moments) and moments[at] < span[1]


async def _count(repository: StatsRepository, account_id: int, filters: VisitFilter, group_by: str | None,
                 spans: list[Span]) -> dict[Span, dict[Any, BucketCounts]]:
    """The spans' counts, a statement for each run of adjacent spans."""
    counted: dict[Span, dict[Any, BucketCounts]] = {span: {} for span in spans}
    runs: list[list[Span]] = []
    for span in spans:
        if runs and runs[-1][-1][1] == span[0]:
            runs[-1].append(span)
        else:
            runs.append([span])
    for run in runs:
        edges = [span[0] for span in run] + [run[-1][1]]
        for row in await repository.bucket_counts(account_id, filters, group_by, edges):
            counted[run[row.bucket - 1]][row.group] = row
    return counted
