"""The changes feed's SQL: where a write puts a visit in the feed, and the feed read after a cursor."""

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    tuple_,
    union_all,
)

from footfall.db import Statement, Tx, limit, per_dialect
from footfall.db.types import UTCDateTime
from footfall.tables import contacts, visit_tombstones, visits

_v, _c, _t = visits.c, contacts.c, visit_tombstones.c


def _xid(expression: Any) -> Any:
    return cast(cast(expression, Text), BigInteger)


def changed(dialect: str) -> dict[str, Any]:
    """What an UPDATE of visits sets to move the row to the end of the changes feed (an INSERT takes
    it from the column defaults). On SQLite a trigger does it when updated_at is written
    (migration 0006)."""
    if dialect == "postgresql":
        return {"change_xid": _xid(func.pg_current_xact_id()),
                "change_seq": func.nextval(literal_column("'visit_change_seq'::regclass"))}
    return {}


def below_horizon(dialect: str, table: Any) -> list[Any]:
    """The changes the feed may show: on PostgreSQL only those older than the oldest transaction
    still running, one that commits late having a lower change_xid than changes already shown."""
    if dialect == "postgresql":
        return [table.c.change_xid < _xid(func.pg_snapshot_xmin(func.pg_current_snapshot()))]
    return []


class Change(NamedTuple):
    """One entry of the changes feed: a visit as it is now, or (deleted_at set) what is left of it."""

    change_xid: int
    change_seq: int
    uuid: UUID
    external_id: str | None
    deleted_at: datetime | None
    contact_uuid: UUID | None
    contact_email: str | None
    source: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class FeedStatements:
    changes: Statement[Change]


def _build(dialect: str) -> FeedStatements:
    statement = partial(Statement, dialect=dialect)

    # The feed: visits and tombstones after the cursor, each read along its own index, merged.
    # PostgreSQL reads only changes below the oldest transaction still running: one that commits
    # late has a lower change_xid, and would otherwise land behind a cursor already handed out.
    def after_cursor(table: Table) -> list[Any]:
        columns = table.c
        where = [columns.account_id == bindparam("account_id"),
                 tuple_(columns.change_xid, columns.change_seq)
                 > tuple_(bindparam("after_xid", type_=BigInteger), bindparam("after_seq", type_=BigInteger))]
        return where + below_horizon(dialect, table)

    def nothing(name: str, type_: Any) -> Any:
        return cast(null(), type_).label(name)  # typed: PostgreSQL reads a bare NULL in a UNION as text

    live = limit(
        select(
            _v.change_xid, _v.change_seq, _v.uuid, _v.external_id, nothing("deleted_at", UTCDateTime),
            _c.uuid.label("contact_uuid"), _c.email.label("contact_email"), _v.source, _v.starts_at, _v.ends_at,
            _v.created_at, _v.updated_at,
        )
        .select_from(visits.join(contacts, _c.id == _v.contact_id))
        .where(*after_cursor(visits))
        .order_by(_v.change_xid, _v.change_seq)
    ).subquery("live")
    dead = limit(
        select(
            _t.change_xid, _t.change_seq, _t.uuid, _t.external_id, _t.deleted_at,
            nothing("contact_uuid", Uuid), nothing("contact_email", String), nothing("source", String),
            *(nothing(name, UTCDateTime) for name in ("starts_at", "ends_at", "created_at", "updated_at")),
        )
        .where(*after_cursor(visit_tombstones))
        .order_by(_t.change_xid, _t.change_seq)
    ).subquery("dead")
    merged = union_all(select(*live.c), select(*dead.c)).subquery("changes")
    changes = limit(select(*merged.c).order_by(merged.c.change_xid, merged.c.change_seq))
    return FeedStatements(changes=statement(changes, Change))


STATEMENTS = per_dialect(_build)


class FeedQueries:
    """VisitRepository's reads of the changes feed, on its transaction."""

    tx: Tx

    async def changes(self, account_id: int, after: tuple[int, int], limit: int) -> list[Change]:
        """Up to `limit` changes after the position `after`, oldest first."""
        return await self.tx.fetch(STATEMENTS[self.tx.dialect].changes, {
            "account_id": account_id, "after_xid": after[0], "after_seq": after[1], "limit": limit,
        })
