"""Reads from PostgreSQL streaming replicas (FOOTFALL_DATABASE_REPLICA_URLS), with each client reading
its own writes, as GitLab's database load balancing does.

After a token's write commits, the primary's WAL position is kept for the token (in Redis when
FOOTFALL_REDIS_URL is set, so it holds across app hosts; in the process otherwise). A read by that
token goes to a replica only once the replica has replayed past that position; until then, to the
primary. Each replica's replayed position and lag are checked every half second: one that lags more
than FOOTFALL_REPLICA_MAX_LAG_SECONDS or does not answer is left out until it is back. Writes, the
outbox, Idempotency-Keys and the worker never come here: they use the primary."""

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Text, cast, func, select

from footfall.db import UNAVAILABLE_ERRORS
from footfall.db.postgres import PostgresDatabase
from footfall.db.statement import Statement
from footfall.db.tx import Tx
from footfall.db.urls import hosts
from footfall.kit.time import pause

log = logging.getLogger("footfall.replicas")

CHECK_SECONDS = 0.5
# The primary's position now (after a write's commit: a replica at or past it has the write), and a
# replica's replayed position; both as text ('16/B374D848').
PRIMARY_POSITION: Statement = Statement(
    select(cast(func.pg_current_wal_lsn(), Text).label("lsn")), dialect="postgresql"
)
REPLAYED_POSITION: Statement = Statement(
    select(cast(func.pg_last_wal_replay_lsn(), Text).label("lsn")), dialect="postgresql"
)


def lsn_number(text: str | None) -> int | None:
    """'16/B374D848' as one number, so positions compare."""
    if not text:
        return None
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class WritePositions(Protocol):
    async def wrote(self, key: str, position: int) -> None: ...
    async def position(self, key: str) -> int | None: ...


class InProcessPositions:
    """Per process: a token's reads on another app process may reach a replica before its write."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self.positions: dict[str, tuple[int, float]] = {}

    async def wrote(self, key: str, position: int) -> None:
        now = time.monotonic()
        if len(self.positions) > 100_000:  # forget those every replica is long past
            self.positions = {k: v for k, v in self.positions.items() if now - v[1] < self.keep_seconds}
        known = self.positions.get(key)
        if known is None or known[0] < position:
            self.positions[key] = (position, now)

    async def position(self, key: str) -> int | None:
        known = self.positions.get(key)
        if known is None or time.monotonic() - known[1] > self.keep_seconds:
            return None
        return known[0]


# The larger of the kept and the new position: two app hosts may record a token's writes out of order.
_KEEP_MAX = """
local kept = redis.call('GET', KEYS[1])
if not kept or tonumber(kept) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""


class RedisPositions:
    """Shared by every app host through Redis. If Redis fails, a read goes to the primary."""

    def __init__(self, url: str, keep_seconds: float) -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.keep_seconds = int(max(1, keep_seconds))
        self.keep_max = self.redis.register_script(_KEEP_MAX)

    async def wrote(self, key: str, position: int) -> None:
        await self.keep_max(keys=[f"footfall:written:{key}"], args=[position, self.keep_seconds])

    async def position(self, key: str) -> int | None:
        kept = await self.redis.get(f"footfall:written:{key}")
        return int(kept) if kept is not None else None

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass
class Replica:
    name: str  # host:port, never the password
    database: PostgresDatabase
    state: str = "starting"  # ok, lagging, down
    replayed: int | None = None
    lag_seconds: float | None = None
    error: str | None = None


