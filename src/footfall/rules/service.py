"""Visit rules: milestones, frequencies and lapses, fired once each from the visits that reach them.

A visit's rules run in the visit's own transaction, after its insert and with its contact's row held
(ContactRepository.share in turn), so each contact's visits are counted one after another and a count's firing is
recorded (visit_rule_firings' key) with the visit that reached it: exactly once, and never for a
count reached before the rule was made (a milestone fires only at the count itself)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.contacts.repository import ContactRepository
from footfall.db import Tx
from footfall.errors import ContactNotFound, InvalidInput, RuleNotFound, ShopNotFound
from footfall.kit.pagination import PageParams
from footfall.kit.time import utcnow
from footfall.rules.repository import Moment, Progress, Rule, RuledVisit, RuleRepository
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


@dataclass(frozen=True)
class VisitedContact:
    id: int
    uuid: UUID
    email: str | None


@dataclass(frozen=True)
class RecordedVisit:
    """What rules read of a new visit; `fields` is the visit as the API shows it (for the events)."""

    id: int
    shop_id: int
    source: str | None
    starts_at: datetime
    fields: dict[str, Any]


def rule_ref(rule: Any) -> dict[str, Any]:
    return {"uuid": rule.uuid, "name": rule.name, "kind": rule.kind}


def ruled(account_id: int, contact: VisitedContact, visit: RecordedVisit, later: int = 0) -> RuledVisit:
    """The visit as its rules read it. `later`: the contact's visits recorded after this one in the same
    transaction."""
    return RuledVisit(account_id, contact.id, visit.id, visit.shop_id, visit.source, visit.starts_at, later, utcnow())


async def on_visit(
    tx: Tx, account_id: int, contact: VisitedContact, visit: RecordedVisit, *, later: int = 0, send: bool
) -> None:
    """Runs the account's ACTIVE rules on a visit just inserted and counted, its contact held: records
    what fires and, with `send`, emits its events (an import without --fire-rules records them
    silently)."""
    moments = await RuleRepository(tx).record(ruled(account_id, contact, visit, later))
    if send:
        await announce(tx, account_id, contact, visit, moments)


async def announce(
    tx: Tx, account_id: int, contact: VisitedContact, visit: RecordedVisit, moments: Sequence[Moment]
) -> None:
    """Emits the events of what the visit's rules did (recorded already), to the account's subscribers."""
    who = {"uuid": contact.uuid, "email": contact.email}
    for moment in moments:
        if moment.returns:
            assert moment.last_visit_at is not None  # a lapsed standing has its last visit
            if moment.returned_subscribed:
                await webhooks.emit(tx, account_id, "contact_returned", {
                    "rule": rule_ref(moment), "contact": who, "visit": visit.fields,
                    "days_away": (visit.starts_at - moment.last_visit_at).days})
        elif moment.milestone_subscribed:
            await webhooks.emit(tx, account_id, "visit_milestone", {
                "rule": rule_ref(moment), "contact": who, "visit": visit.fields, "count": moment.total})


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
