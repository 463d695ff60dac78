"""The rules' SQL: the rules themselves, what a new visit reads and writes of them (in the visit's
transaction), the lapse pass's scan, and a contact's progress."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from sqlalchemy import BigInteger, and_, bindparam, delete, func, insert, literal_column, or_, select, true, update

from footfall.db import KeyedRows, Statement, Tx, binds, listed_ids, paged, per_dialect, upsert
from footfall.tables import (
    contact_visit_counts,
    contacts,
    shops,
    visit_rule_contacts,
    visit_rule_firings,
    visit_rules,
    visits,
)
from footfall.webhooks.repository import subscribed

_r, _s, _v, _c = visit_rules.c, shops.c, visits.c, contacts.c
_f, _rc, _k = visit_rule_firings.c, visit_rule_contacts.c, contact_visit_counts.c

# A lapse pass reads the contacts of an account this many at a time, a transaction each.
LAPSE_BATCH = 10_000
MAX_CONTACT_ID = 2**63 - 1  # a batch that reaches the account's last contact ends here


class Rule(NamedTuple):
    id: int
    uuid: UUID
    account_id: int
    name: str
    kind: str
    every: int | None
    at: str | None  # a JSON list of counts
    needed: int | None  # the column `count` (a tuple's own count() keeps the name)
    within_days: int | None
    after_days: int | None
    min_visits: int | None
    shop_id: int | None
    source: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    shop_uuid: UUID | None


class RuleState(NamedTuple):
    """An ACTIVE rule and what a new visit of the contact reads to decide on it: what the account's
    rules kept of the contact (`kept`: KeptState's text, the same in every rule's row), the contact's
    standing with it (visit_rule_contacts), the contact's kept count and writes once the visit's
    transaction has moved them, and whether the account subscribes to the rules' events."""

    id: int
    uuid: UUID
    name: str
    kind: str
    every: int | None
    at: str | None  # a JSON list of counts
    needed: int | None  # the column `count`
    within_days: int | None
    shop_id: int | None
    source: str | None
    kept: str | None  # contact_visit_counts.rule_state
    lapsed_at: datetime | None
    last_visit_at: datetime | None
    contact_count: int
    contact_writes: int
    milestone_subscribed: bool
    returned_subscribed: bool


class Kept(NamedTuple):
    """What a rule of one shop or source, or a frequency rule, keeps of a contact: its qualifying
    visits; a frequency rule's visits since it last fired (`pending`), their first and last start,
    the times it fired and the visit that last fired it (0: none), and the latest starts of the
    pending visits, newest first (None: not known, or a count above rules.service.KEPT_STARTS + 1).
    Times are microseconds since the epoch (micros): as KeptState's JSON holds them, and what a
    create's rules compare without making a datetime."""

    counted: int
    pending: int | None
    pending_first: int | None
    pending_last: int | None
    fired: int | None
    fired_visit_id: int | None
    latest_starts: list[int] | None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)  # made once: a create under rules converts a few times


def micros(moment: datetime) -> int:
    """A time as kept state holds it: microseconds since the epoch."""
    return (moment - _EPOCH) // _MICROSECOND


class KeptState(NamedTuple):
    """What the account's rules kept of a contact (contact_visit_counts.rule_state), as of the
    contact's `writes`: each rule's Kept by the rule's uuid (a rule's id can come back on SQLite once
    the rule is deleted). Written whole by each visit under rules whose rules keep something, with
    the rules it decided on (a single create on PostgreSQL in the statement that counts it; a batch,
    an import and SQLite by RuleRepository.keep after the count); a rule not in it counts afresh,
    and a value left by an earlier write is trusted by none. Its text is JSON that only this class
    reads and writes: {"writes": N, "rules": {uuid hex: a Kept's fields as a list}}, read and written
    by orjson (each create under rules does both, at a quarter of the json module's cost)."""

    writes: int
    rules: dict[str, Kept]

    @classmethod
    def read(cls, text: str | None) -> "KeptState | None":
        if text is None:
            return None
        kept = orjson.loads(text)
        return cls(kept["writes"], {uuid: Kept._make(fields) for uuid, fields in kept["rules"].items()})

    def text(self) -> str:
        return orjson.dumps({"writes": self.writes, "rules": self.rules}, default=list).decode()


