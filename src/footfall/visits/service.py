"""Visits: the rules of Leat's Visits API, plus safe retries by external_id."""

import base64
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from pydantic import ValidationError

from footfall.accounts.repository import Account
from footfall.contacts import service as contacts_service
from footfall.contacts.repository import ContactKey, ContactRepository
from footfall.contacts.schemas import ContactCreate
from footfall.db import Tx
from footfall.errors import (
    ContactNotFound,
    ExternalIdConflict,
    FootfallError,
    InvalidInput,
    ShopNotFound,
    VisitNotFound,
    field_errors,
)
from footfall.kit.pagination import PageParams
from footfall.kit.time import utcnow
from footfall.kit.uuids import new_uuid
from footfall.rules import service as rules
from footfall.shops.repository import ShopRepository
from footfall.visits.repository import Change, DuplicateExternalId, VisitFilter, VisitRepository, VisitRow, spans_of
from footfall.visits.schemas import BatchVisit, VisitCreate, VisitUpdate, tombstone_fields, visit_fields
from footfall.webhooks import service as webhooks


def _check_period(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is None:
        raise InvalidInput({"starts_at": ["A visit must have a start; starts_at cannot be null."]})
    if ends_at is not None and ends_at < starts_at:
        raise InvalidInput({"ends_at": ["Must be a date and time after or equal to starts_at."]})


def new_visit(
    account_id: int, data: VisitCreate | BatchVisit, contact_id: int | None, shop_id: int | None, now: datetime,
    uuid: UUID | None = None,
) -> dict[str, Any]:
    """The row a new visit inserts, checked: the rules of every path that creates visits (the API's
    create, the bulk import). contact_id or shop_id None: the account has no such contact or shop.
    `uuid`: the visit's, when the caller made it (an import makes them in bulk); a new one otherwise."""
    if contact_id is None:
        raise ContactNotFound()
    if shop_id is None:
        raise ShopNotFound()
    starts_at = data.starts_at or now.replace(microsecond=0)
    _check_period(starts_at, data.ends_at)
    return {
        "uuid": uuid or new_uuid(),
        "account_id": account_id,
        "contact_id": contact_id,
        "shop_id": shop_id,
        "external_id": data.external_id,
        "source": data.source,
        "starts_at": starts_at,
        "ends_at": data.ends_at,
        "created_at": now,
        "updated_at": now,
    }


async def create(tx: Tx, account: Account, data: VisitCreate) -> tuple[VisitRow, bool]:
    """The visit, and True when this call created it.

    A create whose external_id exists answers the stored visit when every field the request
    gives equals the stored one (a client's retry), and ExternalIdConflict otherwise.
    """
    repository = VisitRepository(tx)
    held = rules.expects_rules(account.id)
    found = await repository.contact_and_shop(account.id, data.contact_uuid, data.shop_uuid, held=held)
    values = new_visit(account.id, data, found and found.id, found and found.shop_id, utcnow())
    assert found is not None  # new_visit refuses a missing contact or shop
    rules.saw_rules(account.id, found.rules)
    if found.rules and not held and not await ContactRepository(tx).share([found.id], in_turn=True):
        raise ContactNotFound()
    if found.rules:  # asked in passing too: the rules are read as the visit is inserted
        inserted, states = await repository.insert_reading_rules(values, account.id)
    else:
        inserted, states = await repository.insert(values), []
    if inserted is not None:
        visit = VisitRow.of(inserted, found.uuid, found.email)
        if found.notify:  # the lookup asked in passing: no outbox query for an account without webhooks
            await webhooks.emit(tx, account.id, "visit_created", visit_fields(visit))
        span = (visit.starts_at, visit.starts_at)
        if found.rules:  # counted, and what the rules decided written, in one statement
            ruled_visit = rules.ruled(account.id, *_ruled(visit))
            decisions = await rules.decide(tx, ruled_visit, states)
            fired = await repository.add_one_recording_rules(account.id, found.id, visit.id, span, decisions.kept,
                                                             decisions.firing, ruled_visit.now)
            await rules.announce(tx, ruled_visit, await rules.recorded(tx, ruled_visit, decisions, fired))
        else:
            await repository.add_to_counts(account.id, {found.id: 1}, slot=visit.id, spans={found.id: span})
        return visit, True

    assert found.shop_id is not None  # as above
    return await _stored_retry(repository, account, data, found.id, found.shop_id), False


async def _stored_retry(
    repository: VisitRepository, account: Account, data: VisitCreate | BatchVisit, contact_id: int, shop_id: int
) -> VisitRow:
    """The stored visit with the external_id a new visit could not take: a client's retry when every
    field the request gives equals the stored one; ExternalIdConflict otherwise."""
    assert data.external_id is not None  # only an external_id can conflict
    stored = await repository.get_by_external_id(account.id, data.external_id)
    assert stored is not None  # the conflicting row has committed, or the insert would have waited
    given = data.model_fields_set
    same = (
        stored.contact_id == contact_id
        and stored.shop_id == shop_id
        and ("source" not in given or stored.source == data.source)
        and ("starts_at" not in given or stored.starts_at == data.starts_at)
        and ("ends_at" not in given or stored.ends_at == data.ends_at)
    )
    if not same:
        raise ExternalIdConflict()
    return stored


class BatchResult(NamedTuple):
    """What became of one item of a batch (rendered as schemas.BatchOutcome)."""

    visit: VisitRow | None
    created: bool
    error: FootfallError | None


async def create_batch(tx: Tx, account: Account, items: Sequence[Any]) -> list[BatchResult]:
    """Each item created, answered as a retry, or refused, on its own; in the order given. One
    insert for all the new visits (as the bulk import writes them), their counts and their events."""
    outcomes: list[BatchResult | None] = [None] * len(items)
    parsed: dict[int, BatchVisit] = {}
    for index, item in enumerate(items):
        try:
            data = BatchVisit.model_validate(item)
            if (data.contact_uuid is None) == (data.contact_email is None):
                raise InvalidInput({"contact_uuid": ["Give the contact by contact_uuid or by contact_email."]})
            if data.shop_uuid is None:
                raise InvalidInput({"shop_uuid": ["Field required (shop_uuid or business_profile_uuid)."]})
            parsed[index] = data
        except ValidationError as error:
            outcomes[index] = BatchResult(None, False, InvalidInput(field_errors(error.errors(), located=False)))
        except FootfallError as error:
            outcomes[index] = BatchResult(None, False, error)

    named = [data.contact_uuid for data in parsed.values() if data.contact_uuid is not None]
    contacts = await ContactRepository(tx).keys_of(account.id, named) if named else {}
    by_email: dict[str, ContactKey] = {}
    for email in dict.fromkeys(data.contact_email for data in parsed.values() if data.contact_email):
        made, _ = await contacts_service.create(tx, account, ContactCreate(email=email))
        by_email[email] = ContactKey(made.uuid, made.id, made.email)
    shops = await ShopRepository(tx).uuid_map(account.id)
    chosen: dict[int, ContactKey | None] = {
        index: contacts.get(data.contact_uuid) if data.contact_uuid else by_email[data.contact_email or ""]
        for index, data in parsed.items()}
    # Held against a concurrent delete of any of them; one deleted since it was read is not found.
    # Under rules, held as a single create holds its contact: counted in turn (rules.service).
    with_rules = await rules.account_has_active_rules(tx, account.id)
    chosen_ids = [contact.id for contact in chosen.values() if contact]
    held = await ContactRepository(tx).share(chosen_ids, in_turn=with_rules)

    now = utcnow()
    rows: list[dict[str, Any]] = []
    placed: dict[str, tuple[int, dict[str, Any], ContactKey]] = {}  # a row's uuid -> (item index, row, contact)
    for index, data in parsed.items():
        key = chosen[index]
        contact = key if key is not None and key.id in held else None
        try:
            row = new_visit(account.id, data, contact and contact.id,
                            shops.get(data.shop_uuid) if data.shop_uuid else None, now)
        except FootfallError as error:
            outcomes[index] = BatchResult(None, False, error)
            continue
        assert contact is not None  # new_visit refuses a missing contact
        rows.append(row)
        placed[str(row["uuid"])] = (index, row, contact)

    repository = VisitRepository(tx)
    created = []
    for visit in await repository.insert_many(account.id, rows, full=True) if rows else []:
        index, _, contact = placed.pop(str(visit.uuid))
        created.append(VisitRow.of(visit, contact.uuid, contact.email))
        outcomes[index] = BatchResult(created[-1], True, None)
    for index, row, contact in placed.values():  # an external_id the account had, or an earlier item
        try:
            stored = await _stored_retry(repository, account, parsed[index], contact.id, row["shop_id"])
            outcomes[index] = BatchResult(stored, False, None)
        except FootfallError as error:
            outcomes[index] = BatchResult(None, False, error)

    if created:
        per_contact = dict(Counter(visit.contact_id for visit in created))
        await repository.add_to_counts(account.id, per_contact, slot=new_uuid().int, spans=spans_of(created))
        subscription_ids = await webhooks.subscribers(tx, account.id, "visit_created")
        await webhooks.emit_to(tx, account.id, "visit_created", subscription_ids,
                               [visit_fields(visit) for visit in created] if subscription_ids else [])
        if with_rules:
            await run_rules(tx, account.id, created, send=True)
    return outcomes  # type: ignore[return-value]


async def run_rules(tx: Tx, account_id: int, created: Sequence[VisitRow], *, send: bool) -> None:
    """The account's rules on visits just inserted, their contacts held, in the order they were recorded."""
    in_order = sorted(created, key=lambda visit: visit.id)
    left = Counter(visit.contact_id for visit in in_order)  # each contact's visits from this one on
    for visit in in_order:
        left[visit.contact_id] -= 1
        await rules.on_visit(tx, account_id, *_ruled(visit), later=left[visit.contact_id], send=send)


def _ruled(visit: VisitRow) -> tuple[rules.VisitedContact, rules.RecordedVisit]:
    """The visit's contact and the visit, as its rules read them."""
    return (rules.VisitedContact(visit.contact_id, visit.contact_uuid, visit.contact_email),
            rules.RecordedVisit(visit.id, visit.shop_id, visit.source, visit.starts_at, partial(visit_fields, visit)))


async def get(tx: Tx, account: Account, uuid: UUID) -> VisitRow:
    visit = await VisitRepository(tx).get(account.id, uuid)
    if visit is None:
        raise VisitNotFound()
    return visit


async def update(tx: Tx, account: Account, uuid: UUID, data: VisitUpdate) -> VisitRow:
    repository = VisitRepository(tx)
    found = await repository.get_to_update(account.id, uuid)
    if found is None:
        raise VisitNotFound()
    changes = data.model_dump(include={"external_id", "source", "starts_at", "ends_at"}, exclude_unset=True)
    if not changes:
        return found
    _check_period(changes.get("starts_at", found.starts_at), changes.get("ends_at", found.ends_at))
    try:
        updated = await repository.update(found.id, changes, utcnow())
    except DuplicateExternalId:
        raise ExternalIdConflict() from None
    if updated is None:  # deleted since it was read
        raise VisitNotFound()
    moved_start = changes.get("starts_at", found.starts_at) != found.starts_at
    if moved_start or changes.get("source", found.source) != found.source:
        # The contact's first or last visit may have moved, and what its rules counted.
        await repository.respan([found.contact_id], held=False)
    if moved_start:
        await repository.reshaped(account.id)
    visit = VisitRow.of(updated, found.contact_uuid, found.contact_email)
    if found.notify:
        await webhooks.emit(tx, account.id, "visit_updated", visit_fields(visit))
    return visit


async def delete(tx: Tx, account: Account, uuid: UUID) -> None:
    """Deletes the visit: a tombstone stays for the changes feed, and visit_deleted goes out. Its
    external_id is free again: a later create with it makes a new visit."""
    deleted_at = utcnow()
    deleted = await VisitRepository(tx).delete(account.id, uuid, deleted_at)
    if deleted is None:
        raise VisitNotFound()
    await webhooks.emit(tx, account.id, "visit_deleted",
                        tombstone_fields(deleted.uuid, deleted.external_id, deleted_at))


async def changes(tx: Tx, account: Account, cursor: str | None, limit: int) -> tuple[list[Change], str]:
    """The account's changes after the cursor, oldest first, and the cursor to call with next."""
    after = read_cursor(cursor, account.uuid)
    rows = await VisitRepository(tx).changes(account.id, after, limit)
    if rows:
        after = (rows[-1].change_xid, rows[-1].change_seq)
    return rows, write_cursor(account.uuid, after)


_MAX_BIGINT = 2**63 - 1


def write_cursor(account_uuid: UUID, after: tuple[int, int]) -> str:
    text = f"{account_uuid}:{after[0]}:{after[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_cursor(cursor: str | None, account_uuid: UUID) -> tuple[int, int]:
    """The position a cursor stands for; (0, 0), the start, for none. 1003 on `cursor` for one this
    account was not given."""
    if not cursor:
        return (0, 0)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        owner, xid, seq = text.split(":")
        position = (int(xid), int(seq))
        # A position is two BIGINTs: one past them is no position this account was given.
        if UUID(owner) != account_uuid or min(position) < 0 or max(position) > _MAX_BIGINT:
            raise ValueError
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise InvalidInput({"cursor": ["Not a cursor this account was given; start again without one."]}) from None
    return position


async def list_page(
    tx: Tx, account: Account, params: PageParams, filters: VisitFilter
) -> tuple[Sequence[VisitRow], int]:
    """A page and its total, as one snapshot of the database saw them."""
    repository = VisitRepository(tx)
    if not filters.leats:
        return await repository.filtered_page(account.id, filters, params.limit, params.offset)
    if params.offset == 0 and params.limit > 0:  # page 1, the usual one: one round trip
        return await repository.first_page(account.id, filters.contact_uuid, params.limit)
    # The page is cut from a total read first; the page's statement reads the total again. Both agree
    # unless a write came in between (then both are read again, in one snapshot): agreeing without
    # a snapshot's two round trips.
    for snapshot in (False, True):
        if snapshot:
            await tx.snapshot()
        contact_id = None
        if filters.contact_uuid is None:
            total = await repository.account_count(account.id)
        else:
            found = await repository.contact_count(account.id, filters.contact_uuid)
            if found is None:
                return [], 0  # a filter that matches no contact matches no visit
            contact_id, total = found.id, found.visit_count
        if not params.reaches_rows(total):
            return [], total
        rows = await repository.page(account.id, contact_id, params.limit, params.offset, total)
        if rows and rows[0].total == total:
            break
    return rows, total
