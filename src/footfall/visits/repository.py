import functools
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.schema import CreateTable

from footfall.db import ConstraintViolation, Statement, Tx, binds, limit, listed_ids, paged, per_dialect, upsert
from footfall.db.types import UTCDateTime
from footfall.contacts.repository import kept_visit_count
from footfall.tables import (
    account_visit_counts, accounts, contact_visit_counts, contacts, shops, visit_tombstones, visits,
)
from footfall.webhooks.repository import subscribed

COUNT_SLOTS = 16  # rows an account's visit count is spread over
UPDATABLE = ("external_id", "source", "starts_at", "ends_at")

_v, _c, _s, _t = visits.c, contacts.c, shops.c, visit_tombstones.c


def _xid(expression: Any) -> Any:
    return cast(cast(expression, Text), BigInteger)


def changed(dialect: str) -> dict[str, Any]:
    """What an UPDATE of visits sets to move the row to the end of the changes feed (an INSERT takes
    it from the column defaults). On SQLite a trigger does it when updated_at is written
    (migration 0006)."""
    if dialect == "postgresql":
        return {"change_xid": _xid(func.pg_current_xact_id()), "change_seq": func.nextval(literal_column("'visit_change_seq'::regclass"))}
    return {}


class Visit(NamedTuple):
    """A row of visits, as a write returns it."""

    id: int
    uuid: UUID
    contact_id: int
    shop_id: int
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime


class VisitRow(NamedTuple):
    """A visit with its contact's uuid and email: what a visit answer is made of."""

    id: int
    uuid: UUID
    contact_id: int
    shop_id: int
    contact_uuid: UUID
    contact_email: str | None
    external_id: str | None
    source: str | None
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, visit: Visit, contact_uuid: UUID, contact_email: str | None) -> "VisitRow":
        return cls(contact_uuid=contact_uuid, contact_email=contact_email, **visit._asdict())


# The same fields and one more: the account subscribes to visit_updated; page 1 carries its total.
VisitToUpdate = NamedTuple("VisitToUpdate", [*VisitRow.__annotations__.items(), ("notify", bool)])
FirstPageRow = NamedTuple("FirstPageRow", [*VisitRow.__annotations__.items(), ("total", int)])


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


class DeletedVisit(NamedTuple):
    """What a delete returns of a visit: its tombstone's fields, and whose count it leaves."""

    uuid: UUID
    external_id: str | None
    contact_id: int


class ContactAndShop(NamedTuple):
    id: int
    uuid: UUID
    email: str | None
    shop_id: int | None  # None when the account has no such shop
    notify: bool  # the account subscribes to visit_created


class ContactCount(NamedTuple):
    id: int
    visit_count: int


# What a visit answer needs, read in one joined query.
_VISIT_ROW = (
    _v.id, _v.uuid, _v.contact_id, _v.shop_id, _c.uuid.label("contact_uuid"), _c.email.label("contact_email"),
    _v.external_id, _v.source, _v.starts_at, _v.ends_at, _v.created_at,
)
_VISIT = tuple(_v[name] for name in Visit._fields)
_DELETED = tuple(_v[name] for name in DeletedVisit._fields)
_visit_rows = select(*_VISIT_ROW).select_from(visits.join(contacts, _c.id == _v.contact_id))
_NEWEST_FIRST = (_v.created_at.desc(), _v.id.desc())
_OLDEST_FIRST = (_v.created_at.asc(), _v.id.asc())

# A bulk import's rows go here first (COPY on PostgreSQL), then into visits with one INSERT ... SELECT.
import_rows = Table(
    "visits_import",
    MetaData(),
    Column("n", Integer),
    Column("uuid", Uuid),
    Column("account_id", BigInteger),
    Column("contact_id", BigInteger),
    Column("shop_id", BigInteger),
    Column("external_id", String(255)),
    Column("source", String(255)),
    Column("starts_at", UTCDateTime),
    Column("ends_at", UTCDateTime),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    prefixes=["TEMPORARY"],
)
IMPORTED = tuple(column.name for column in import_rows.columns if column.name != "n")