class Recount(NamedTuple):
    """A rule's standing with a contact counted from its visits and firings (see _recount)."""

    total: int
    times_fired: int
    last_fired: int
    pending: int
    pending_first: datetime | None
    pending_last: datetime | None


class LapseRule(NamedTuple):
    id: int
    uuid: UUID
    account_id: int
    name: str
    kind: str
    after_days: int
    min_visits: int
    shop_id: int | None
    source: str | None


class Lapsed(NamedTuple):
    contact_id: int
    last_visit_at: datetime


class LapsedContact(NamedTuple):
    uuid: UUID
    email: str | None
    last_visit_at: datetime


class Progress(NamedTuple):
    """A rule (with its shop's uuid) and the contact's standing with it."""

    rule: Rule
    total: int
    last_visit_at: datetime | None
    lapsed_at: datetime | None


_RULE = (*(_r.count.label("needed") if column is _r.count else column for column in visit_rules.c),
         _s.uuid.label("shop_uuid"))
_rules_with_shop = visit_rules.outerjoin(shops, _s.id == _r.shop_id)


def _qualifying(contact_id: Any = None, rule: Any = visit_rules) -> Any:
    """The visits (of the contact `contact_id`) the rule counts: its shop's, its source's."""
    if contact_id is None:
        contact_id = bindparam("contact_id", type_=_v.contact_id.type)
    return and_(
        _v.contact_id == contact_id,
        or_(rule.c.shop_id.is_(None), _v.shop_id == rule.c.shop_id),
        or_(rule.c.source.is_(None), _v.source == rule.c.source),
    )


def _unindexed(column: Any) -> Any:
    """The column in an expression no index matches. A contact's visits in a frequency window are
    read on ix_visits_contact_starts alone (contact, start, shop, source; id included); a range of
    ids there would make the planner's generic plan prefer ix_visits_contact_created, whose third
    column is the id, and fetch each visit from the heap (0.2 ms a contact of 100 visits, 1 to 2 ms
    under load at 1,000,000 visits)."""
    return column + literal_column("0")


def _contact_account_rules(contact_id: Any) -> Any:
    """The ids of the rules of the contact's account: with the contact, the key of its rows in the
    rules' tables, which keep no index on contact_id."""
    return select(_r.id).where(_r.account_id == select(_c.account_id).where(_c.id == contact_id).scalar_subquery())


def has_active_rules(account_id: Any) -> Any:
    """EXISTS an ACTIVE rule of the account: for a visit's own lookup to ask in passing, so an
    account without rules costs no rules query."""
    return select(_r.id).where(_r.account_id == account_id, _r.status == "ACTIVE").exists()


def _end_lapse(rules: Any, contact_id: Any, starts_at: Any) -> Any:
    """A lapsed contact's qualifying visit, later than the one it lapsed after, returns it: the
    contact's rows of `rules` still lapsed are re-armed (once: the row must still be lapsed)."""
    return (
        update(visit_rule_contacts)
        .where(rules, _rc.contact_id == contact_id, _rc.lapsed_at.is_not(None), _rc.last_visit_at < starts_at)
        .values(lapsed_at=None, last_visit_at=starts_at)
        .returning(_rc.rule_id)
    )


