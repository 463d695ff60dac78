import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import BigInteger, String, bindparam, cast, delete, func, insert, select, update

from footfall.db import (
    ConstraintViolation,
    Statement,
    Tx,
    binds,
    limit,
    listed_ids,
    listed_uuids,
    paged,
    per_dialect,
    upsert,
)
from footfall.db.copy import copy_out, iso8601, ndjson_line
from footfall.db.types import UTCDateTime
from footfall.tables import accounts, contact_visit_counts, contacts, shops, visits

_c = contacts.c


class Contact(NamedTuple):
    id: int
    uuid: UUID
    email: str | None  # None for an anonymous contact
    visit_count: int
    first_visit_at: datetime | None  # the earliest and latest starts_at of its visits
    last_visit_at: datetime | None


class ContactKey(NamedTuple):
    uuid: UUID
    id: int
    email: str | None


_v, _s, _k = visits.c, shops.c, contact_visit_counts.c


def kept_visit_count(contact_id: Any) -> Any:
    """The contact's kept visit count (contact_visit_counts; no row is 0)."""
    return func.coalesce(select(_k.count).where(_k.contact_id == contact_id).scalar_subquery(), 0)


# A contact with its kept count and first and last visit (visits.repository.counts keeps them).
_KEPT = contacts.outerjoin(contact_visit_counts, _k.contact_id == _c.id)
_CONTACT = (_c.id, _c.uuid, _c.email, func.coalesce(_k.count, 0).label("visit_count"), _k.first_visit_at,
            _k.last_visit_at)


@dataclass(frozen=True)
class ContactStatements:
    insert_if_absent: Statement
    insert_anonymous: Statement
    claim: Statement
    delete: Statement
    account_uuid_of: Statement
    get: Statement[Contact]
    get_by_email: Statement[Contact]
    count: Statement
    page: Statement[Contact]
    keys_of: Statement[ContactKey]  # the account's contacts among the given uuids
    lock: Statement
    share: Statement
    share_in_turn: Statement


def _build(dialect: str) -> ContactStatements:
    statement = partial(Statement, dialect=dialect)
    account = _c.account_id == bindparam("account_id")
    # The contacts given, in id order: two writers lock the rows they share in the same order.
    held = select(_c.id).where(_c.id.in_(listed_ids(dialect, "contact_ids"))).order_by(_c.id)
    return ContactStatements(
        # The unique key decides between "create" and "already there": the database settles
        # concurrent creates, where a read-then-write would let both through.
        insert_if_absent=statement(
            upsert(dialect, contacts)
            .values(binds(contacts, "uuid", "account_id", "email", "created_at"))
            .on_conflict_do_nothing(index_elements=["account_id", "email"])
            .returning(_c.id)
        ),
        insert_anonymous=statement(
            insert(contacts).values(binds(contacts, "uuid", "account_id", "created_at"))
        ),
        claim=statement(
            update(contacts)
            .where(account, _c.uuid == bindparam("uuid"), _c.email.is_(None))
            .values(email=bindparam("email", type_=String))
        ),
        delete=statement(delete(contacts).where(_c.id == bindparam("contact_id", type_=_c.id.type)).returning(_c.id)),
        account_uuid_of=statement(
            select(accounts.c.uuid).join(contacts, _c.account_id == accounts.c.id).where(_c.uuid == bindparam("uuid"))
        ),
        get=statement(select(*_CONTACT).select_from(_KEPT).where(account, _c.uuid == bindparam("uuid")), Contact),
        get_by_email=statement(select(*_CONTACT).select_from(_KEPT).where(account, _c.email == bindparam("email")),
                               Contact),
        count=statement(select(func.count().label("count")).where(account)),
        page=statement(
            paged(select(*_CONTACT).select_from(_KEPT).where(account).order_by(_c.created_at.desc(), _c.id.desc())),
            Contact,
        ),
        keys_of=statement(select(_c.uuid, _c.id, _c.email).where(
            account, _c.uuid.in_(listed_ids(dialect, "uuids", _c.uuid.type))), ContactKey),
        # A contact's delete and every write for the contact serialize on its row (PostgreSQL; SQLite
        # has one writer): the delete locks it FOR UPDATE first, the writes FOR KEY SHARE (which
        # writes do not block one another on) before they touch its visits, in id order.
        lock=statement(select(_c.id).where(_c.id == bindparam("contact_id", type_=_c.id.type)).with_for_update()),
        share=statement(held.with_for_update(key_share=True, read=True)),
        # FOR NO KEY UPDATE: under visit rules one contact's writes wait for one another (their counts
        # are read in turn: rules.service), and still not for a create's FOR KEY SHARE lookup.
        share_in_turn=statement(held.with_for_update(key_share=True)),
    )


