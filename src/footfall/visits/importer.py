"""Bulk import of visits from CSV or NDJSON: every row checked as the API checks it, good rows kept,
bad rows reported by line, rows whose visit the account has already (by the external_id, or by the
uuid an export wrote) skipped, webhook events as the API emits."""

import asyncio
import csv
import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID, uuid4

import asyncpg
from pydantic import ValidationError

from footfall.accounts.repository import Account
from footfall.contacts.repository import ContactKey, ContactRepository
from footfall.db import Database, Tx
from footfall.errors import ContactNotFound, FootfallError
from footfall.kit.time import IsoDateTimeIn, utcnow
from footfall.kit.uuids import random_uuids
from footfall.rules import service as rules
from footfall.shops.repository import ShopRepository
from footfall.visits import service
from footfall.visits.repository import VisitRepository, VisitRow, spans_of
from footfall.visits.schemas import VisitCreate, visit_fields
from footfall.webhooks import service as webhooks


class ImportedVisit(VisitCreate):
    """A row of an import: a create's fields, and the time the visit was recorded (now when absent),
    so a history moved from elsewhere keeps its created_at. `uuid` (an export's) names the visit the
    row came from: when the account has a visit with that uuid, the row is that visit, and skipped.
    A visit imported gets a uuid of its own all the same."""

    created_at: IsoDateTimeIn | None = None
    uuid: UUID | None = None


# Rows a transaction: a crash keeps every batch before it, and a re-run skips them. The importer's
# memory is about three batches (two being written, one being read) of up to as many contacts.
BATCH_SIZE = 2000
WRITERS = 2
FIRST_ANALYSIS = 50_000  # visits imported before the statistics are first refreshed (PostgreSQL)
DEADLOCK_ATTEMPTS = 3


@dataclass
class Summary:
    read: int = 0
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[tuple[int, str]] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        rate = round(self.imported / self.seconds) if self.seconds else 0
        return {"read": self.read, "imported": self.imported, "skipped": self.skipped, "failed": self.failed,
                "seconds": round(self.seconds, 3), "rows_per_second": rate}


class CountingLines:
    """Iterates a text file's lines, counting characters read (for a progress bar)."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.file:
            self.read += len(line)
            yield line


def read_rows(path: Path, lines: CountingLines) -> Iterator[tuple[int, Any]]:
    """(line number, row) from a .csv (header row of the API's field names) or .ndjson/.jsonl file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # csv.reader with the header zipped on, rather than DictReader (which costs far more per row),
        # read as DictReader reads: extra cells dropped, missing ones None, blank lines skipped.
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            if row:
                values: dict[str, str | None] = dict(zip(header, row, strict=False))  # missing cells: None
                if len(row) < len(header):
                    values.update(dict.fromkeys(header[len(row):]))
                yield reader.line_num, values
    elif suffix in (".ndjson", ".jsonl"):
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except ValueError as error:
                    yield number, error
    else:
        raise ValueError(f"{path.name}: the file must end in .csv, .ndjson or .jsonl")


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
    if isinstance(error, FootfallError):
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in (error.errors or {}).items())
        return f"{error.message} {details}".strip()
    return str(error)


async def import_visits(
    database: Database,
    account: Account,
    rows: Iterator[tuple[int, Any]],
    on_error: Callable[[int, str], None],
    on_batch: Callable[[], None] = lambda: None,
    *,
    fire_rules: bool = False,
) -> Summary:
    """Imports the rows a batch at a time. The account's visit rules count what is imported (a count
    reached by history does not fire later), but send their events only with `fire_rules`: a
    history import must not message customers."""
    summary = Summary()
    started = time.monotonic()
    async with database.transaction(write=False) as tx:
        shops = await ShopRepository(tx).uuid_map(account.id)
        subscribed = bool(await webhooks.subscribers(tx, account.id, "visit_created"))
        with_rules = await rules.account_has_active_rules(tx, account.id)
    one_writer = subscribed or with_rules or database.dialect == "sqlite"
    # A batch's rows as read (each a checked row, or why it is not one, by its line), until their
    # contacts are looked up: a batch at a time, so the import's memory does not grow with the account.
    pending: list[tuple[int, ImportedVisit | Exception]] = []
    # Batches being written while the next is parsed. On PostgreSQL two at once, so the database
    # works on one while it waits for the other; one on SQLite, which has one writer, and one when
    # anyone subscribes to visit_created or the account has rules, so the events and the counts keep
    # the file's order.
    writers = 1 if one_writer else WRITERS
    writing: deque[asyncio.Task] = deque()
    uuids = random_uuids(BATCH_SIZE)
    # PostgreSQL's prepared statements keep a plan made from the table's size when they were first
    # run; fresh statistics, each time the import has doubled what it wrote, make them plan again.
    next_analysis = FIRST_ANALYSIS if database.dialect == "postgresql" else math.inf
    for number, row in rows:
        summary.read += 1
        if summary.read % 500 == 0:
            await asyncio.sleep(0)  # let the pending write move on
        try:
            if isinstance(row, Exception):
                raise row
            pending.append((number, ImportedVisit.model_validate(row)))
        except (ValidationError, FootfallError, ValueError) as error:
            pending.append((number, error))
        if len(pending) >= BATCH_SIZE:
            batch, numbers, by_id = await _checked(database, account.id, pending, shops, uuids, summary, on_error)
            if len(writing) >= writers:
                await writing.popleft()
            writing.append(asyncio.create_task(
                _write(database, account, batch, numbers, by_id, summary, on_error, fire_rules)))
            on_batch()
            if summary.imported >= next_analysis:
                await _analyze(database)
                next_analysis = 2 * summary.imported
    while writing:
        await writing.popleft()
    if pending:
        batch, numbers, by_id = await _checked(database, account.id, pending, shops, uuids, summary, on_error)
        if batch:
            await _write(database, account, batch, numbers, by_id, summary, on_error, fire_rules)
        on_batch()
    if summary.imported:
        await _analyze(database)
    summary.seconds = time.monotonic() - started
    return summary