def kept_and_standing(added: int) -> Any:
    """The account's ACTIVE rules, each with what a new visit of the contact reads to decide on it
    (RuleState rows; parameters rule_account and rule_contact; rules.service.decide decides).

    The contact's kept count and writes are read from its count row as this visit's transaction has
    moved them (`added` 0) or as they will be once it counts the visit (`added` 1: one visit more,
    one write more; states_once_counted). The row is read once (a CTE) for every rule's row."""
    contact_id = bindparam("rule_contact", type_=_c.id.type)
    account_id = bindparam("rule_account", type_=_r.account_id.type)
    standing = visit_rule_contacts.alias("standing")
    count_row = select(_k.count, _k.writes, _k.rule_state).where(_k.contact_id == contact_id).cte("count_row")

    def counted(column: Any) -> Any:
        return func.coalesce(select(column).scalar_subquery(), 0) + added

    return (
        select(_r.id, _r.uuid, _r.name, _r.kind, _r.every, _r.at, _r.count.label("needed"), _r.within_days,
               _r.shop_id, _r.source, select(count_row.c.rule_state).scalar_subquery().label("kept"),
               standing.c.lapsed_at, standing.c.last_visit_at, counted(count_row.c.count).label("contact_count"),
               counted(count_row.c.writes).label("contact_writes"),
               # Asked in passing, as a visit's lookup asks: no outbox query for an account without them.
               subscribed(account_id, "visit_milestone").label("milestone_subscribed"),
               subscribed(account_id, "contact_returned").label("returned_subscribed"))
        .select_from(visit_rules
                     .outerjoin(standing, and_(standing.c.rule_id == _r.id, standing.c.contact_id == contact_id)))
        .where(_r.account_id == account_id, _r.status == "ACTIVE")
        .order_by(_r.id)
    )


def states_once_counted() -> Any:
    """kept_and_standing before the new visit is counted, as its count row will be once it is: for
    the statement that inserts it."""
    return kept_and_standing(added=1)


def keep_params(contact_id: int, kept: KeptState) -> dict[str, Any]:
    """The parameters of keeping what rules kept of the contact (RuleStatements.keep, and the count
    statement that keeps it in passing)."""
    return {"rule_contact": contact_id, "kept_state": kept.text()}


def fire_params(contact_id: int, visit_id: int, fired_at: datetime, counts: dict[int, int]) -> dict[str, Any]:
    """The parameters of fire_rows: each rule's firing at its count, {rule id: count}, by the visit."""
    return {"rule_contact": contact_id, "new_visit": visit_id, "moment_at": fired_at,
            "fired": orjson.dumps({str(rule_id): [count] for rule_id, count in counts.items()}).decode()}


def _recount() -> Any:
    """What a rule would keep of the contact, counted from the visits and firings (its kept row does
    not hold): the qualifying visits up to the visit `visit_id`, and a frequency rule's times fired,
    the visit that last fired it and the qualifying visits since, with their first and last start.
    One read of the contact's visits on `ix_visits_contact_starts`, which holds every column it needs."""
    contact_id = bindparam("contact_id", type_=_c.id.type)
    visit_id = bindparam("visit_id", type_=_v.id.type)
    rule_id = bindparam("rule_id", type_=_r.id.type)
    of_rule = (_f.rule_id == rule_id, _f.contact_id == contact_id)
    last_fired = select(func.coalesce(func.max(_f.visit_id), 0)).where(*of_rule).scalar_subquery()
    since = and_(_v.id > last_fired, _v.id < visit_id)
    return (
        select(func.count().filter(_v.id <= visit_id).label("total"),
               select(func.count()).select_from(visit_rule_firings).where(*of_rule).scalar_subquery()
               .label("times_fired"),
               last_fired.label("last_fired"),
               func.count().filter(since).label("pending"),
               func.min(_v.starts_at).filter(since).label("pending_first"),
               func.max(_v.starts_at).filter(since).label("pending_last"))
        .select_from(visits.join(visit_rules, _r.id == rule_id))
        .where(_qualifying(contact_id))
    )


def kept_rule_state() -> Any:
    """What rules kept of the contact, as the count statement keeps it (keep_params' `kept_state`)."""
    return bindparam("kept_state", type_=_k.rule_state.type)


