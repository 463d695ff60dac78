"""What both databases' connection pools share: waiters served in arrival order."""

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class Waiters(Generic[C]):
    """Requests waiting for a connection. A freed connection goes to the longest waiter, never to a
    newcomer that asks just then (a queue that lets newcomers in first made the unlucky wait 10x
    the median under load)."""

    def __init__(self) -> None:
        self._queue: deque[asyncio.Future[C]] = deque()

    def __len__(self) -> int:
        return sum(not waiter.done() for waiter in self._queue)

    async def wait(self, give_back: Callable[[C], None]) -> C:
        """A connection, once one is handed over; one handed over just as the caller was cancelled
        goes back through give_back."""
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                give_back(waiter.result())
            raise

    def hand_over(self, connection: C) -> bool:
        """Gives the connection to the longest waiter; False when nobody waits."""
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def wake(self, error: BaseException) -> None:
        """Wakes the longest waiter with error instead of a connection (a slot came free)."""
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_exception(error)
                return
