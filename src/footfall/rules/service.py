"""Visit rules: milestones, frequencies and lapses, fired once each from the visits that reach them.

A visit's rules run in the visit's own transaction, after its insert and with its contact's row held
(ContactRepository.share in turn), so each contact's visits are counted one after another and a count's firing is
recorded (visit_rule_firings' key) with the visit that reached it: exactly once, and never for a
count reached before the rule was made (a milestone fires only at the count itself)."""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.contacts.repository import ContactRepository
from footfall.db import Tx
from footfall.errors import ContactNotFound, InvalidInput, RuleNotFound, ShopNotFound
from footfall.kit.pagination import PageParams
from footfall.kit.time import utcnow
from footfall.rules.repository import Kept, KeptState, Progress, Rule, RuleRepository, RuleState, micros
from footfall.rules.schemas import RuleCreate, RuleUpdate
from footfall.shops.repository import ShopRepository
from footfall.webhooks import service as webhooks

# The numbers each kind uses; any other given is refused.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "milestone": ("every", "at"),
    "frequency": ("count", "within_days"),
    "lapse": ("after_days", "min_visits"),
}
_REQUIRED = {"frequency": ("count", "within_days"), "lapse": ("after_days",)}
_NUMBERS = ("every", "at", "count", "within_days", "after_days", "min_visits")


def _check_kind(data: RuleCreate) -> None:
    errors: dict[str, list[str]] = {}
    for field in _NUMBERS:
        if field not in KIND_FIELDS[data.kind] and getattr(data, field) is not None:
            errors[field] = [f"Not used by a {data.kind} rule; leave it out."]
    if data.kind == "milestone":
        if (data.every is None) == (data.at is None):
            errors["every"] = ["Give exactly one of every and at."]
        elif data.at is not None and not data.at:
            errors["at"] = ["Give at least one count."]
    for field in _REQUIRED.get(data.kind, ()):
        if getattr(data, field) is None:
            errors[field] = [f"Required for a {data.kind} rule."]
    if errors:
        raise InvalidInput(errors)


async def create(tx: Tx, account: Account, data: RuleCreate) -> Rule:
    _check_kind(data)
    shop_id = None
    if data.shop_uuid is not None:
        shop = await ShopRepository(tx).get(account.id, data.shop_uuid)
        if shop is None:
            raise ShopNotFound()
        shop_id = shop.id
    uuid, now = uuid4(), utcnow()
    await RuleRepository(tx).insert({
        "uuid": uuid, "account_id": account.id, "name": data.name, "kind": data.kind, "every": data.every,
        "at": None if data.at is None else json.dumps(sorted(set(data.at))), "count": data.count,
        "within_days": data.within_days, "after_days": data.after_days,
        "min_visits": (data.min_visits or 1) if data.kind == "lapse" else None,
        "shop_id": shop_id, "source": data.source, "status": data.status, "created_at": now, "updated_at": now,
    })
    return await get(tx, account, uuid)


async def get(tx: Tx, account: Account, uuid: UUID) -> Rule:
    rule = await RuleRepository(tx).get(account.id, uuid)
    if rule is None:
        raise RuleNotFound()
    return rule


async def list_page(tx: Tx, account: Account, params: PageParams) -> tuple[Sequence[Rule], int]:
    repository = RuleRepository(tx)
    await tx.snapshot()  # the page and its total agree
    total = await repository.count(account.id)
    if not params.reaches_rows(total):
        return [], total
    return await repository.page(account.id, params.limit, params.offset), total


async def update(tx: Tx, account: Account, uuid: UUID, data: RuleUpdate) -> Rule:
    rule = await get(tx, account, uuid)
    changes = data.model_dump(include={"name", "status"}, exclude_unset=True)
    for field in ("name", "status"):
        if field in changes and changes[field] is None:
            raise InvalidInput({field: [f"The {field} cannot be null."]})
    if changes:
        await RuleRepository(tx).update(rule.id, changes.get("name", rule.name), changes.get("status", rule.status),
                                        utcnow())
    return await get(tx, account, uuid)