@dataclass
class ReadRouting:
    primary: PostgresDatabase
    replicas: list[Replica]
    max_lag_seconds: float
    positions: WritePositions
    # The primary's positions over the last while, (monotonic time, position): how far back a
    # replica's replayed position lies.
    history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=1000))
    turn: int = 0

    @classmethod
    def open(cls, primary: PostgresDatabase, urls: list[str], max_lag_seconds: float, redis_url: str | None,
             pool_size: int) -> "ReadRouting":
        keep = max(60.0, 10 * max_lag_seconds)
        positions: WritePositions = RedisPositions(redis_url, keep) if redis_url else InProcessPositions(keep)
        replicas = [Replica(",".join(hosts(url)), PostgresDatabase(url, pool_size, primary.statement_cache_size))
                    for url in urls]
        return cls(primary, replicas, max_lag_seconds, positions)

    @asynccontextmanager
    async def read(self, key: str) -> AsyncIterator[Tx]:
        """A read transaction for the token `key`: on a replica that has the token's writes, else the
        primary. A replica that cannot be reached is left out at once, and the primary serves."""
        try:
            written = await self.positions.position(key)
        except Exception:  # Redis: without the token's position, only the primary surely has its writes
            replica = None
        else:
            replica = self._choose(written)
        async with AsyncExitStack() as stack:
            tx = None
            if replica is not None:
                try:
                    tx = await stack.enter_async_context(replica.database.transaction(write=False))
                except UNAVAILABLE_ERRORS as error:
                    self._down(replica, error)
            if tx is None:
                tx = await stack.enter_async_context(self.primary.transaction(write=False))
            yield tx

    def _choose(self, written: int | None) -> Replica | None:
        ready = [r for r in self.replicas if r.state == "ok" and (written is None or
                 (r.replayed is not None and r.replayed >= written))]
        if not ready:
            return None
        self.turn += 1
        return ready[self.turn % len(ready)]

    async def wrote(self, key: str) -> None:
        """After the token's write committed: reads wait for a replica past the primary's position now."""
        async with self.primary.transaction(write=False) as tx:
            position = lsn_number(await tx.fetchval(PRIMARY_POSITION))
        assert position is not None  # a primary always has a WAL position (on a standby the function raises)
        try:
            await self.positions.wrote(key, position)
        except Exception:
            log.warning("replicas: keeping a write's position failed; reads may miss it for a moment", exc_info=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Checks the primary's position and each replica's, every CHECK_SECONDS, until stop is set."""
        while not stop.is_set():
            await self.check()
            await pause(stop, CHECK_SECONDS)

    async def check(self) -> None:
        try:
            async with self.primary.transaction(write=False) as tx:
                at = time.monotonic()  # taken before the query, as the position's time
                position = lsn_number(await tx.fetchval(PRIMARY_POSITION))
                assert position is not None  # a primary always has a WAL position (on a standby the function raises)
                self.history.append((at, position))
        except Exception:
            pass  # the primary's own trouble; replicas are judged against the positions known
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))

    async def _check(self, replica: Replica) -> None:
        try:
            async with asyncio.timeout(2):
                async with replica.database.transaction(write=False) as tx:
                    replayed = lsn_number(await tx.fetchval(REPLAYED_POSITION))
        except Exception as error:
            self._down(replica, error)
            return
        replica.replayed, replica.error = replayed, None
        replica.lag_seconds = self._lag(replayed)
        state = "ok" if replayed is not None and replica.lag_seconds <= self.max_lag_seconds else "lagging"
        if state != replica.state:
            log.info("replica %s: %s", replica.name, state, extra={"lag_seconds": replica.lag_seconds})
        replica.state = state

    def _lag(self, replayed: int | None) -> float:
        """Seconds since the primary first passed the replayed position (0 when nothing is missing)."""
        if replayed is None:
            return float("inf")  # not a standby: nothing to replay from
        now = time.monotonic()
        for at, position in self.history:
            if position > replayed:
                return now - at
        return 0.0

    def _down(self, replica: Replica, error: BaseException) -> None:
        if replica.state != "down":
            log.warning("replica %s: down (%s)", replica.name, type(error).__name__)
        replica.state, replica.error = "down", f"{type(error).__name__}: {error}"[:200]

    def report(self) -> list[dict]:
        return [{"hosts": r.name, "state": r.state,
                 "lag_seconds": (None if r.lag_seconds is None or r.lag_seconds == float("inf")
                                 else round(r.lag_seconds, 3))}
                for r in self.replicas]

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.database.close()
        if isinstance(self.positions, RedisPositions):
            await self.positions.close()
