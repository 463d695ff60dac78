"""The rules' SQL: the rules themselves, what a new visit reads and writes of them (in the visit's
transaction), the lapse pass's scan, and a contact's progress."""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import BigInteger, and_, bindparam, case, cast, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB

from footfall.db import Statement, Tx, binds, earlier_or_later, listed_ids, paged, per_dialect, upsert
from footfall.tables import (
    contact_visit_counts,
    contacts,
    shops,
    visit_rule_contacts,
    visit_rule_counts,
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


class RuledVisit(NamedTuple):
    """A new visit, as its rules read it: its contact held, its insert and count made in its
    transaction. `later`: the contact's visits recorded after this one in the same transaction."""

    account_id: int
    contact_id: int
    visit_id: int
    shop_id: int
    source: str | None
    starts_at: datetime
    later: int
    now: datetime

    def params(self) -> dict[str, Any]:
        """The parameters of the moments statement (named apart from the columns it writes)."""
        return {"rule_account": self.account_id, "rule_contact": self.contact_id, "new_visit": self.visit_id,
                "visit_shop": self.shop_id, "visit_source": self.source, "visit_start": self.starts_at,
                "later": self.later, "moment_at": self.now}


class Moment(NamedTuple):
    """What an ACTIVE rule does on a new visit: fire (`fires_at`, the key count of the firing: a
    milestone's count, a frequency rule's times fired) or end the contact's lapse (`returns`; its
    `last_visit_at` is the one it lapsed after). `total`: the contact's qualifying visits."""

    id: int
    uuid: UUID
    name: str
    kind: str
    total: int
    fires_at: int | None
    returns: bool
    last_visit_at: datetime | None
    milestone_subscribed: bool
    returned_subscribed: bool


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


def _days_before(dialect: str, moment: Any, days: Any) -> Any:
    """`moment` less `days` days, comparable with a time column of the dialect (SQLite keeps times as
    fixed-width text: see db.types.sqlite_text)."""
    if dialect == "postgresql":
        return moment - func.make_interval(0, 0, 0, days)
    earlier = func.strftime("%Y-%m-%d %H:%M:%f", moment, func.printf("-%d days", days))
    return earlier.op("||")("000")  # milliseconds to the stored microseconds


def has_active_rules(account_id: Any) -> Any:
    """EXISTS an ACTIVE rule of the account: for a visit's own lookup to ask in passing, so an
    account without rules costs no rules query."""
    return select(_r.id).where(_r.account_id == account_id, _r.status == "ACTIVE").exists()


def _listed(dialect: str, counts: Any, count: Any) -> Any:
    """Whether a JSON list of counts (a milestone's `at`) holds `count`."""
    if dialect == "postgresql":
        return cast(counts, JSONB).op("@>", is_comparison=True)(func.to_jsonb(count))
    listed = func.json_each(counts).table_valued("value")
    return select(listed.c.value).where(listed.c.value == count).exists()


def _end_lapse(rules: Any, contact_id: Any, starts_at: Any) -> Any:
    """A lapsed contact's qualifying visit, later than the one it lapsed after, returns it: the
    contact's rows of `rules` still lapsed are re-armed (once: the row must still be lapsed)."""
    return (
        update(visit_rule_contacts)
        .where(rules, _rc.contact_id == contact_id, _rc.lapsed_at.is_not(None), _rc.last_visit_at < starts_at)
        .values(lapsed_at=None, last_visit_at=starts_at)
        .returning(_rc.rule_id)
    )


def _facts(dialect: str, kept: Any, writes: Any) -> Any:
    """What a new visit's ACTIVE rules read to decide and to keep their state, a row a rule (see moments()).

    Three levels, each reading the one below: `base` reads each rule, the contact's standing with
    it and what the rule kept of the contact (`held` when the contact's writes are still the ones
    it was kept at, less this visit's); `counts` gives a rule's count and a frequency rule's visits
    since it last fired, from the kept state when it holds and counted from the visits when it does
    not; `facts` adds this visit and gives a frequency rule's visits in its window, counted from
    the visits only when the kept first and last start cannot tell."""
    contact_id = bindparam("rule_contact", type_=_c.id.type)
    visit_id = bindparam("new_visit", type_=_v.id.type)
    starts_at = bindparam("visit_start", type_=_v.starts_at.type)
    later = bindparam("later", type_=BigInteger)
    standing, state = visit_rule_contacts.alias("standing"), visit_rule_counts.alias("state")
    # Never NULL (a visit without a source qualifies for no rule of one): a column of its own here.
    visit_source = bindparam("visit_source", type_=_r.source.type)
    qualifies = and_(or_(_r.shop_id.is_(None), _r.shop_id == bindparam("visit_shop", type_=_r.shop_id.type)),
                     or_(_r.source.is_(None), _r.source.is_not_distinct_from(visit_source)))
    frequency = _r.kind == "frequency"
    # The contact's writes once this visit's transaction has written its visits up to this one.
    writes_after = writes - later
    held = state.c.writes == writes_after - 1
    last_fired = (select(func.coalesce(func.max(_f.visit_id), 0).label("last_fired")).select_from(visit_rule_firings)
                  .where(_f.rule_id == _r.id, _f.contact_id == contact_id).correlate(visit_rules).scalar_subquery())
    times_fired = (select(func.count().label("times")).select_from(visit_rule_firings)
                   .where(_f.rule_id == _r.id, _f.contact_id == contact_id).correlate(visit_rules).scalar_subquery())
    base = (
        select(_r.id, _r.uuid, _r.name, _r.kind, _r.every, _r.at, _r.count.label("needed"), _r.within_days,
               _r.shop_id, _r.source, qualifies.label("qualifies"), held.label("held"),
               writes_after.label("writes_after"), state.c.counted, state.c.pending, state.c.pending_first,
               state.c.pending_last, standing.c.lapsed_at, standing.c.last_visit_at,
               case((~frequency, None), (held, state.c.fired_visit), (~qualifies, None),
                    else_=last_fired).label("last_fired"),
               case((~frequency, None), (held, state.c.fired), (~qualifies, None),
                    else_=times_fired).label("times_fired"))
        .select_from(visit_rules
                     .outerjoin(standing, and_(standing.c.rule_id == _r.id, standing.c.contact_id == contact_id))
                     .outerjoin(state, and_(state.c.rule_id == _r.id, state.c.contact_id == contact_id)))
        .where(_r.account_id == bindparam("rule_account", type_=_r.account_id.type), _r.status == "ACTIVE")
        .cte("base").prefix_with("MATERIALIZED")  # computed once a rule, not copied into each use
    )
    b = base.c

    def counted(aggregate: Any, *where: Any) -> Any:
        return (select(aggregate).select_from(visits).where(_qualifying(contact_id, base), *where)
                .correlate(base).scalar_subquery())

    # A rule of every shop and source counts from `kept`, the contact's kept count (moved by this
    # visit's transaction already), less the contact's visits recorded after this one in the same
    # transaction (a batch's `later`); ids grow in the order a contact's visits are recorded (its
    # row, held, orders them).
    unrestricted = and_(b.shop_id.is_(None), b.source.is_(None))
    since_fired = (_v.id > b.last_fired, _v.id < visit_id)

    def pending(aggregate: Any, kept_value: Any) -> Any:
        return case((b.kind != "frequency", None), (b.held, kept_value), (~b.qualifies, None),
                    else_=counted(aggregate, *since_fired))

    counts = select(
        *(column for column in b if column.key not in ("pending", "pending_first", "pending_last")),
        case((~b.qualifies, b.counted), (unrestricted, func.coalesce(kept, 0) - later),
             (b.held, b.counted + 1), else_=counted(func.count(), _v.id <= visit_id)).label("total"),
        pending(func.count(), b.pending).label("pending"),
        pending(func.min(_v.starts_at), b.pending_first).label("pending_first"),
        pending(func.max(_v.starts_at), b.pending_last).label("pending_last"),
    ).cte("counts").prefix_with("MATERIALIZED")
    c = counts.c
    window_start = _days_before(dialect, starts_at, c.within_days)
    first = earlier_or_later(dialect, c.pending_first, starts_at, True)
    last = earlier_or_later(dialect, c.pending_last, starts_at, False)
    # This visit and those since the rule last fired; the window holds them all when they started
    # inside it, and cannot hold `needed` when they are fewer.
    in_window = case(
        (c.pending + 1 < c.needed, c.pending + 1),
        (and_(first > window_start, last <= starts_at), c.pending + 1),
        else_=(select(func.count().label("in_window")).select_from(visits).where(
            _qualifying(contact_id, counts), _v.id > c.last_fired, _v.id <= visit_id,
            _v.starts_at > window_start, _v.starts_at <= starts_at).correlate(counts).scalar_subquery()),
    )
    # Materialized: `decided` and the kept state read each fact more than once, and each is to be counted once.
    return (
        select(*c, case((and_(c.kind == "frequency", c.qualifies), in_window)).label("in_window"),
               first.label("first_start"), last.label("last_start"))
        .cte("facts").prefix_with("MATERIALIZED")
    )


def _decisions(dialect: str, fact: Any) -> tuple[Any, Any]:
    """(fires_at, returns) of a rule's facts: the key count it fires at (None: it does not), and
    whether the visit ends the contact's lapse."""
    fires_at = case(
        (~fact.qualifies, None),
        (fact.kind == "frequency", case((fact.in_window >= fact.needed, fact.times_fired + 1))),
        (fact.every.is_not(None), case((fact.total % fact.every == 0, fact.total))),
        (fact.at.is_not(None), case((_listed(dialect, fact.at, fact.total), fact.total))),
    )
    returns = and_(fact.qualifies, fact.kind == "lapse", fact.lapsed_at.is_not(None),
                   fact.last_visit_at < bindparam("visit_start", type_=_v.starts_at.type))
    return fires_at, returns


def _keep(dialect: str, facts: Any) -> Any:
    """The upsert of what each rule of one shop or source, and each frequency rule, keeps of the
    contact after the visit: a qualifying visit counted, or (when what it kept holds) the contact's
    writes moved past a visit that does not qualify."""
    fact = facts.c
    fires_at, _ = _decisions(dialect, fact)
    fires = fires_at.is_not(None)
    frequency = fact.kind == "frequency"

    def pending(qualified: Any, kept_value: Any) -> Any:
        return case((~frequency, None), (~fact.qualifies, kept_value), (fires, None), else_=qualified)

    kept = upsert(dialect, visit_rule_counts).from_select(
        ["rule_id", "contact_id", "writes", "counted", "pending", "pending_first", "pending_last", "fired",
         "fired_visit"],
        select(fact.id, bindparam("rule_contact", type_=_c.id.type), fact.writes_after,
               case((frequency, None), else_=fact.total),
               case((~frequency, None), (~fact.qualifies, fact.pending), (fires, 0), else_=fact.pending + 1),
               pending(fact.first_start, fact.pending_first), pending(fact.last_start, fact.pending_last),
               case((~frequency, None), (fires, fact.times_fired + 1), else_=fact.times_fired),
               case((~frequency, None), (fires, bindparam("new_visit", type_=_v.id.type)), else_=fact.last_fired))
        .where(or_(frequency, fact.shop_id.is_not(None), fact.source.is_not(None)), or_(fact.qualifies, fact.held))
    )
    excluded = kept.excluded
    return kept.on_conflict_do_update(
        index_elements=["rule_id", "contact_id"],
        set_={name: excluded[name] for name in
              ("writes", "counted", "pending", "pending_first", "pending_last", "fired", "fired_visit")})


def moments(dialect: str, kept: Any, writes: Any) -> Any:
    """The statement of what a new visit's ACTIVE rules do (Moment rows; parameters: RuledVisit.params).

    `kept` and `writes` are the contact's kept count and writes, moved by this visit's transaction
    already. `facts` (_facts) reads all a rule needs to decide: the contact's count of qualifying
    visits up to this one (`total`), a frequency rule's visits in its window since it last fired and
    the times it fired, the contact's lapse standing. `decided` keeps the rules that fire or end a
    lapse.

    On PostgreSQL the same statement records them (firings keyed by (rule, contact, count), so a
    count never fires twice; a lapse ends only while the row is still lapsed), keeps the rules'
    state (_keep) and answers only what it recorded; SQLite has no data-modifying WITH, so
    RuleRepository.record keeps the state and writes each one after."""
    contact_id = bindparam("rule_contact", type_=_c.id.type)
    account_id = bindparam("rule_account", type_=_r.account_id.type)
    facts = _facts(dialect, kept, writes)
    fact = facts.c
    fires_at, returns = _decisions(dialect, fact)
    decided = (
        select(fact.id, fact.uuid, fact.name, fact.kind, fact.total, fires_at.label("fires_at"),
               returns.label("returns"), fact.last_visit_at,
               # Asked in passing, as a visit's lookup asks: no outbox query for an account without them.
               subscribed(account_id, "visit_milestone").label("milestone_subscribed"),
               subscribed(account_id, "contact_returned").label("returned_subscribed"))
        .where(or_(fires_at.is_not(None), returns))
    )
    if dialect != "postgresql":
        return decided.order_by(fact.id)
    made = decided.cte("decided")
    fired = (
        upsert(dialect, visit_rule_firings).from_select(
            ["rule_id", "contact_id", "count", "visit_id", "fired_at"],
            select(made.c.id, contact_id, made.c.fires_at, bindparam("new_visit", type_=_v.id.type),
                   bindparam("moment_at", type_=_f.fired_at.type)).where(made.c.fires_at.is_not(None)))
        .on_conflict_do_nothing().returning(_f.rule_id).cte("fired")
    )
    came_back = _end_lapse(_rc.rule_id.in_(select(made.c.id).where(made.c.returns)), contact_id,
                           bindparam("visit_start", type_=_v.starts_at.type)).cte("came_back")
    kept_state = _keep(dialect, facts).returning(visit_rule_counts.c.rule_id).cte("kept_state")
    return (select(*made.c)
            .where(or_(made.c.id.in_(select(fired.c.rule_id)), made.c.id.in_(select(came_back.c.rule_id))))
            .order_by(made.c.id).add_cte(kept_state))


def _of_count_row(column: Any) -> Any:
    """A column of the contact's count row (contact_visit_counts: its kept count, its writes), as
    moments() reads it in a statement of its own."""
    return select(column).where(_k.contact_id == bindparam("rule_contact", type_=_k.contact_id.type)).scalar_subquery()


@dataclass(frozen=True)
class RuleStatements:
    insert: Statement
    has_active: Statement
    get: Statement[Rule]
    count: Statement
    page: Statement[Rule]
    update: Statement
    delete: Statement
    forget_rule: tuple[Statement, ...]  # its contacts' standing, kept state and firings
    forget_contact: tuple[Statement, ...]  # its standing and kept state with every rule
    moments: Statement[Moment]
    keep: Statement | None  # SQLite's: moments() keeps the state itself on PostgreSQL
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

    fire = upsert(dialect, visit_rule_firings).values(
        binds(visit_rule_firings, "rule_id", "contact_id", "count", "visit_id", "fired_at")
    ).on_conflict_do_nothing().returning(_f.count)
    returned = _end_lapse(_rc.rule_id == rule_id, contact_id, bindparam("starts_at", type_=_v.starts_at.type))

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
                          for table in (visit_rule_contacts, visit_rule_counts, visit_rule_firings)),
        # By the contact's account's rules: the key (rule_id, contact_id) finds each row, and neither
        # table keeps an index of its own on contact_id (the lapse pass writes one in bulk).
        forget_contact=tuple(statement(delete(table).where(
            table.c.contact_id == contact_id,
            table.c.rule_id.in_(select(_r.id).where(_r.account_id == select(_c.account_id).where(
                _c.id == contact_id).scalar_subquery())))) for table in (visit_rule_contacts, visit_rule_counts)),
        moments=statement(moments(dialect, _of_count_row(_k.count), _of_count_row(_k.writes)), Moment),
        keep=(statement(_keep(dialect, _facts(dialect, _of_count_row(_k.count), _of_count_row(_k.writes))))
              if dialect == "sqlite" else None),
        fire=statement(fire),
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
            select(_f.rule_id, _f.count).where(_f.contact_id == contact_id).order_by(_f.rule_id, _f.count)
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
        """The rule, its firings, its contacts' standing and what it kept of them (no foreign key to it)."""
        for statement in self.statements.forget_rule:
            await self.tx.execute(statement, {"rule_id": rule_id})
        await self.tx.execute(self.statements.delete, {"rule_id": rule_id})

    async def forget_contact(self, contact_id: int) -> None:
        """The contact's standing with every rule and what each kept of it (its firings go by their foreign key)."""
        for statement in self.statements.forget_contact:
            await self.tx.execute(statement, {"contact_id": contact_id})

    async def record(self, visit: RuledVisit) -> list[Moment]:
        """What the visit's rules do, recorded: firings, ended lapses, the rules' kept state (see moments())."""
        params = visit.params()
        found = await self.tx.fetch(self.statements.moments, params)
        if self.statements.keep is None:
            return found  # recorded by the statement itself (PostgreSQL)
        await self.tx.execute(self.statements.keep, params)  # after the decision, which reads the state before
        return [moment for moment in found if await self._record_one(moment, visit)]

    async def _record_one(self, moment: Moment, visit: RuledVisit) -> bool:
        """Records one moment that the statement decided; False when it was recorded before."""
        if moment.fires_at is not None:
            return await self.fire(moment.id, visit.contact_id, moment.fires_at, visit.visit_id, visit.now)
        return await self.returned(moment.id, visit.contact_id, visit.starts_at)

    async def fire(self, rule_id: int, contact_id: int, count: int, visit_id: int, fired_at: datetime) -> bool:
        """Records the firing; False when this (rule, contact, count) has fired before."""
        return await self.tx.fetchval(self.statements.fire, {
            "rule_id": rule_id, "contact_id": contact_id, "count": count, "visit_id": visit_id,
            "fired_at": fired_at}) is not None

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