async def delete(tx: Tx, account: Account, uuid: UUID) -> None:
    """Deletes the rule, its firings and its contacts' standing with it."""
    await RuleRepository(tx).delete((await get(tx, account, uuid)).id)


async def recent_events(tx: Tx, account: Account, days: int = 30) -> dict[UUID, int]:
    """Each rule's events in the last `days` days (the console's Rules page), by rule uuid: its
    milestones, or the contacts that lapsed in that time and have not returned."""
    return await RuleRepository(tx).recent(account.id, utcnow() - timedelta(days=days))


# The accounts this process last saw with ACTIVE rules: a hint only, which lets a create take the
# contact's lock for rules in its first statement rather than in one more. The lookup's own answer
# decides whether rules run, so a hint gone stale (another process changed the rules) costs a round
# trip or a stronger lock once, never a count.
_WITH_RULES: set[int] = set()


def expects_rules(account_id: int) -> bool:
    return account_id in _WITH_RULES


def saw_rules(account_id: int, active: bool) -> None:
    if active:
        _WITH_RULES.add(account_id)
    else:
        _WITH_RULES.discard(account_id)


async def forget_contact(tx: Tx, contact_id: int) -> None:
    """A contact's delete: its standing with every rule goes (its firings with it, by their key)."""
    await RuleRepository(tx).forget_contact(contact_id)


class VisitedContact(NamedTuple):
    id: int
    uuid: UUID
    email: str | None


class RecordedVisit(NamedTuple):
    """What rules read of a new visit; `fields` makes the visit as the API shows it, called only for
    an event (most visits fire nothing)."""

    id: int
    shop_id: int
    source: str | None
    starts_at: datetime
    fields: Callable[[], dict[str, Any]]

    @property
    def starts_us(self) -> int:
        """starts_at as kept state holds times (micros)."""
        return micros(self.starts_at)


def rule_ref(rule: Any) -> dict[str, Any]:
    return {"uuid": rule.uuid, "name": rule.name, "kind": rule.kind}


class RuledVisit(NamedTuple):
    """A new visit, as its rules read it: its contact held, its insert and count made in its
    transaction. `later`: the contact's visits recorded after this one in the same transaction."""

    account_id: int
    contact: VisitedContact
    visit: RecordedVisit
    later: int
    now: datetime


class Moment(NamedTuple):
    """What an ACTIVE rule does on a new visit: fire (`fires_at`, the key count of the firing: a
    milestone's count, a frequency rule's times fired) or end the contact's lapse (`returns`; the
    rule's `last_visit_at` is the one it lapsed after). `total`: the contact's qualifying visits."""

    rule: RuleState
    total: int
    fires_at: int | None
    returns: bool


def ruled(account_id: int, contact: VisitedContact, visit: RecordedVisit, later: int = 0) -> RuledVisit:
    """The visit as its rules read it. `later`: the contact's visits recorded after this one in the same
    transaction."""
    return RuledVisit(account_id, contact, visit, later, utcnow())


async def on_visit(
    tx: Tx, account_id: int, contact: VisitedContact, visit: RecordedVisit, *, later: int = 0, send: bool
) -> None:
    """Runs the account's ACTIVE rules on a visit just inserted and counted, its contact held: records
    what fires and, with `send`, emits its events (an import without --fire-rules records them
    silently)."""
    ruled_visit = ruled(account_id, contact, visit, later)
    moments = await record(tx, ruled_visit, await RuleRepository(tx).states(account_id, contact.id))
    if send:
        await announce(tx, ruled_visit, moments)


# A frequency rule whose count is at most this + 1 keeps the latest starts of its pending visits
# (Kept.latest_starts): they decide its window without counting it from the visits.
KEPT_STARTS = 10


