"""The export's SQL (visits/export.py runs it a chunk at a time): a chunk's rows after a visit id, where
a chunk ends, and on PostgreSQL a chunk written by the database itself for COPY. Built for each
combination of the list's filters at its first use."""

import functools
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import BigInteger, String, bindparam, cast, func, select

from footfall.db import Statement, Tx, limit
from footfall.db.copy import copy_out, iso8601, ndjson_line
from footfall.tables import contacts, shops, visits
from footfall.visits.repository.filters import VisitFilter, filtered_where

_v, _c, _s = visits.c, contacts.c, shops.c


class ExportRow(NamedTuple):
    """A visit as an export writes it: flat, and with its shop, so the file imports back."""

    id: int
    uuid: UUID
    contact_uuid: UUID
    contact_email: str | None
    shop_uuid: UUID
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ExportBound(NamedTuple):
    last_id: int | None  # the last visit id of the chunk; None when nothing is left
    rows: int


# A visit with its contact and shop: where an export reads.
_EXPORTED = visits.join(contacts, _c.id == _v.contact_id).join(shops, _s.id == _v.shop_id)


@functools.cache
def export_statement(dialect: str, shape: tuple) -> Statement[ExportRow]:
    """The next chunk of an export after a visit id, in id order (keyset: each chunk starts on the
    index where the last ended, however far into the account)."""
    return Statement(
        limit(
            select(_v.id, _v.uuid, _c.uuid.label("contact_uuid"), _c.email.label("contact_email"),
                   _s.uuid.label("shop_uuid"), _v.external_id, _v.source, _v.starts_at, _v.ends_at, _v.created_at,
                   _v.updated_at)
            .select_from(_EXPORTED)
            .where(*filtered_where(shape), _v.id > bindparam("after_id", type_=_v.id.type))
            .order_by(_v.id)
        ),
        ExportRow,
        dialect=dialect,
        bulk=True,
    )


@functools.cache
def export_bound_statement(dialect: str, shape: tuple) -> Statement[ExportBound]:
    """Where the next chunk of an export ends: the last of up to `limit` visit ids after `after_id`
    that pass the filters, and how many there are (fewer than `limit`: the export's last chunk)."""
    chunk = limit(select(_v.id).where(*filtered_where(shape), _v.id > bindparam("after_id", type_=_v.id.type))
                  .order_by(_v.id)).subquery()
    return Statement(select(func.max(chunk.c.id, type_=BigInteger).label("last_id"),
                            func.count(type_=BigInteger).label("rows")),
                     ExportBound, dialect=dialect, bulk=True)


def _export_fields() -> dict[str, Any]:
    """The export's columns as PostgreSQL writes them: text, times in the API's format, NULL where the
    visit has none."""
    return {"uuid": cast(_v.uuid, String), "contact_uuid": cast(_c.uuid, String), "contact_email": _c.email,
            "shop_uuid": cast(_s.uuid, String), "external_id": _v.external_id, "source": _v.source,
            "starts_at": iso8601(_v.starts_at), "ends_at": iso8601(_v.ends_at), "created_at": iso8601(_v.created_at),
            "updated_at": iso8601(_v.updated_at)}


_FREE_TEXT = ("contact_email", "external_id", "source")


@functools.cache
def export_copy_statement(shape: tuple, format: str) -> Statement:
    """The visits of one export chunk (ids after `after_id`, up to `last_id`), each written by
    PostgreSQL for COPY: as CSV fields, or as one NDJSON line (keys in the export's order, each value
    to_json of its field: the escaping orjson does)."""
    fields = _export_fields()
    if format == "csv":
        columns = [value.label(name) for name, value in fields.items()]
    else:
        columns = [ndjson_line(fields, as_json=_FREE_TEXT).label("line")]
    return Statement(
        select(*columns)
        .select_from(_EXPORTED)
        .where(*filtered_where(shape), _v.id > bindparam("after_id", type_=_v.id.type),
               _v.id <= bindparam("last_id", type_=_v.id.type))
        .order_by(_v.id),
        dialect="postgresql",
        bulk=True,
    )


class ExportQueries:
    """VisitRepository's reads for an export, on its transaction."""

    tx: Tx

    async def export_chunk(self, account_id: int, filters: VisitFilter, after_id: int, limit: int) -> list[ExportRow]:
        """Up to `limit` visits that pass the filters, after the visit id `after_id`, in id order."""
        params = {"account_id": account_id, **filters.params(), "after_id": after_id, "limit": limit}
        return await self.tx.fetch(export_statement(self.tx.dialect, filters.shape()), params)

    async def export_bound(self, account_id: int, filters: VisitFilter, after_id: int, limit: int) -> ExportBound:
        params = {"account_id": account_id, **filters.params(), "after_id": after_id, "limit": limit}
        return await self.tx.fetchone(export_bound_statement(self.tx.dialect, filters.shape()), params)

    async def export_copy(self, account_id: int, filters: VisitFilter, after_id: int, last_id: int,
                          format: str) -> tuple[int, bytes]:
        """The visits with ids in (after_id, last_id] that pass the filters, as PostgreSQL's COPY writes
        them in the format: (how many, the bytes). PostgreSQL only."""
        params = {"account_id": account_id, **filters.params(), "after_id": after_id, "last_id": last_id}
        return await copy_out(self.tx, export_copy_statement(filters.shape(), format), params, format)