def fire_rows(dialect: str) -> Any:
    """The firings of one visit (fire_params); a (rule, contact, count) that fired before is left as it
    is, and RETURNING gives only the new ones."""
    fired = KeyedRows(dialect, "fired")
    return upsert(dialect, visit_rule_firings).from_select(
        ["rule_id", "contact_id", "count", "visit_id", "fired_at"],
        select(fired.key, bindparam("rule_contact", type_=_c.id.type), fired.item(0),
               bindparam("new_visit", type_=_v.id.type), bindparam("moment_at", type_=_f.fired_at.type))
        .select_from(fired.rows).where(true()),
    ).on_conflict_do_nothing().returning(_f.rule_id)



@dataclass(frozen=True)
class RuleStatements:
    insert: Statement
    has_active: Statement
    get: Statement[Rule]
    count: Statement
    page: Statement[Rule]
    update: Statement
    delete: Statement
    forget_rule: tuple[Statement, ...]  # its contacts' standing and its firings
    forget_contact: tuple[Statement, ...]  # its standing with every rule, and its firings
    states: Statement["RuleState"]
    states_once_counted: Statement["RuleState"]
    recount: Statement["Recount"]
    in_window: Statement
    latest_starts: Statement
    keep: Statement
    fire: Statement
    returned: Statement
    lapse_rules: Statement[LapseRule]
    batch_end: Statement
    lapse_kept: Statement[Lapsed]
    lapse_scanned: Statement[Lapsed]
    hold_batch: Statement
    contacts_of: Statement[LapsedContact]
    progress: Statement
    firings: Statement
    recent: Statement