@lru_cache(maxsize=1024)
def _counts_at(at: str) -> frozenset[int]:
    """A milestone's `at` (a JSON list), parsed once per process rather than once per visit."""
    return frozenset(json.loads(at))


def _window_start(starts_at: datetime, days: int) -> datetime:
    try:
        return starts_at - timedelta(days=days)
    except OverflowError:  # a window reaching before year 1 holds every visit
        return datetime.min.replace(tzinfo=UTC)


_DAY_US = 86_400_000_000


class _Window(NamedTuple):
    """A frequency rule's window on a visit: the window ends at the visit's start, and holds the visit
    and those of the contact's qualifying visits since the rule last fired (`pending`, `first` and
    `last` their count and their first and last start, micros) that started inside it."""

    rule: RuleState
    visit: RecordedVisit
    last_fired: int
    pending: int
    first: int | None
    last: int | None

    async def reached(self, repository: RuleRepository, contact_id: int,
                      latest: list[int] | None) -> tuple[bool, list[int] | None]:
        """Whether the window holds the rule's count of visits; and the latest starts of the pending
        visits once this one counts (`latest`: those before it; None: not known).

        Kept latest starts decide it when every pending visit started by this one's start (the usual
        order): the window holds `needed` visits when it holds the `needed - 1` latest. Otherwise the
        window is counted from the visits, and the latest starts learnt while doing so."""
        rule, visit = self.rule, self.visit
        assert rule.needed is not None and rule.within_days is not None  # a frequency rule's
        needed, starts = rule.needed, visit.starts_us
        after = starts - rule.within_days * _DAY_US  # the window's start, in micros
        keeps = needed - 1 <= KEPT_STARTS
        in_order = self.last is None or self.last <= starts
        if self.pending + 1 < needed:  # too few since it last fired
            reached = False
        elif in_order and (self.first is None or self.first > after):  # all of them in the window
            reached = True
        elif not keeps:
            reached = 1 + await repository.in_window(rule.id, contact_id, self.last_fired, visit.id,
                                                     _window_start(visit.starts_at, rule.within_days),
                                                     visit.starts_at) >= needed
        else:
            found = latest
            if found is None or not in_order:
                found = [micros(start) for start in await repository.latest_starts(
                    rule.id, contact_id, self.last_fired, visit.id, visit.starts_at, needed - 1)]
                latest = found if in_order else latest
            reached = 1 + sum(1 for start in found if start > after) >= needed
        if reached:
            return True, [] if keeps else None
        if latest is None or not keeps:
            return False, None
        return False, sorted([*latest, starts], reverse=True)[:needed - 1]


