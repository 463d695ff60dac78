"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header, as Stripe practises it).

A POST or PUT with the header claims the key for its account with an INSERT that conflicts, in a
transaction of its own, so every process sees the claim at once. The answer is stored in the same
transaction as the request's own writes, and only while the request still owns the key: the write
and its recorded answer commit together or not at all, so a repeat either replays the answer or runs
the request afresh, never both. An error answer is not stored: the claim is released, and the key can
be used again.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode
from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.config import Settings
from footfall.db import Database, Tx
from footfall.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, InvalidInput
from footfall.idempotency.repository import IdempotencyRepository
from footfall.kit.time import utcnow

HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Claim:
    id: int
    token: UUID


class Replay(Exception):
    """The stored first answer to a repeated request."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body


def parse_key(value: str) -> str:
    """The key from the header; a quoted string (the draft's sf-string) and a bare value both work."""
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > 255 or not key.isprintable():
        raise InvalidInput({HEADER: ["Must be 1 to 255 printable characters, e.g. a UUID."]})
    return key


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """The same request gives the same fingerprint, however its JSON is spaced or ordered and its
    query's parameters ordered; any other difference (method, path, a query value, the body) gives
    another."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    target = path.encode()
    if query:  # none: the fingerprint of a key stored before the query counted
        # Decoded byte for byte (latin-1): two queries that differ in any byte stay apart.
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        target += b"?" + urlencode(sorted(pairs)).encode()
    return hashlib.sha256(method.encode() + b" " + target + b"\n" + canonical).hexdigest()


async def claim(
    database: Database, settings: Settings, account: Account, key: str, print_: str
) -> Claim:
    """Claims the key for this request, or raises: Replay, IdempotencyKeyReused or IdempotencyKeyInProgress."""
    now = utcnow()
    token = uuid4()
    owned = {
        "fingerprint": print_,
        "state": "running",
        "lock_token": token,
        "locked_until": now + timedelta(seconds=settings.idempotency_lock_seconds),
        "response_status": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + timedelta(seconds=settings.idempotency_ttl_seconds),
    }
    async with database.transaction(write=True) as tx:
        repository = IdempotencyRepository(tx)
        claimed = await repository.insert(account.id, key, owned)
        if claimed is not None:
            return Claim(claimed, token)
        stored = await repository.get(account.id, key)
        if stored is None:  # deleted (released or purged) in between: the caller's retry will claim it
            raise IdempotencyKeyInProgress()
        if stored.expires_at <= now:
            if await repository.take_over(stored.id, now, owned):
                return Claim(stored.id, token)
            raise IdempotencyKeyInProgress()
        if stored.fingerprint != print_:
            raise IdempotencyKeyReused()
        if stored.state == "done":
            assert stored.response_status is not None and stored.response_body is not None  # done: stored
            raise Replay(stored.response_status, stored.response_body)
        held_until = stored.locked_until
        if held_until is not None and held_until <= now and await repository.take_over(stored.id, now, owned):
            return Claim(stored.id, token)  # the request that held it died
        raise IdempotencyKeyInProgress()


async def complete(tx: Tx, claim_: Claim, status_code: int, body: bytes) -> None:
    """Stores the answer in the request's own transaction; raises when the key is no longer this request's."""
    if not await IdempotencyRepository(tx).store_answer(claim_.id, claim_.token, status_code, body.decode()):
        raise IdempotencyKeyInProgress()


async def release(database: Database, claim_: Claim) -> None:
    async with database.transaction(write=True) as tx:
        await IdempotencyRepository(tx).release(claim_.id, claim_.token)


async def purge_expired(database: Database) -> None:
    async with database.transaction(write=True) as tx:
        await IdempotencyRepository(tx).purge_expired(utcnow())
