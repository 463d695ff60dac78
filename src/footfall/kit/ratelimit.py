"""A rate limit per bearer token, before routing (plain ASGI middleware): a fixed one-minute window,
counted in the process or in Redis."""

import logging
import math
import time
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall import metrics
from footfall.errors import TooManyRequests, send_error
from footfall.kit.body import caller_key

log = logging.getLogger("footfall")


class Limiter(Protocol):
    async def hit(self, key: str, window: int) -> int:
        """Counts one request for key in this window; returns the count so far."""


class InProcessLimiter:
    """Counts in this process only: with N processes, a token gets up to N times the limit."""

    def __init__(self) -> None:
        self.window = -1
        self.counts: dict[str, int] = {}

    async def hit(self, key: str, window: int) -> int:
        if window != self.window:
            self.window, self.counts = window, {}
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]


class RedisLimiter:
    """Counts in Redis, shared by every process and host. If Redis is unreachable the request is served
    (fail open) and the failure logged at most once a minute."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.last_logged = -math.inf

    async def hit(self, key: str, window: int) -> int:
        name = f"footfall:ratelimit:{key}:{window}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                count, _ = await pipe.incr(name).expire(name, 120).execute()
            return int(count)
        except Exception as error:
            if time.monotonic() - self.last_logged >= 60:
                self.last_logged = time.monotonic()
                log.warning("rate limiting: Redis unreachable (%s); serving requests without a limit", error)
            return 0

    async def close(self) -> None:
        await self.redis.aclose()


class RateLimitMiddleware:
    """A fixed one-minute window per bearer token. Every answer carries the IETF draft's RateLimit-*
    headers and Laravel's X-RateLimit-* (the names Leat's answers carry); over the limit, 429 with
    Retry-After (seconds) and X-RateLimit-Reset (the Unix time the window ends), as Laravel sends them."""

    def __init__(self, app: ASGIApp, limit: int, limiter: Limiter) -> None:
        self.app = app
        self.limit = limit
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = caller_key(scope) if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        now = time.time()
        window = int(now // 60)
        window_end = (window + 1) * 60
        reset = max(1, math.ceil(window_end - now))
        count = await self.limiter.hit(key, window)
        limit, remaining = str(self.limit).encode(), str(max(0, self.limit - count)).encode()
        headers = [
            (b"ratelimit-limit", limit),
            (b"ratelimit-remaining", remaining),
            (b"ratelimit-reset", str(reset).encode()),
            (b"x-ratelimit-limit", limit),
            (b"x-ratelimit-remaining", remaining),
        ]
        if count > self.limit:
            refused = [*headers, (b"retry-after", str(reset).encode()),
                       (b"x-ratelimit-reset", str(window_end).encode())]
            if metrics.current is not None:
                metrics.current.rate_limited.inc()
            await send_error(send, TooManyRequests, headers=refused)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