async def _decide(
    repository: RuleRepository, ruled_visit: RuledVisit, rule: RuleState, kept: Kept | None
) -> tuple[Moment, Kept | None]:
    """What a rule that keeps counts of its own (_keeps) does on the visit, and what it keeps of the
    contact afterwards (None: nothing); the others are decided by _unkept.

    A rule of every shop and source counts from the contact's kept count, less its visits recorded
    after this one in the same transaction (ids grow in the order a contact's visits are recorded:
    its row, held, orders them). A rule of one shop or source, and a frequency rule, keep their own
    counts (`kept`: what the rule kept at the contact's write before this visit, None when it kept
    nothing then); without them they are counted afresh from the visits."""
    visit, contact_id = ruled_visit.visit, ruled_visit.contact.id
    frequency = rule.kind == "frequency"
    restricted = rule.shop_id is not None or rule.source is not None
    qualifies = ((rule.shop_id is None or rule.shop_id == visit.shop_id)
                 and (rule.source is None or (visit.source is not None and rule.source == visit.source)))
    recount = None
    if qualifies and kept is None:
        recount = await repository.recount(rule.id, contact_id, visit.id)

    if not qualifies:
        total = 0 if kept is None else kept.counted
    elif not restricted:
        total = _contact_total(ruled_visit, rule)
    elif kept is not None:
        total = kept.counted + 1
    else:
        assert recount is not None
        total = recount.total

    fires_at = None
    latest: list[int] | None = None  # a frequency rule's latest pending starts, once this visit counts
    if frequency:
        if kept is not None:
            times, last_fired = kept.fired or 0, kept.fired_visit_id or 0
            pending, first, last = kept.pending or 0, kept.pending_first, kept.pending_last
            latest = kept.latest_starts
        elif recount is not None:
            times, last_fired, pending = recount.times_fired, recount.last_fired, recount.pending
            first = None if recount.pending_first is None else micros(recount.pending_first)
            last = None if recount.pending_last is None else micros(recount.pending_last)
            latest = [] if pending == 0 else None
        else:  # neither kept nor counted: it does not qualify, and keeps nothing
            times = last_fired = pending = 0
            first = last = None
        if qualifies:
            window = _Window(rule, visit, last_fired, pending, first, last)
            reached, latest = await window.reached(repository, contact_id, latest)
            if reached:
                fires_at = times + 1
            starts = visit.starts_us
            first = starts if first is None else min(first, starts)
            last = starts if last is None else max(last, starts)
    elif qualifies:
        fires_at = _milestone(rule, total)
    moment = Moment(rule, total, fires_at, qualifies and _returns(rule, visit))

    if not qualifies:
        return moment, kept  # a visit it does not count leaves what it kept as it was
    if not frequency:
        return moment, Kept(total, None, None, None, None, None, None)
    if fires_at is not None:
        return moment, Kept(total, 0, None, None, times + 1, visit.id, latest)
    return moment, Kept(total, pending + 1, first, last, times, last_fired, latest)


def _milestone(rule: RuleState, total: int) -> int | None:
    """The count a milestone rule fires at when the contact's qualifying visits reach `total`."""
    if rule.every:
        return total if total % rule.every == 0 else None
    if rule.at is not None:
        return total if total in _counts_at(rule.at) else None
    return None


def _returns(rule: RuleState, visit: RecordedVisit) -> bool:
    """Whether the qualifying visit ends the contact's lapse under the rule."""
    return (rule.kind == "lapse" and rule.lapsed_at is not None and rule.last_visit_at is not None
            and rule.last_visit_at < visit.starts_at)


def _contact_total(ruled_visit: RuledVisit, rule: RuleState) -> int:
    """The contact's visits up to this one (a rule of every shop and source counts them all): its kept
    count, less its visits recorded after this one in the same transaction."""
    return rule.contact_count - ruled_visit.later


def _unkept(ruled_visit: RuledVisit, rule: RuleState) -> Moment:
    """_decide for a rule that keeps nothing (of every shop and source, not a frequency rule): every
    visit qualifies, counted from the contact's kept count; nothing to read, nothing to keep."""
    total = _contact_total(ruled_visit, rule)
    return Moment(rule, total, _milestone(rule, total), _returns(rule, ruled_visit.visit))


def _keeps(rule: RuleState) -> bool:
    """Whether the rule keeps counts of its own of a contact (Kept; _decide): a frequency rule, or
    a rule of one shop or source."""
    return rule.kind == "frequency" or rule.shop_id is not None or rule.source is not None


class Decisions(NamedTuple):
    """What a visit's rules decided: what fires or ends a lapse (`moments`, in rule order), and what
    they keep of the contact (`kept`: RuleRepository.keep; None: nothing)."""

    moments: list[Moment]
    kept: KeptState | None

    @property
    def firing(self) -> dict[int, int]:
        """Each firing rule's key count: RuleRepository.fire."""
        return {moment.rule.id: moment.fires_at for moment in self.moments if moment.fires_at is not None}