STATEMENTS = per_dialect(_build)

# Audiences: the contacts whose visit count and first and last visit (all visits', or one shop's) lie
# within bounds, in an order of those. Filter name -> the comparison each operator makes.
AUDIENCE_BOUNDS = {"visit_count": ("gte", "lte"), "last_visit_at": ("gte", "lt"), "first_visit_at": ("gte", "lt")}
AUDIENCE_SORTS = ("-created_at", "visit_count", "-visit_count", "last_visit_at", "-last_visit_at", "first_visit_at",
                  "-first_visit_at")
_OPERATORS = {"gte": "__ge__", "lte": "__le__", "lt": "__lt__"}


@dataclass(frozen=True)
class Audience:
    """GET /contacts's filters and sort beyond paging: each bound given adds a condition."""

    shop_uuid: UUID | None = None  # counts and dates of this shop's visits only
    bounds: tuple[tuple[str, str, int | datetime], ...] = ()  # (field, operator, bound): ("visit_count", "gte", 5)
    sort: str = "-created_at"

    @property
    def everyone(self) -> bool:
        """No filter and the usual order: the plain list answers it."""
        return self.shop_uuid is None and not self.bounds and self.sort == "-created_at"

    @property
    def visited(self) -> bool:
        """Only contacts with visits can pass (a date bound, or at least one visit): their spans alone
        are read, along their own indexes, never every contact of the account."""
        return any(field != "visit_count" or (op == "gte" and isinstance(bound, int) and bound >= 1)
                   for field, op, bound in self.bounds)

    def shape(self) -> tuple:
        """What the statements depend on (which filters are given, and whether only visited contacts
        pass), not the values."""
        return (self.shop_uuid is not None, self.visited, tuple((field, op) for field, op, _ in self.bounds),
                self.sort)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {f"{field}_{op}": bound for field, op, bound in self.bounds}
        if self.shop_uuid is not None:
            params["shop_uuid"] = self.shop_uuid
        return params


EVERYONE = Audience()


class ChunkBound(NamedTuple):
    last_id: int | None  # the last contact id of an export's chunk; None when nothing is left
    rows: int


@dataclass(frozen=True)
class AudienceStatements:
    count: Statement
    page: Statement[Contact]
    chunk: Statement[Contact]  # the export's next rows after a contact id, in id order
    # PostgreSQL's: where the export's next chunk ends, and the chunk written by the database for
    # COPY, by format (contacts/export.py).
    bound: Statement[ChunkBound] | None
    copy: dict[str, Statement]


def _shop_spans() -> Any:
    """Each contact's count and first and last visit at one shop, from that shop's visits."""
    shop_id = select(_s.id).where(_s.account_id == bindparam("account_id", type_=_s.account_id.type),
                                  _s.uuid == bindparam("shop_uuid", type_=_s.uuid.type)).scalar_subquery()
    return (select(_v.contact_id, func.count(type_=BigInteger).label("count"),
                   func.min(_v.starts_at).label("first_visit_at"), func.max(_v.starts_at).label("last_visit_at"))
            .where(_v.shop_id == shop_id).group_by(_v.contact_id).subquery("shop_spans"))


