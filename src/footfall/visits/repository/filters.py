"""The SQL of the visits list's filters and sorts beyond Leat's: their conditions (the stats and the
export read on them too), and the count and page of each combination, built at its first use."""

import functools
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select

from footfall.db import Statement, Tx, paged
from footfall.tables import contacts, shops, visits
from footfall.visits.repository.rows import PageRow, visit_rows

RANGE_COLUMNS = ("created_at", "starts_at", "updated_at")
RANGE_OPERATORS = {"gte": "__ge__", "gt": "__gt__", "lte": "__le__", "lt": "__lt__"}
SORTS = ("created_at", "-created_at", "starts_at", "-starts_at", "updated_at", "-updated_at")

_v, _c, _s = visits.c, contacts.c, shops.c


@dataclass(frozen=True)
class VisitFilter:
    """The visits list's filters and sort beyond Leat's: each one given adds a condition."""

    contact_uuid: UUID | None = None
    shop_uuid: UUID | None = None
    source: str | None = None
    external_id: str | None = None
    ranges: tuple[tuple[str, str, datetime], ...] = ()  # (column, operator, bound), e.g. ("created_at", "gte", t)
    sort: str = "-created_at"

    @property
    def leats(self) -> bool:
        """Only what Leat's list takes: the kept counts and the prebuilt pages answer it."""
        return (self.shop_uuid is None and self.source is None and self.external_id is None
                and not self.ranges and self.sort == "-created_at")

    def shape(self) -> tuple:
        """What the statement depends on (which filters are given), not their values."""
        return (self.contact_uuid is not None, self.shop_uuid is not None, self.source is not None,
                self.external_id is not None, tuple((column, op) for column, op, _ in self.ranges), self.sort)

    def params(self) -> dict[str, Any]:
        given = {"contact_uuid": self.contact_uuid, "shop_uuid": self.shop_uuid, "source": self.source,
                 "external_id": self.external_id}
        params: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
        params.update({f"{column}_{op}": bound for column, op, bound in self.ranges})
        return params


@dataclass(frozen=True)
class FilteredStatements:
    count: Statement
    page: Statement[PageRow]


def filtered_where(shape: tuple) -> list[Any]:
    """The conditions of the list's filters (see VisitFilter.shape), on parameters named as in params()."""
    has_contact, has_shop, has_source, has_external_id, ranges, _ = shape
    # A contact or shop found in the account has only the account's visits: with either given, the
    # account's own condition is left out, so the contact's or shop's index answers alone (a count
    # reads the index only, never the rows).
    where = [] if has_contact or has_shop else [_v.account_id == bindparam("account_id", type_=_v.account_id.type)]
    if has_contact:
        where.append(_v.contact_id == select(_c.id).where(
            _c.account_id == bindparam("account_id", type_=_c.account_id.type),
            _c.uuid == bindparam("contact_uuid", type_=_c.uuid.type)).scalar_subquery())
    if has_shop:
        where.append(_v.shop_id == select(_s.id).where(
            _s.account_id == bindparam("account_id", type_=_s.account_id.type),
            _s.uuid == bindparam("shop_uuid", type_=_s.uuid.type)).scalar_subquery())
    if has_source:
        where.append(_v.source == bindparam("source", type_=_v.source.type))
    if has_external_id:
        where.append(_v.external_id == bindparam("external_id", type_=_v.external_id.type))
    where += [in_range(_v[column], column, op) for column, op in ranges]
    return where


def in_range(on: Any, column: str, op: str) -> Any:
    """`on` within the range the filter `column[op]` gives (its parameter named as in params()):
    the visits' own column, or another that holds the same kind of time."""
    return getattr(on, RANGE_OPERATORS[op])(bindparam(f"{column}_{op}", type_=on.type))


@functools.cache
def filtered_statements(dialect: str, shape: tuple) -> FilteredStatements:
    """The count and a page of one combination of filters and sort, built (and compiled) on first use
    and kept: the combinations are too many to build them all at import."""
    sort = shape[-1]
    statement = partial(Statement, dialect=dialect)
    where = filtered_where(shape)
    descending = sort.startswith("-")
    key = _v[sort.lstrip("-")]
    order = (key.desc(), _v.id.desc()) if descending else (key.asc(), _v.id.asc())
    ids = paged(select(_v.id).where(*where).order_by(*order)).subquery()
    count = select(func.count().label("count")).select_from(visits).where(*where)
    return FilteredStatements(
        count=statement(count),
        # The count as a last column: one statement, so the page and its total agree.
        page=statement(visit_rows.join(ids, ids.c.id == _v.id).order_by(*order)
                       .add_columns(count.scalar_subquery().label("total")), PageRow),
    )


INTEGER_MAX = 2**31 - 1


class FilteredQueries:
    """VisitRepository's reads of the filtered list, on its transaction."""

    tx: Tx

    async def filtered_page(
        self, account_id: int, filters: VisitFilter, limit: int, offset: int
    ) -> tuple[list[PageRow], int]:
        """A page of the visits that pass the filters, in their sort (id breaks ties), and their count,
        as one snapshot of the database saw them: one statement, unless the page is empty."""
        page = filtered_statements(self.tx.dialect, filters.shape()).page
        params = {"account_id": account_id, **filters.params(), "limit": limit, "offset": offset}
        # OFFSET is an INTEGER parameter: a page past it has no rows, as the count below says.
        if limit > 0 and offset <= INTEGER_MAX:
            rows = await self.tx.fetch(page, params)
            if rows:
                return rows, int(rows[0].total)
        total = await self.filtered_count(account_id, filters)
        if limit == 0 or offset >= total:
            return [], total
        # Visits came in between the two reads: both again, in one snapshot.
        await self.tx.snapshot()
        total = await self.filtered_count(account_id, filters)
        rows = await self.tx.fetch(page, params) if offset < total <= INTEGER_MAX else []
        return rows, total

    async def filtered_count(self, account_id: int, filters: VisitFilter) -> int:
        count = filtered_statements(self.tx.dialect, filters.shape()).count
        return int(await self.tx.fetchval(count, {"account_id": account_id, **filters.params()}))