async def decide(tx: Tx, ruled_visit: RuledVisit, rules: Sequence[RuleState]) -> Decisions:
    """What each of the account's ACTIVE rules (`rules`, read once the visit is counted or as they
    will be) does on the visit; nothing is written yet."""
    if not rules:
        return Decisions([], None)
    repository = RuleRepository(tx)
    # The contact's writes once this visit is counted, less those recorded after it in the same
    # transaction: what was kept at the write before it holds.
    writes = rules[0].contact_writes - ruled_visit.later
    state = KeptState.read(rules[0].kept)
    held = state.rules if state is not None and state.writes == writes - 1 else {}
    moments, kept = [], {}
    for rule in rules:
        if _keeps(rule):
            key = rule.uuid.hex
            moment, keeps = await _decide(repository, ruled_visit, rule, held.get(key))
            if keeps is not None:
                kept[key] = keeps
        else:  # most rules keep nothing: decided without a key, a read or an await
            moment = _unkept(ruled_visit, rule)
        if moment.fires_at is not None or moment.returns:
            moments.append(moment)
    return Decisions(moments, KeptState(writes, kept) if kept else None)


async def recorded(tx: Tx, ruled_visit: RuledVisit, decisions: Decisions, fired: set[int]) -> list[Moment]:
    """The decided moments that were recorded: the firings that were new (`fired`, the rules whose
    (rule, contact, count) had not fired before), and the lapses ended here, each only while it is
    still lapsed."""
    repository = RuleRepository(tx)
    contact_id, starts_at = ruled_visit.contact.id, ruled_visit.visit.starts_at
    return [moment for moment in decisions.moments
            if moment.rule.id in fired
            or (moment.returns and await repository.returned(moment.rule.id, contact_id, starts_at))]


async def record(tx: Tx, ruled_visit: RuledVisit, rules: Sequence[RuleState]) -> list[Moment]:
    """Decides (decide), keeps the rules' state and records what fires and what ends a lapse: what
    was recorded, in rule order."""
    decisions = await decide(tx, ruled_visit, rules)
    fired = await RuleRepository(tx).keep_and_fire(ruled_visit.contact.id, ruled_visit.visit.id, ruled_visit.now,
                                                   decisions.kept, decisions.firing)
    return await recorded(tx, ruled_visit, decisions, fired)


async def announce(tx: Tx, ruled_visit: RuledVisit, moments: Sequence[Moment]) -> None:
    """Emits the events of what the visit's rules did (recorded already), to the account's subscribers."""
    contact, visit = ruled_visit.contact, ruled_visit.visit
    who = {"uuid": contact.uuid, "email": contact.email}
    for moment in moments:
        rule = moment.rule
        if moment.returns:
            assert rule.last_visit_at is not None  # a lapsed standing has its last visit
            if rule.returned_subscribed:
                await webhooks.emit(tx, ruled_visit.account_id, "contact_returned", {
                    "rule": rule_ref(rule), "contact": who, "visit": visit.fields(),
                    "days_away": (visit.starts_at - rule.last_visit_at).days})
        elif rule.milestone_subscribed:
            await webhooks.emit(tx, ruled_visit.account_id, "visit_milestone", {
                "rule": rule_ref(rule), "contact": who, "visit": visit.fields(), "count": moment.total})


async def progress(tx: Tx, account: Account, contact_uuid: UUID) -> list[tuple[Progress, list[int]]]:
    """Each of the account's rules, the contact's standing with it and the counts it fired at."""
    contact = await ContactRepository(tx).get(account.id, contact_uuid)
    if contact is None:
        raise ContactNotFound()
    repository = RuleRepository(tx)
    await tx.snapshot()
    reached = await repository.firings(contact.id)
    return [(row, reached.get(row.rule.id, [])) for row in await repository.progress(account.id, contact.id)]


def next_at(rule: Rule, count: int, reached: list[int]) -> int | None:
    """The count at which a milestone rule fires next for a contact at `count`."""
    if rule.kind != "milestone":
        return None
    if rule.every:
        return (count // rule.every + 1) * rule.every
    ahead = [at for at in json.loads(rule.at or "[]") if at > count and at not in reached]
    return min(ahead, default=None)


async def account_has_active_rules(tx: Tx, account_id: int) -> bool:
    return await RuleRepository(tx).has_active(account_id)