def _build(dialect: str) -> RuleStatements:
    statement = partial(Statement, dialect=dialect)
    account = _r.account_id == bindparam("account_id")
    rule_id = bindparam("rule_id", type_=_r.id.type)
    contact_id = bindparam("contact_id", type_=_c.id.type)

    returned = _end_lapse(_rc.rule_id == rule_id, contact_id, bindparam("starts_at", type_=_v.starts_at.type))
    before_visit = (
        _qualifying(contact_id, visit_rules), _r.id == rule_id,
        _unindexed(_v.id) > bindparam("last_fired", type_=_v.id.type),
        _unindexed(_v.id) < bindparam("visit_id", type_=_v.id.type),
        _v.starts_at <= bindparam("starts_at", type_=_v.starts_at.type),
    )

    # The lapse pass. A contact lapses once: a row already lapsed, or visited since the cut-off (a
    # visit committed while the pass ran), is left as it is, and RETURNING gives only the new lapses.
    now = bindparam("now", type_=_rc.lapsed_at.type)
    cutoff = bindparam("cutoff", type_=_rc.last_visit_at.type)
    in_batch = and_(bindparam("after_contact", type_=BigInteger) < _k.contact_id,
                    _k.contact_id <= bindparam("upto_contact", type_=BigInteger))

    def lapse(select_lapsed: Any) -> Any:
        made = upsert(dialect, visit_rule_contacts).from_select(
            ["rule_id", "contact_id", "last_visit_at", "lapsed_at"], select_lapsed)
        return made.on_conflict_do_update(
            index_elements=["rule_id", "contact_id"],
            set_={"lapsed_at": made.excluded.lapsed_at, "last_visit_at": made.excluded.last_visit_at},
            where=and_(_rc.lapsed_at.is_(None), or_(_rc.last_visit_at.is_(None), _rc.last_visit_at < cutoff)),
        ).returning(_rc.contact_id, _rc.last_visit_at)

    # A rule of every shop and source: the kept counts and last visits say who has lapsed.
    def not_lapsed(contact_id: Any) -> Any:
        # NOT IN, read once for the batch (a hashed subplan), not a probe a row: the probe's table
        # is the one the statement writes, and its plan was made for it as it was before.
        lapsed = select(_rc.contact_id).where(
            _rc.rule_id == rule_id, _rc.lapsed_at.is_not(None),
            bindparam("after_contact", type_=BigInteger) < _rc.contact_id,
            _rc.contact_id <= bindparam("upto_contact", type_=BigInteger))
        return contact_id.not_in(lapsed)

    # The contacts it marks are held as a create under rules holds its contact (FOR NO KEY UPDATE,
    # contact first, then its count row), so a contact's visit and its lapse never interleave: a
    # visit committed meanwhile takes its contact out (PostgreSQL reads a locked row's WHERE again on
    # its newest count row), and a visit that waits for the contact then finds it lapsed, and returned.
    lapse_kept = lapse(
        select(rule_id, _k.contact_id, _k.last_visit_at, now)
        .select_from(contact_visit_counts.join(contacts, _c.id == _k.contact_id))
        .where(_k.account_id == bindparam("account_id", type_=_k.account_id.type), in_batch,
               select(_r.id).where(_r.id == rule_id, _r.status == "ACTIVE").exists(),
               _k.count >= bindparam("min_visits", type_=_k.count.type), _k.last_visit_at < cutoff,
               not_lapsed(_k.contact_id))
        .with_for_update(of=[contacts, contact_visit_counts], key_share=True)
    )
    # A rule of one shop or source: the batch's visits, grouped by contact (no lock can be taken on
    # a grouped row: the batch's contacts are held first, by hold_batch, and this reads after).
    hold_batch = (
        select(_c.id).where(_c.account_id == bindparam("account_id", type_=_c.account_id.type),
                            bindparam("after_contact", type_=BigInteger) < _c.id,
                            _c.id <= bindparam("upto_contact", type_=BigInteger))
        .order_by(_c.id).with_for_update(key_share=True)
    )
    scanned = visit_rules.alias("rule")
    lapse_scanned = lapse(
        select(rule_id, _v.contact_id, func.max(_v.starts_at), now)
        .select_from(visits.join(scanned, scanned.c.id == rule_id))
        .where(_v.account_id == scanned.c.account_id, scanned.c.status == "ACTIVE",
               bindparam("after_contact", type_=BigInteger) < _v.contact_id,
               _v.contact_id <= bindparam("upto_contact", type_=BigInteger),
               or_(scanned.c.shop_id.is_(None), _v.shop_id == scanned.c.shop_id),
               or_(scanned.c.source.is_(None), _v.source == scanned.c.source),
               not_lapsed(_v.contact_id))
        .group_by(_v.contact_id)
        .having(and_(func.count() >= bindparam("min_visits", type_=BigInteger), func.max(_v.starts_at) < cutoff))
    )

    last_qualifying = (
        select(func.max(_v.starts_at).label("last")).where(_qualifying()).scalar_subquery()
    )
    qualifying_total = select(func.count().label("total")).select_from(visits).where(_qualifying()).scalar_subquery()
    progress = (
        select(*_RULE, qualifying_total.label("total"), last_qualifying.label("last_visit_at"),
               _rc.lapsed_at)
        .select_from(_rules_with_shop.outerjoin(
            visit_rule_contacts, and_(_rc.rule_id == _r.id, _rc.contact_id == contact_id)))
        .where(account).order_by(_r.id)
    )

    # Each rule's events since a moment: its firings, or (lapse) the contacts that lapsed since and
    # have not returned.
    since = bindparam("since", type_=_f.fired_at.type)
    fired = select(func.count().label("fired")).where(_f.rule_id == _r.id, _f.fired_at >= since).scalar_subquery()
    lapsed = (select(func.count().label("lapsed")).select_from(visit_rule_contacts)
              .where(_rc.rule_id == _r.id, _rc.lapsed_at >= since).scalar_subquery())
    recent = select(_r.uuid, (fired + lapsed).label("events")).where(account)

    return RuleStatements(
        recent=statement(recent),
        insert=statement(insert(visit_rules).values(binds(
            visit_rules, "uuid", "account_id", "name", "kind", "every", "at", "count", "within_days", "after_days",
            "min_visits", "shop_id", "source", "status", "created_at", "updated_at"))),
        has_active=statement(select(has_active_rules(bindparam("account_id", type_=_r.account_id.type))
                                    .label("has_active"))),
        get=statement(select(*_RULE).select_from(_rules_with_shop).where(account, _r.uuid == bindparam("uuid")),
                      Rule),
        count=statement(select(func.count().label("count")).select_from(visit_rules).where(account)),
        page=statement(paged(select(*_RULE).select_from(_rules_with_shop).where(account).order_by(_r.id.desc())),
                       Rule),
        update=statement(update(visit_rules).where(_r.id == rule_id).values(
            name=bindparam("name", type_=_r.name.type), status=bindparam("status", type_=_r.status.type),
            updated_at=bindparam("updated_at", type_=_r.updated_at.type))),
        delete=statement(delete(visit_rules).where(_r.id == rule_id)),
        forget_rule=tuple(statement(delete(table).where(table.c.rule_id == rule_id), bulk=True)
                          for table in (visit_rule_contacts, visit_rule_firings)),
        # By the contact's account's rules: the key (rule_id, contact_id) finds each row, and neither
        # table keeps an index of its own on contact_id (the lapse pass writes one in bulk, creates
        # the other).
        forget_contact=tuple(statement(delete(table).where(table.c.contact_id == contact_id,
                                                           table.c.rule_id.in_(_contact_account_rules(contact_id))))
                             for table in (visit_rule_contacts, visit_rule_firings)),
        states=statement(kept_and_standing(added=0), RuleState),
        states_once_counted=statement(states_once_counted(), RuleState),
        recount=statement(_recount(), Recount),
        # A frequency rule's qualifying visits since it last fired, recorded before the visit
        # `visit_id` and started by its start: those in its window, counted (for a count above
        # rules.service.KEPT_STARTS + 1, which keeps no starts), or the latest of them.
        in_window=statement(select(func.count().label("in_window")).select_from(visits).where(
            *before_visit, _v.starts_at > bindparam("window_start", type_=_v.starts_at.type))),
        latest_starts=statement(
            select(_v.starts_at).select_from(visits).where(*before_visit)
            .order_by(_v.starts_at.desc()).limit(bindparam("limit", type_=BigInteger))),
        keep=statement(update(contact_visit_counts)
                       .where(_k.contact_id == bindparam("rule_contact", type_=_k.contact_id.type))
                       .values(rule_state=kept_rule_state())),
        fire=statement(fire_rows(dialect)),
        returned=statement(returned),
        lapse_rules=statement(
            select(_r.id, _r.uuid, _r.account_id, _r.name, _r.kind, _r.after_days,
                   func.coalesce(_r.min_visits, 1).label("min_visits"), _r.shop_id, _r.source)
            .where(_r.kind == "lapse", _r.status == "ACTIVE").order_by(_r.id),
            LapseRule,
        ),
        # The last contact id of the batch that starts after `after_contact` (None: the rest).
        batch_end=statement(
            select(_c.id).where(_c.account_id == bindparam("account_id"),
                                _c.id > bindparam("after_contact", type_=BigInteger))
            .order_by(_c.id).limit(1).offset(bindparam("batch", type_=BigInteger))
        ),
        lapse_kept=statement(lapse_kept, Lapsed, bulk=True),
        lapse_scanned=statement(lapse_scanned, Lapsed, bulk=True),
        hold_batch=statement(hold_batch, bulk=True),
        contacts_of=statement(
            select(_c.uuid, _c.email, _rc.last_visit_at)
            .select_from(contacts.join(visit_rule_contacts, _rc.contact_id == _c.id))
            .where(_rc.rule_id == rule_id, _c.id.in_(listed_ids(dialect, "contact_ids"))).order_by(_c.id),
            LapsedContact, bulk=True,
        ),
        progress=statement(progress),
        firings=statement(
            select(_f.rule_id, _f.count)
            .where(_f.contact_id == contact_id, _f.rule_id.in_(_contact_account_rules(contact_id)))
            .order_by(_f.rule_id, _f.count)
        ),
    )