@dataclass(frozen=True)
class VisitStatements:
    contact_and_shop: Statement[ContactAndShop]
    get: Statement[VisitRow]
    get_to_update: Statement[VisitToUpdate]
    get_by_external_id: Statement[VisitRow]
    insert: Statement[Visit]
    insert_unless_external_id_exists: Statement[Visit]
    update: Statement[Visit]
    # Both counts of one new visit, run in turn with the same parameters: one statement on
    # PostgreSQL (a data-modifying WITH, a round trip fewer per create), two on SQLite (no such WITH).
    count_one: tuple[Statement, ...]
    count_contacts: Statement  # many contacts at once, from a JSON object {contact id: added}
    count_account: Statement
    account_count: Statement
    contact_count: Statement[ContactCount]
    pages: dict[tuple[bool, bool], Statement[VisitRow]]  # (by contact, newest first)
    first_pages: dict[bool, Statement[FirstPageRow]]  # by contact
    touch_contact_visits: Statement
    delete_contact_visits: Statement[DeletedVisit]
    purge_contacts: Statement
    purge_batch: Statement[DeletedVisit]
    delete: Statement[DeletedVisit]
    insert_tombstone: Statement
    reshape: Statement
    changes: Statement[Change]
    create_import_rows: Statement
    analyze: Statement
    insert_imported: Statement[Visit]
    insert_imported_contacts: Statement  # the same, returning only the contact_id of each row
    clear_import_rows: Statement


def _account_total():
    """The account's kept visit count: the sum of its slots (see add_to_counts)."""
    counts = account_visit_counts.c
    return select(func.coalesce(func.sum(counts.count), 0).label("total")).where(
        counts.account_id == bindparam("account_id", type_=counts.account_id.type)
    )


def below_horizon(dialect: str, table: Any) -> list[Any]:
    """The changes the feed may show: on PostgreSQL only those older than the oldest transaction
    still running, one that commits late having a lower change_xid than changes already shown."""
    if dialect == "postgresql":
        return [table.c.change_xid < _xid(func.pg_snapshot_xmin(func.pg_current_snapshot()))]
    return []