async def _checked(
    database: Database, account_id: int, pending: list[tuple[int, ImportedVisit | Exception]],
    shops: Mapping[UUID, int], uuids: Iterator[UUID], summary: Summary, on_error: Callable[[int, str], None],
) -> tuple[list[dict[str, Any]], list[int], dict[int, ContactKey]]:
    """The batch's good rows as new visits, the line of each, and their contacts by id (looked up in
    one read); each bad row reported, in the file's order. `pending` is emptied as it is read, so a
    row is held once, as read or as a new visit."""
    named = [data.contact_uuid for _, data in pending if isinstance(data, ImportedVisit)]
    async with database.transaction(write=False) as tx:
        contacts = await ContactRepository(tx).keys_of(account_id, named)
    batch: list[dict[str, Any]] = []
    numbers: list[int] = []
    pending.reverse()
    while pending:
        number, data = pending.pop()
        try:
            if isinstance(data, Exception):
                raise data
            contact = contacts.get(data.contact_uuid)
            visit = service.new_visit(account_id, data, contact and contact.id, shops.get(data.shop_uuid),
                                      data.created_at or utcnow(), next(uuids))
        except (ValidationError, FootfallError, ValueError) as error:
            summary.failed += 1
            on_error(number, _reason(error))
            continue
        visit["given_uuid"] = data.uuid
        batch.append(visit)
        numbers.append(number)
    return batch, numbers, {contact.id: contact for contact in contacts.values()}


async def _analyze(database: Database) -> None:
    """Fresh planner statistics: a plan made from the table's size before the load can be many times
    slower until autovacuum gets round to it."""
    async with database.transaction(write=True) as tx:
        await VisitRepository(tx).analyze()


async def _write(
    database: Database, account: Account, batch: list[dict[str, Any]], numbers: list[int],
    by_id: dict[int, ContactKey], summary: Summary,
    on_error: Callable[[int, str], None], fire_rules: bool,
) -> None:
    """One batch in one transaction: the visits, their counts and their webhook events. Two batches
    written at once can deadlock on external_ids repeated across them in crossed order; PostgreSQL
    then rolls one back, and it is written again."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return await _write_once(database, account, batch, numbers, by_id, summary, on_error, fire_rules)
        except asyncpg.DeadlockDetectedError:
            if attempt == DEADLOCK_ATTEMPTS:
                raise


async def _write_once(
    database: Database, account: Account, batch: list[dict[str, Any]], numbers: list[int],
    by_id: dict[int, ContactKey], summary: Summary,
    on_error: Callable[[int, str], None], fire_rules: bool,
) -> None:
    async with database.transaction(write=True) as tx:
        # Held against a concurrent delete; a row whose contact was deleted since the import began fails.
        # Under visit rules, held as a create holds its contact: counted in turn (rules.service).
        with_rules = await rules.account_has_active_rules(tx, account.id)
        contact_ids = [row["contact_id"] for row in batch]
        held = await ContactRepository(tx).share(contact_ids, in_turn=with_rules)
        gone = [number for number, row in zip(numbers, batch, strict=True) if row["contact_id"] not in held]
        batch = [row for row in batch if row["contact_id"] in held]
        inserted = await write_rows(tx, account, batch, by_id, with_rules=with_rules, fire_rules=fire_rules)
    for number in gone:
        on_error(number, _reason(ContactNotFound()))
    summary.failed += len(gone)
    summary.imported += len(inserted)
    summary.skipped += len(batch) - len(inserted)


async def write_rows(
    tx: Tx, account: Account, rows: list[dict[str, Any]], by_id: Mapping[int, ContactKey], *,
    with_rules: bool = False, fire_rules: bool = False,
) -> list[Any]:
    """New visits (rows of service.new_visit) in the caller's transaction, as an import writes them:
    one insert, their counts (and each contact's first and last visit), and their visit_created events;
    the rows inserted, each a Visit or a record of its contact_id and starts_at (those already there are
    left out). `with_rules`: the account's visit rules run on them, their contacts held, and send
    their events only with `fire_rules`."""
    if not rows:
        return []
    repository = VisitRepository(tx)
    subscription_ids = await webhooks.subscribers(tx, account.id, "visit_created")
    inserted = await repository.insert_many(account.id, rows, full=bool(subscription_ids) or with_rules)
    if inserted:
        per_contact = Counter(row.contact_id for row in inserted)
        await repository.add_to_counts(account.id, dict(per_contact), slot=uuid4().int, spans=spans_of(inserted))
        if subscription_ids:
            await webhooks.emit_to(tx, account.id, "visit_created", subscription_ids, [
                visit_fields(VisitRow.of(row, by_id[row.contact_id].uuid, by_id[row.contact_id].email))
                for row in inserted
            ])
        if with_rules:
            await service.run_rules(tx, account.id, [
                VisitRow.of(row, by_id[row.contact_id].uuid, by_id[row.contact_id].email) for row in inserted
            ], send=fire_rules)
    return inserted
