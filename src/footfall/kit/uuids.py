"""Random (version 4) uuids in bulk: uuid.uuid4 reads the OS's randomness once per uuid, a system
call each; these read it once per batch (an import's rows), or once per SUPPLY uuids (new_uuid)."""

import os
import threading
from collections.abc import Iterator
from uuid import UUID

# asyncpg's UUID: a uuid.UUID, made from 16 bytes without uuid.UUID's Python checks, and the kind
# asyncpg reads every uuid column into and writes fastest.
from asyncpg.pgproto.pgproto import UUID as BytesUUID

# Byte 6 holds the version in its high four bits, byte 8 the variant in its high two (RFC 9562).
_VERSION_4 = bytes((value & 0x0F) | 0x40 for value in range(256))
_VARIANT = bytes((value & 0x3F) | 0x80 for value in range(256))


def random_uuids(chunk: int = 5000) -> Iterator[UUID]:
    """Version 4 uuids without end, as uuid.uuid4 makes them (122 random bits from os.urandom),
    read from the OS `chunk` at a time."""
    while True:
        randomness = bytearray(os.urandom(16 * chunk))
        randomness[6::16] = randomness[6::16].translate(_VERSION_4)
        randomness[8::16] = randomness[8::16].translate(_VARIANT)
        whole = bytes(randomness)
        for start in range(0, len(whole), 16):
            yield BytesUUID(whole[start:start + 16])


SUPPLY = 256  # uuids read from the OS at once by new_uuid, per thread

_supply = threading.local()


def _forget_supply() -> None:
    """In a forked child: its parent hands out the uuids it read too. A new local, whichever thread forked."""
    global _supply
    _supply = threading.local()


os.register_at_fork(after_in_child=_forget_supply)


def new_uuid() -> UUID:
    """A version 4 uuid, as uuid.uuid4() makes it, from this thread's supply: for what a request makes
    (its id, a new visit), where uuid4's system call was a request's."""
    try:
        return next(_supply.uuids)
    except AttributeError:
        _supply.uuids = random_uuids(SUPPLY)
        return next(_supply.uuids)