def _build(dialect: str) -> VisitStatements:
    statement = partial(Statement, dialect=dialect)
    account = _v.account_id == bindparam("account_id")
    counts = account_visit_counts.c

    # Its parameters are named apart from the columns of contacts: SQLAlchemy would read a parameter
    # named like a column as a SET of the UPDATE in the PostgreSQL count_one.
    count_account = upsert(dialect, account_visit_counts)
    count_account = count_account.values(
        account_id=bindparam("counted_account", type_=counts.account_id.type),
        slot=bindparam("counted_slot", type_=counts.slot.type),
        count=bindparam("added_visits", type_=counts.count.type),
    ).on_conflict_do_update(index_elements=["account_id", "slot"], set_={"count": counts.count + count_account.excluded.count})
    contact_counts = contact_visit_counts.c
    count_contact = upsert(dialect, contact_visit_counts)
    count_contact = count_contact.values(
        contact_id=bindparam("counted_contact", type_=contact_counts.contact_id.type),
        count=bindparam("added", type_=contact_counts.count.type),
    ).on_conflict_do_update(index_elements=["contact_id"],
                            set_={"count": contact_counts.count + count_contact.excluded.count})
    if dialect == "postgresql":
        # The account's row is written from the contact's RETURNING, so the contact's row is locked
        # first, as every other writer of counts locks them (a WITH's statements otherwise run in
        # no set order, and a create deadlocked with a batch that held its contact's row).
        counted = count_contact.returning(contact_counts.contact_id).cte("counted_contact")
        account_after_contact = upsert(dialect, account_visit_counts).from_select(
            ["account_id", "slot", "count"],
            select(bindparam("counted_account", type_=counts.account_id.type),
                   bindparam("counted_slot", type_=counts.slot.type),
                   bindparam("added_visits", type_=counts.count.type)).select_from(counted),
        )
        account_after_contact = account_after_contact.on_conflict_do_update(
            index_elements=["account_id", "slot"], set_={"count": counts.count + account_after_contact.excluded.count})
        count_one = (statement(account_after_contact.add_cte(counted)),)
        added = func.json_each_text(cast(bindparam("counts", type_=Text), JSON)).table_valued("key", "value")
    else:
        count_one = (statement(count_contact), statement(count_account))
        added = func.json_each(bindparam("counts", type_=Text)).table_valued("key", "value")
    added = added.alias("added")
    # `WHERE true`: SQLite reads an upsert's SELECT without a WHERE as ambiguous.
    count_contacts = upsert(dialect, contact_visit_counts).from_select(
        ["contact_id", "count"],
        select(cast(added.c.key, BigInteger), cast(added.c.value, BigInteger)).where(true()),
    )
    count_contacts = count_contacts.on_conflict_do_update(
        index_elements=["contact_id"], set_={"count": contact_counts.count + count_contacts.excluded.count})

    shop_id = select(_s.id).where(_s.account_id == bindparam("account_id"), _s.uuid == bindparam("shop_uuid"))
    insert_visit = upsert(dialect, visits).values(
        binds(visits, "uuid", "account_id", "contact_id", "shop_id", "external_id", "source", "starts_at", "ends_at",
              "created_at", "updated_at")
    )
    account_id = bindparam("account_id", type_=_v.account_id.type)

    # (by contact, newest first) -> a page at any offset, the contact given by id: the rows found on
    # the index alone, then joined (a deferred join).
    pages = {}
    for by_contact in (False, True):
        for newest_first in (False, True):
            order = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
            filters = [account, _v.contact_id == bindparam("contact_id")] if by_contact else [account]
            ids = paged(select(_v.id).where(*filters).order_by(*order)).subquery()
            pages[(by_contact, newest_first)] = statement(
                _visit_rows.join(ids, ids.c.id == _v.id).order_by(*order), VisitRow
            )

    # Page 1 with its total as a last column, in one round trip: newest first needs no total to find
    # its rows, and an empty first page means a total of 0. No deferred join at offset 0: read
    # backwards along the index, the first `limit` rows are the page. The contact given by uuid.
    filter_contact = contacts.alias("filter_contact")
    by_uuid = (filter_contact.c.account_id == bindparam("account_id"),
               filter_contact.c.uuid == bindparam("contact_uuid", type_=_c.uuid.type))
    first = limit(_visit_rows.order_by(*_NEWEST_FIRST))
    first_pages = {
        False: statement(first.where(account).add_columns(_account_total().scalar_subquery().label("total")),
                         FirstPageRow),
        True: statement(
            first.where(account, _v.contact_id == select(filter_contact.c.id).where(*by_uuid).scalar_subquery())
            .add_columns(kept_visit_count(select(filter_contact.c.id).where(*by_uuid).scalar_subquery())
                         .label("total")),
            FirstPageRow,
        ),
    }

    from_import = (
        select(*(import_rows.c[name] for name in IMPORTED)).where(true()).order_by(import_rows.c.n)
    )
    insert_imported = upsert(dialect, visits).from_select(IMPORTED, from_import).on_conflict_do_nothing(
        index_elements=["account_id", "external_id"]
    )
    create_import_rows = CreateTable(import_rows, if_not_exists=True)

    # Found on ix_visits_account_created.
    oldest = (
        select(_v.id)
        .where(account, _v.created_at < bindparam("before", type_=_v.created_at.type))
        .order_by(_v.created_at, _v.id)
        .limit(bindparam("limit", type_=Integer))
    )

    # The feed: visits and tombstones after the cursor, each read along its own index, merged.
    # PostgreSQL reads only changes below the oldest transaction still running: one that commits
    # late has a lower change_xid, and would otherwise land behind a cursor already handed out.
    def after_cursor(table) -> list[Any]:
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

    return VisitStatements(
        contact_and_shop=statement(
            select(
                _c.id,
                _c.uuid,
                _c.email,
                shop_id.scalar_subquery().label("shop_id"),
                subscribed(account_id, "visit_created").label("notify"),
            ).where(_c.account_id == bindparam("account_id"), _c.uuid == bindparam("contact_uuid"))
            .with_for_update(of=contacts, key_share=True, read=True),  # held against a delete: ContactRepository.share
            ContactAndShop,
        ),
        get=statement(_visit_rows.where(account, _v.uuid == bindparam("uuid")), VisitRow),
        get_to_update=statement(
            _visit_rows.add_columns(subscribed(account_id, "visit_updated").label("notify"))
            .where(account, _v.uuid == bindparam("uuid"))
            .with_for_update(of=contacts, key_share=True, read=True),  # as contact_and_shop
            VisitToUpdate,
        ),
        get_by_external_id=statement(
            _visit_rows.where(account, _v.external_id == bindparam("external_id")), VisitRow
        ),
        insert=statement(insert_visit.returning(*_VISIT), Visit),
        insert_unless_external_id_exists=statement(
            insert_visit.on_conflict_do_nothing(index_elements=["account_id", "external_id"]).returning(*_VISIT),
            Visit,
        ),
        # Every column a PUT may change, each set to itself unless given: one statement for all PUTs.
        update=statement(
            update(visits)
            .where(_v.id == bindparam("visit_id"))
            .values({
                name: case((bindparam(f"set_{name}", type_=Boolean), bindparam(f"new_{name}", type_=_v[name].type)),
                           else_=_v[name])
                for name in UPDATABLE
            })
            .values(updated_at=bindparam("updated_at", type_=_v.updated_at.type), **changed(dialect))
            .returning(*_VISIT),
            Visit,
        ),
        count_one=count_one,
        count_contacts=statement(count_contacts, bulk=True),
        count_account=statement(count_account),
        account_count=statement(_account_total()),
        contact_count=statement(
            select(_c.id, kept_visit_count(_c.id).label("visit_count")).where(_c.account_id == bindparam("account_id"),
                                                 _c.uuid == bindparam("contact_uuid")),
            ContactCount,
        ),
        pages=pages,
        first_pages=first_pages,
        touch_contact_visits=statement(
            update(visits)
            .where(_v.contact_id == bindparam("contact_id", type_=_v.contact_id.type))
            .values(updated_at=bindparam("updated_at", type_=_v.updated_at.type), **changed(dialect)),
            bulk=True,
        ),
        delete_contact_visits=statement(
            delete(visits).where(_v.contact_id == bindparam("contact_id", type_=_v.contact_id.type))
            .returning(*_DELETED),
            DeletedVisit,
            bulk=True,
        ),
        # The contacts of the oldest `limit` visits created before a time, held against a delete as
        # every write for a contact is (ContactRepository.share); then those of their visits deleted.
        purge_contacts=statement(
            select(_c.id)
            .where(_c.id.in_(oldest.with_only_columns(_v.contact_id).scalar_subquery()))
            .order_by(_c.id)
            .with_for_update(of=contacts, key_share=True, read=True),
            bulk=True,
        ),
        purge_batch=statement(
            delete(visits)
            .where(_v.id.in_(
                oldest.where(_v.contact_id.in_(listed_ids(dialect, "contact_ids"))).scalar_subquery()
            ))
            .returning(*_DELETED),
            DeletedVisit,
            bulk=True,
        ),
        delete=statement(
            delete(visits).where(account, _v.uuid == bindparam("uuid", type_=_v.uuid.type)).returning(*_DELETED),
            DeletedVisit,
        ),
        insert_tombstone=statement(
            insert(visit_tombstones).values(binds(visit_tombstones, "account_id", "uuid", "external_id", "deleted_at"))
        ),
        reshape=statement(
            update(accounts).where(accounts.c.id == bindparam("reshaped_account", type_=accounts.c.id.type))
            .values(visit_epoch=accounts.c.visit_epoch + 1)
        ),
        changes=statement(changes, Change),
        create_import_rows=statement(create_import_rows),
        analyze=statement(text("ANALYZE visits"), bulk=True),
        insert_imported=statement(insert_imported.returning(*_VISIT), Visit, bulk=True),
        insert_imported_contacts=statement(insert_imported.returning(_v.contact_id), bulk=True),
        clear_import_rows=statement(import_rows.delete(), bulk=True),
    )