STATEMENTS = per_dialect(_build)


class RuleRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert(self, values: dict[str, Any]) -> None:
        await self.tx.execute(self.statements.insert, values)

    async def has_active(self, account_id: int) -> bool:
        return bool(await self.tx.fetchval(self.statements.has_active, {"account_id": account_id}))

    async def get(self, account_id: int, uuid: UUID) -> Rule | None:
        return await self.tx.fetchrow(self.statements.get, {"account_id": account_id, "uuid": uuid})

    async def count(self, account_id: int) -> int:
        return int(await self.tx.fetchval(self.statements.count, {"account_id": account_id}))

    async def page(self, account_id: int, limit: int, offset: int) -> list[Rule]:
        return await self.tx.fetch(self.statements.page, {"account_id": account_id, "limit": limit, "offset": offset})

    async def update(self, rule_id: int, name: str, status: str, updated_at: datetime) -> None:
        await self.tx.execute(self.statements.update,
                              {"rule_id": rule_id, "name": name, "status": status, "updated_at": updated_at})

    async def delete(self, rule_id: int) -> None:
        """The rule, its firings and its contacts' standing (no foreign key to it). What it kept of a
        contact stays in the contact's KeptState until its next visit under rules, which keeps only
        the rules it decided on."""
        for statement in self.statements.forget_rule:
            await self.tx.execute(statement, {"rule_id": rule_id})
        await self.tx.execute(self.statements.delete, {"rule_id": rule_id})

    async def forget_contact(self, contact_id: int) -> None:
        """The contact's standing with every rule and its firings (what rules kept of it goes with
        its count row), before the contact itself."""
        for statement in self.statements.forget_contact:
            await self.tx.execute(statement, {"contact_id": contact_id})

    async def states(self, account_id: int, contact_id: int) -> list[RuleState]:
        """The account's ACTIVE rules and the contact's standing with each (see kept_and_standing)."""
        return await self.tx.fetch(self.statements.states, {"rule_account": account_id, "rule_contact": contact_id})

    async def states_once_counted(self, account_id: int, contact_id: int) -> list[RuleState]:
        """states, read before a new visit is counted (see states_once_counted())."""
        return await self.tx.fetch(self.statements.states_once_counted,
                                   {"rule_account": account_id, "rule_contact": contact_id})

    async def recount(self, rule_id: int, contact_id: int, visit_id: int) -> Recount:
        row = await self.tx.fetchrow(self.statements.recount,
                                     {"rule_id": rule_id, "contact_id": contact_id, "visit_id": visit_id})
        assert row is not None  # an aggregate without GROUP BY: always one row
        return row

    async def in_window(self, rule_id: int, contact_id: int, last_fired: int, visit_id: int,
                        window_start: datetime, starts_at: datetime) -> int:
        """The rule's visits since it last fired, before the visit `visit_id`, in its window (the visit not counted)."""
        return int(await self.tx.fetchval(self.statements.in_window, {
            "rule_id": rule_id, "contact_id": contact_id, "last_fired": last_fired, "visit_id": visit_id,
            "window_start": window_start, "starts_at": starts_at}))

    async def latest_starts(self, rule_id: int, contact_id: int, last_fired: int, visit_id: int,
                            starts_at: datetime, limit: int) -> list[datetime]:
        rows = await self.tx.fetch(self.statements.latest_starts, {
            "rule_id": rule_id, "contact_id": contact_id, "last_fired": last_fired, "visit_id": visit_id,
            "starts_at": starts_at, "limit": limit})
        return [row.starts_at for row in rows]

    async def keep(self, contact_id: int, kept: KeptState) -> None:
        """What rules kept of the contact, in its count row (which the visit's count made)."""
        await self.tx.execute(self.statements.keep, keep_params(contact_id, kept))

    async def fire(self, contact_id: int, visit_id: int, fired_at: datetime, counts: dict[int, int]) -> set[int]:
        """Records each rule's firing at its count; the rules whose (rule, contact, count) had not fired before."""
        rows = await self.tx.fetch(self.statements.fire, fire_params(contact_id, visit_id, fired_at, counts))
        return {row.rule_id for row in rows}

    async def keep_and_fire(
        self, contact_id: int, visit_id: int, fired_at: datetime, kept: KeptState | None, firing: dict[int, int]
    ) -> set[int]:
        """keep, then fire, each only when there is something to write: what a visit's rules decided,
        in statements of their own. The rules whose firing was new."""
        if kept is not None:
            await self.keep(contact_id, kept)
        return await self.fire(contact_id, visit_id, fired_at, firing) if firing else set()

    async def returned(self, rule_id: int, contact_id: int, starts_at: datetime) -> bool:
        """Ends the contact's lapse with a visit that started after its last; False when it was not lapsed."""
        return await self.tx.fetchval(self.statements.returned, {
            "rule_id": rule_id, "contact_id": contact_id, "starts_at": starts_at}) is not None

    async def lapse_rules(self) -> list[LapseRule]:
        """Every account's ACTIVE lapse rules."""
        return await self.tx.fetch(self.statements.lapse_rules)

    async def batch_end(self, account_id: int, after_contact: int) -> int:
        end = await self.tx.fetchval(self.statements.batch_end,
                                     {"account_id": account_id, "after_contact": after_contact,
                                      "batch": LAPSE_BATCH - 1})
        return MAX_CONTACT_ID if end is None else int(end)

    async def lapse(
        self, rule: LapseRule, after_contact: int, upto_contact: int, cutoff: datetime, now: datetime
    ) -> list[Lapsed]:
        """Marks the batch's contacts that have lapsed since the rule last saw them; those it marked."""
        params = {"rule_id": rule.id, "account_id": rule.account_id, "after_contact": after_contact,
                  "upto_contact": upto_contact, "min_visits": rule.min_visits, "cutoff": cutoff, "now": now}
        restricted = rule.shop_id is not None or rule.source is not None
        if not restricted:
            return await self.tx.fetch(self.statements.lapse_kept, params)
        await self.tx.execute(self.statements.hold_batch, {name: params[name] for name in
                                                           ("account_id", "after_contact", "upto_contact")})
        del params["account_id"]
        return await self.tx.fetch(self.statements.lapse_scanned, params)

    async def contacts_of(self, rule_id: int, contact_ids: list[int]) -> list[LapsedContact]:
        return await self.tx.fetch(self.statements.contacts_of,
                                   {"rule_id": rule_id, "contact_ids": json.dumps(sorted(contact_ids))})

    async def progress(self, account_id: int, contact_id: int) -> list[Progress]:
        rows = await self.tx.fetch(self.statements.progress, {"account_id": account_id, "contact_id": contact_id})
        width = len(Rule._fields)
        return [Progress(Rule._make(tuple(row)[:width]), row.total, row.last_visit_at, row.lapsed_at) for row in rows]

    async def recent(self, account_id: int, since: datetime) -> dict[UUID, int]:
        """Each rule's events since `since`, by the rule's uuid."""
        rows = await self.tx.fetch(self.statements.recent, {"account_id": account_id, "since": since})
        return {row.uuid: row.events for row in rows}

    async def firings(self, contact_id: int) -> dict[int, list[int]]:
        reached: dict[int, list[int]] = {}
        for row in await self.tx.fetch(self.statements.firings, {"contact_id": contact_id}):
            reached.setdefault(row.rule_id, []).append(row.count)
        return reached