@functools.cache
def audience_statements(dialect: str, shape: tuple) -> AudienceStatements:
    """The count, a page and an export chunk of one combination of filters and sort, built (and
    compiled) at its first use and kept: the combinations are too many to build them all at import."""
    by_shop, visited, bounds, sort = shape
    statement = partial(Statement, dialect=dialect)
    account_id = bindparam("account_id", type_=_c.account_id.type)
    spans = _shop_spans() if by_shop else contact_visit_counts
    # A contact without visits (no row, or a row at 0) has count 0 and no dates. When only contacts
    # with visits pass, the spans are read first and the contacts joined to them.
    count = spans.c.count if visited else func.coalesce(spans.c.count, 0)
    of_contacts = [_c.account_id == account_id]
    of_spans = []  # conditions on the spans alone
    if by_shop:  # a shop the account does not have matches nothing, as in GET /visits
        of_contacts.append(select(_s.id).where(_s.account_id == account_id,
                                               _s.uuid == bindparam("shop_uuid", type_=_s.uuid.type)).exists())
    elif visited:
        of_spans.append(_k.account_id == account_id)
    for field, op in bounds:
        column = count if field == "visit_count" else spans.c[field]
        bound = bindparam(f"{field}_{op}", type_=BigInteger if field == "visit_count" else UTCDateTime)
        of_spans.append(getattr(column, _OPERATORS[op])(bound))
    joined = (spans.join(contacts, _c.id == spans.c.contact_id) if visited
              else contacts.outerjoin(spans, spans.c.contact_id == _c.id))
    columns = (_c.id, _c.uuid, _c.email, count.label("visit_count"), spans.c.first_visit_at.label("first_visit_at"),
               spans.c.last_visit_at.label("last_visit_at"))

    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field == "created_at":
        order = [_c.created_at.desc(), _c.id.desc()]
    else:
        key = count if field == "visit_count" else spans.c[field]
        ordered = key.desc() if descending else key.asc()
        if field != "visit_count":
            if visited:  # every contact that passes has visits: the index's order, no NULLs to place
                of_spans.append(key.is_not(None))
            else:  # contacts without visits last, either way
                ordered = ordered.nulls_last()
        order = [ordered, _c.id.desc() if descending else _c.id.asc()]

    where = of_contacts + of_spans
    counted = select(func.count(type_=BigInteger).label("count"))
    if visited and not by_shop:  # counted on contact_visit_counts alone (its account_id is the contact's)
        counted = counted.select_from(contact_visit_counts).where(*of_spans)
    else:
        counted = counted.select_from(joined).where(*where)
    after = _c.id > bindparam("after_id", type_=_c.id.type)
    chunk_bound: Statement[ChunkBound] | None = None
    copy: dict[str, Statement] = {}
    if dialect == "postgresql":
        ids = limit(select(_c.id).select_from(joined).where(*where, after).order_by(_c.id)).subquery()
        chunk_bound = statement(select(func.max(ids.c.id, type_=BigInteger).label("last_id"),
                                       func.count(type_=BigInteger).label("rows")), ChunkBound, bulk=True)
        fields = {"uuid": cast(_c.uuid, String), "email": _c.email, "visit_count": count,
                  "first_visit_at": iso8601(spans.c.first_visit_at), "last_visit_at": iso8601(spans.c.last_visit_at)}
        in_chunk = (*where, after, _c.id <= bindparam("last_id", type_=_c.id.type))
        copy = {
            "csv": statement(select(*(value.label(name) for name, value in fields.items()))
                             .select_from(joined).where(*in_chunk).order_by(_c.id), bulk=True),
            "ndjson": statement(select(ndjson_line(fields, as_json=("email", "visit_count")).label("line"))
                                .select_from(joined).where(*in_chunk).order_by(_c.id), bulk=True),
        }
    return AudienceStatements(
        count=statement(counted, bulk=True),
        page=statement(paged(select(*columns).select_from(joined).where(*where).order_by(*order)), Contact,
                       bulk=True),
        chunk=statement(limit(select(*columns).select_from(joined).where(*where, after).order_by(_c.id)), Contact,
                        bulk=True),
        bound=chunk_bound,
        copy=copy,
    )



class ContactRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert_if_absent(self, values: dict) -> bool:
        """Inserts unless the account has the email already; True when this call inserted it."""
        return await self.tx.fetchrow(self.statements.insert_if_absent, values) is not None

    async def insert_anonymous(self, values: dict) -> None:
        await self.tx.execute(self.statements.insert_anonymous, values)

    async def claim(self, account_id: int, uuid: UUID, email: str) -> bool | None:
        """Gives an anonymous contact its email: True when it did, False when the contact has an
        email already (or is not there), None when another of the account's contacts has this one."""
        try:
            async with self.tx.savepoint():
                return await self.tx.execute(
                    self.statements.claim, {"account_id": account_id, "uuid": uuid, "email": email}
                ) == 1
        except ConstraintViolation:
            return None

    async def delete(self, contact_id: int) -> bool:
        """False when the contact was gone already (a concurrent delete won)."""
        return await self.tx.fetchrow(self.statements.delete, {"contact_id": contact_id}) is not None

    async def lock(self, contact_id: int) -> bool:
        """Locks the contact against every write for it until the transaction ends (see share);
        False when it is gone."""
        return await self.tx.fetchval(self.statements.lock, {"contact_id": contact_id}) is not None

    async def share(self, contact_ids: Iterable[int], *, in_turn: bool = False) -> set[int]:
        """Holds the contacts against a delete until the transaction ends; the ids of those still there.
        `in_turn`: held against the contacts' other writes too, as visit rules need (rules.service)."""
        ids = json.dumps(sorted(set(contact_ids)))
        statement = self.statements.share_in_turn if in_turn else self.statements.share
        return {row.id for row in await self.tx.fetch(statement, {"contact_ids": ids})}

    async def account_uuid_of(self, uuid: UUID) -> UUID | None:
        """The uuid of the account that has this contact (for the admin commands, which name none)."""
        return await self.tx.fetchval(self.statements.account_uuid_of, {"uuid": uuid})

    async def get(self, account_id: int, uuid: UUID) -> Contact | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})

    async def get_by_email(self, account_id: int, email: str) -> Contact | None:
        return await self.tx.fetchrow(self.statements.get_by_email, {"account_id": account_id, "email": email})

    async def count(self, account_id: int) -> int:
        return await self.tx.fetchval(self.statements.count, {"account_id": account_id})

    async def page(self, account_id: int, limit: int, offset: int) -> list[Contact]:
        return await self.tx.fetch(
            self.statements.page, {"account_id": account_id, "limit": limit, "offset": offset}
        )

    async def keys_of(self, account_id: int, uuids: Iterable[UUID]) -> dict[UUID, ContactKey]:
        """The account's contacts among `uuids`, by uuid: what a batch or an import names, read on the
        uuid's index (never the whole account's contacts, which grow with it)."""
        listed = listed_uuids(set(uuids))
        found = await self.tx.fetch(self.statements.keys_of, {"account_id": account_id, "uuids": listed})
        return {key.uuid: key for key in found}

    async def audience_count(self, account_id: int, audience: Audience) -> int:
        counted = audience_statements(self.tx.dialect, audience.shape()).count
        return int(await self.tx.fetchval(counted, {"account_id": account_id, **audience.params()}))

    async def audience_page(self, account_id: int, audience: Audience, limit: int, offset: int) -> list[Contact]:
        page = audience_statements(self.tx.dialect, audience.shape()).page
        return await self.tx.fetch(page, {"account_id": account_id, **audience.params(), "limit": limit,
                                          "offset": offset})

    async def audience_chunk(self, account_id: int, audience: Audience, after_id: int, limit: int) -> list[Contact]:
        """Up to `limit` of the audience's contacts after the contact id `after_id`, in id order."""
        chunk = audience_statements(self.tx.dialect, audience.shape()).chunk
        return await self.tx.fetch(chunk, {"account_id": account_id, **audience.params(), "after_id": after_id,
                                           "limit": limit})

    async def audience_bound(self, account_id: int, audience: Audience, after_id: int, limit: int) -> ChunkBound:
        """Where the export's next chunk ends (PostgreSQL's export)."""
        bound = audience_statements(self.tx.dialect, audience.shape()).bound
        assert bound is not None  # built for PostgreSQL
        return await self.tx.fetchone(bound, {"account_id": account_id, **audience.params(), "after_id": after_id,
                                              "limit": limit})

    async def audience_copy(self, account_id: int, audience: Audience, after_id: int, last_id: int,
                            format: str) -> tuple[int, bytes]:
        """The audience's contacts with ids in (after_id, last_id], as PostgreSQL's COPY writes them in
        the format: (how many, the bytes). PostgreSQL only."""
        statement = audience_statements(self.tx.dialect, audience.shape()).copy[format]
        params = {"account_id": account_id, **audience.params(), "after_id": after_id, "last_id": last_id}
        return await copy_out(self.tx, statement, params, format)