STATEMENTS = per_dialect(_build)

RANGE_COLUMNS = ("created_at", "starts_at", "updated_at")
RANGE_OPERATORS = {"gte": "__ge__", "gt": "__gt__", "lte": "__le__", "lt": "__lt__"}
SORTS = ("created_at", "-created_at", "starts_at", "-starts_at", "updated_at", "-updated_at")


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
        params = {name: value for name, value in given.items() if value is not None}
        params.update({f"{column}_{op}": bound for column, op, bound in self.ranges})
        return params


class FilteredStatements(NamedTuple):
    count: Statement
    page: Statement[VisitRow]


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


# A visit with its contact and shop: where an export reads.
_EXPORTED = visits.join(contacts, _c.id == _v.contact_id).join(shops, _s.id == _v.shop_id)


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
    for column, op in ranges:
        bound = bindparam(f"{column}_{op}", type_=_v[column].type)
        where.append(getattr(_v[column], RANGE_OPERATORS[op])(bound))
    return where


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


class ExportBound(NamedTuple):
    last_id: int | None  # the last visit id of the chunk; None when nothing is left
    rows: int


@functools.cache
def export_bound_statement(dialect: str, shape: tuple) -> Statement[ExportBound]:
    """Where the next chunk of an export ends: the last of up to `limit` visit ids after `after_id`
    that pass the filters, and how many there are (fewer than `limit`: the export's last chunk)."""
    chunk = limit(select(_v.id).where(*filtered_where(shape), _v.id > bindparam("after_id", type_=_v.id.type))
                  .order_by(_v.id)).subquery()
    return Statement(select(func.max(chunk.c.id, type_=BigInteger).label("last_id"),
                            func.count(type_=BigInteger).label("rows")),
                     ExportBound, dialect=dialect, bulk=True)


def _quoted(constant: str) -> Any:
    """A string constant written into the statement (COPY takes no parameters of its own)."""
    return literal_column("'" + constant.replace("'", "''") + "'", String)


def _export_fields() -> dict[str, Any]:
    """The export's columns as PostgreSQL writes them: text, times in the API's format (UTC, whole
    seconds, "+00:00"), NULL where the visit has none."""
    def moment(column: Any) -> Any:
        return func.to_char(func.timezone(_quoted("UTC"), column), _quoted('YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), type_=String)

    return {"uuid": cast(_v.uuid, String), "contact_uuid": cast(_c.uuid, String), "contact_email": _c.email,
            "shop_uuid": cast(_s.uuid, String), "external_id": _v.external_id, "source": _v.source,
            "starts_at": moment(_v.starts_at), "ends_at": moment(_v.ends_at), "created_at": moment(_v.created_at),
            "updated_at": moment(_v.updated_at)}


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
        line = _quoted("{")
        for n, (name, value) in enumerate(fields.items()):
            key = ("," if n else "") + json.dumps(name) + ":"
            text = cast(func.to_json(value), String) if name in _FREE_TEXT else _quoted('"') + value + _quoted('"')
            line = line + _quoted(key) + func.coalesce(text, _quoted("null"))
        columns = [(line + _quoted("}")).label("line")]
    return Statement(
        select(*columns)
        .select_from(_EXPORTED)
        .where(*filtered_where(shape), _v.id > bindparam("after_id", type_=_v.id.type),
               _v.id <= bindparam("last_id", type_=_v.id.type))
        .order_by(_v.id),
        dialect="postgresql",
        bulk=True,
    )


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
    return FilteredStatements(
        count=statement(select(func.count().label("count")).select_from(visits).where(*where)),
        page=statement(_visit_rows.join(ids, ids.c.id == _v.id).order_by(*order), VisitRow),
    )


class DuplicateExternalId(Exception):
    pass


class VisitRepository:
    """Every visits query, on the request's transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def contact_and_shop(self, account_id: int, contact_uuid: UUID, shop_uuid: UUID) -> ContactAndShop | None:
        """The account's contact with the id of its shop (None when no such shop); None when no such
        contact. One round trip for what a create checks."""
        params = {"account_id": account_id, "contact_uuid": contact_uuid, "shop_uuid": shop_uuid}
        return await self.tx.fetchrow(self.statements.contact_and_shop, params)

    async def contact_count(self, account_id: int, contact_uuid: UUID) -> ContactCount | None:
        """The account's contact's id and visit count, or None when no such contact."""
        return await self.tx.fetchrow(
            self.statements.contact_count, {"account_id": account_id, "contact_uuid": contact_uuid}
        )

    async def insert(self, values: dict[str, Any]) -> Visit | None:
        """Inserts a visit; None when its external_id exists in the account already (nothing written)."""
        statements = self.statements
        statement = statements.insert if values["external_id"] is None else statements.insert_unless_external_id_exists
        return await self.tx.fetchrow(statement, values)

    async def insert_many(self, rows: list[dict[str, Any]], *, full: bool) -> list[Any]:
        """Inserts visits in the given order (a uuid each, made here), skipping those whose external_id
        the account has, or an earlier row had. Returns for each inserted row its Visit or, without
        `full`, a record of its contact_id."""
        statements = self.statements
        # COPY into a temporary table, then one INSERT ... SELECT: several times faster than a
        # multi-row INSERT, and still in the transaction.
        await self.tx.execute(statements.create_import_rows)
        await self.tx.copy_records(
            import_rows, ("n", *IMPORTED), [(n, *(row[name] for name in IMPORTED)) for n, row in enumerate(rows)]
        )
        inserted = await self.tx.fetch(statements.insert_imported if full else statements.insert_imported_contacts)
        await self.tx.execute(statements.clear_import_rows)
        return inserted

    async def analyze(self) -> None:
        """Refreshes the planner's statistics of visits, after a bulk load."""
        await self.tx.execute(self.statements.analyze)

    async def get(self, account_id: int, uuid: UUID) -> VisitRow | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})

    async def get_to_update(self, account_id: int, uuid: UUID) -> VisitToUpdate | None:
        return await self.tx.fetchrow(self.statements.get_to_update, {"account_id": account_id, "uuid": uuid})

    async def get_by_external_id(self, account_id: int, external_id: str) -> VisitRow | None:
        return await self.tx.fetchrow(
            self.statements.get_by_external_id, {"account_id": account_id, "external_id": external_id}
        )

    async def update(self, visit_id: int, values: dict[str, Any], updated_at: datetime) -> Visit | None:
        """The visit updated; None when it is gone (a concurrent delete won)."""
        params: dict[str, Any] = {"visit_id": visit_id, "updated_at": updated_at}
        for name in UPDATABLE:
            params[f"set_{name}"] = name in values
            params[f"new_{name}"] = values.get(name)
        if "external_id" not in values:
            return await self.tx.fetchrow(self.statements.update, params)
        try:
            # A savepoint, so a refused external_id leaves the transaction usable on PostgreSQL.
            async with self.tx.savepoint():
                return await self.tx.fetchrow(self.statements.update, params)
        except ConstraintViolation:
            raise DuplicateExternalId() from None

    async def touch_contact_visits(self, contact_id: int, updated_at: datetime) -> None:
        """Moves the contact's visits to the end of the changes feed: they show the contact's email,
        which has changed."""
        await self.tx.execute(self.statements.touch_contact_visits, {"contact_id": contact_id, "updated_at": updated_at})

    async def delete(self, account_id: int, uuid: UUID, deleted_at: datetime) -> DeletedVisit | None:
        """Deletes the account's visit, leaving its tombstone and taking it off the counts; None when
        there is no such visit (or a concurrent delete won)."""
        deleted = await self.tx.fetchrow(self.statements.delete, {"account_id": account_id, "uuid": uuid})
        if deleted is not None:
            await self._bury(account_id, [deleted], deleted_at)
        return deleted

    async def delete_contact_visits(self, account_id: int, contact_id: int, deleted_at: datetime) -> list[DeletedVisit]:
        """Deletes the contact's visits, as delete() deletes one."""
        deleted = await self.tx.fetch(self.statements.delete_contact_visits, {"contact_id": contact_id})
        await self._bury(account_id, deleted, deleted_at)
        return deleted

    async def purge_batch(self, account_id: int, before: datetime, limit: int, deleted_at: datetime) -> int:
        """Deletes up to `limit` of the account's oldest visits created before `before`, as delete()
        deletes one; the number deleted. Fewer than `limit` does not mean none are left: a visit
        whose contact was deleted meanwhile gives its place to one that waits for the next batch."""
        window = {"account_id": account_id, "before": before, "limit": limit}
        held = await self.tx.fetch(self.statements.purge_contacts, window)
        if not held:
            return 0
        contact_ids = json.dumps([row.id for row in held])
        purged = await self.tx.fetch(self.statements.purge_batch, {**window, "contact_ids": contact_ids})
        await self._bury(account_id, purged, deleted_at)
        return len(purged)

    async def _bury(self, account_id: int, deleted: list[DeletedVisit], deleted_at: datetime) -> None:
        """What every delete of visits leaves: a tombstone each, for the feed, and counts without them."""
        if not deleted:
            return
        await self.tx.executemany(self.statements.insert_tombstone, [
            {"account_id": account_id, "uuid": visit.uuid, "external_id": visit.external_id, "deleted_at": deleted_at}
            for visit in deleted
        ])
        per_contact = Counter(visit.contact_id for visit in deleted)
        await self.add_to_counts(account_id, {contact_id: -n for contact_id, n in per_contact.items()},
                                 slot=deleted[0].contact_id)

    async def reshaped(self, account_id: int) -> None:
        """Moves the account's visit_epoch: a visit starts elsewhere in time, which the changes feed
        (showing a visit as it is now) cannot tell the stats cache."""
        await self.tx.execute(self.statements.reshape, {"reshaped_account": account_id})

    async def changes(self, account_id: int, after: tuple[int, int], limit: int) -> list[Change]:
        """Up to `limit` changes after the position `after`, oldest first."""
        return await self.tx.fetch(self.statements.changes, {
            "account_id": account_id, "after_xid": after[0], "after_seq": after[1], "limit": limit,
        })

    async def account_count(self, account_id: int) -> int:
        """The kept count (see add_to_counts): no count(*) that grows with the table."""
        return int(await self.tx.fetchval(self.statements.account_count, {"account_id": account_id}))

    async def add_to_counts(self, account_id: int, per_contact: dict[int, int], slot: int) -> None:
        """Adds new visits to the counts, in the transaction that inserts them."""
        account = {"counted_account": account_id, "counted_slot": slot % COUNT_SLOTS,
                   "added_visits": sum(per_contact.values())}
        if len(per_contact) == 1:
            [(contact_id, added)] = per_contact.items()
            for statement in self.statements.count_one:
                await self.tx.execute(statement, {**account, "counted_contact": contact_id, "added": added})
            return
        # In contact id order: two writers lock the count rows of the contacts they share in the same order.
        counts = json.dumps({str(contact_id): added for contact_id, added in sorted(per_contact.items())})
        await self.tx.execute(self.statements.count_contacts, {"counts": counts})
        await self.tx.execute(self.statements.count_account, account)

    async def filtered_page(
        self, account_id: int, filters: VisitFilter, limit: int, offset: int
    ) -> tuple[list[VisitRow], int]:
        """A page of the visits that pass the filters, in their sort (id breaks ties), and their count."""
        total = await self.filtered_count(account_id, filters)
        if limit == 0 or offset >= total:
            return [], total
        page = filtered_statements(self.tx.dialect, filters.shape()).page
        return await self.tx.fetch(page, {"account_id": account_id, **filters.params(), "limit": limit,
                                          "offset": offset}), total

    async def filtered_count(self, account_id: int, filters: VisitFilter) -> int:
        count = filtered_statements(self.tx.dialect, filters.shape()).count
        return int(await self.tx.fetchval(count, {"account_id": account_id, **filters.params()}))

    async def export_chunk(self, account_id: int, filters: VisitFilter, after_id: int, limit: int) -> list[ExportRow]:
        """Up to `limit` visits that pass the filters, after the visit id `after_id`, in id order."""
        params = {"account_id": account_id, **filters.params(), "after_id": after_id, "limit": limit}
        return await self.tx.fetch(export_statement(self.tx.dialect, filters.shape()), params)

    async def export_bound(self, account_id: int, filters: VisitFilter, after_id: int, limit: int) -> ExportBound:
        params = {"account_id": account_id, **filters.params(), "after_id": after_id, "limit": limit}
        return await self.tx.fetchrow(export_bound_statement(self.tx.dialect, filters.shape()), params)

    async def export_copy(self, account_id: int, filters: VisitFilter, after_id: int, last_id: int,
                          format: str) -> tuple[int, bytes]:
        """The visits with ids in (after_id, last_id] that pass the filters, as PostgreSQL's COPY writes
        them in the format: (how many, the bytes). PostgreSQL only."""
        params = {"account_id": account_id, **filters.params(), "after_id": after_id, "last_id": last_id}
        statement = export_copy_statement(filters.shape(), format)
        if format == "csv":
            return await self.tx.copy_out(statement, params, format="csv")
        copied, data = await self.tx.copy_out(statement, params, format="text")
        # COPY's text format doubles each backslash, and escapes only control characters besides,
        # which a JSON line never holds raw: undoubling gives the lines back as written.
        return copied, data.replace(b"\\\\", b"\\")

    async def first_page(self, account_id: int, contact_uuid: UUID | None, limit: int) -> tuple[list[FirstPageRow], int]:
        """Page 1 (limit > 0) and the total, of the account's visits or of its contact's (none, and 0,
        when the account has no such contact)."""
        params: dict[str, Any] = {"account_id": account_id, "limit": limit}
        if contact_uuid is not None:
            params["contact_uuid"] = contact_uuid
        rows = await self.tx.fetch(self.statements.first_pages[contact_uuid is not None], params)
        return rows, (int(rows[0].total) if rows else 0)

    async def page(
        self, account_id: int, contact_id: int | None, limit: int, offset: int, total: int
    ) -> list[VisitRow]:
        """Newest first. A page in the older half is read from the oldest end, so the last page costs
        what the first does; the rows are found on the index alone, then joined."""
        from_end = offset > total - offset - limit
        if from_end:
            limit, offset = min(limit, total - offset), max(0, total - offset - limit)
        statement = self.statements.pages[(contact_id is not None, not from_end)]
        params = {"account_id": account_id, "limit": limit, "offset": offset}
        if contact_id is not None:
            params["contact_id"] = contact_id
        rows = await self.tx.fetch(statement, params)
        return rows[::-1] if from_end else rows
