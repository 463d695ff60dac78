"""A rate limit per token, before routing (plain ASGI middleware): a fixed one-minute window, counted
in the process or in Redis. A token has one budget whichever way it comes, as the API's bearer token
or in the console's session cookie (http.body.caller_key); the console's sign-in page counts per
client address."""

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall import metrics
from footfall.errors import TooManyRequests, send_error
from footfall.http.body import caller_key, header

log = logging.getLogger("footfall")
# Where the app serves files (the console's script and style, the API docs' assets): public, the same
# for everyone, and reading no token.
STATIC = "/static/"


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
                # redis types a pipeline's commands as the client's (an Awaitable); they return the pipeline.
                count, _ = await pipe.incr(name).expire(name, 120).execute()  # type: ignore[attr-defined]
            return int(count)
        except Exception as error:
            if time.monotonic() - self.last_logged >= 60:
                self.last_logged = time.monotonic()
                log.warning("rate limiting: Redis unreachable (%s); serving requests without a limit", error)
            return 0

    async def close(self) -> None:
        await self.redis.aclose()


# Answers a refused request that came without a bearer token (the console's pages): (scope, receive,
# send, seconds until the window ends, the rate-limit headers).
RefusedPage = Callable[[Scope, Receive, Send, int, list[tuple[bytes, bytes]]], Awaitable[None]]


def limit_key(scope: Scope, sign_in: str) -> str | None:
    """What a request counts against: its token's budget; the sign-in page's, per client address, as
    it has no session yet (and a made-up cookie must not buy a fresh budget for guessing tokens); none
    for static files (a console page loads three, which must not spend its token's budget)."""
    path = scope["path"].rstrip("/") or "/"  # as TrailingSlashMiddleware, inside this one, routes it
    if path.startswith(STATIC):
        return None
    if path == sign_in:
        client = scope.get("client")
        return f"client:{client[0] if client else ''}"
    return caller_key(scope)


def _bearer(scope: Scope) -> bool:
    authorization = header(scope, b"authorization")
    return authorization is not None and authorization[:7].lower() == b"bearer "


class RateLimitMiddleware:
    """A fixed one-minute window per token (limit_key). Every answer carries the IETF draft's RateLimit-*
    headers and Laravel's X-RateLimit-* (the names Leat's answers carry); over the limit, 429 with
    Retry-After (seconds) and X-RateLimit-Reset (the Unix time the window ends), as Laravel sends
    them: in Leat's JSON to a bearer token, as a console page to a browser."""

    def __init__(self, app: ASGIApp, limit: int, limiter: Limiter, sign_in: str, refused_page: RefusedPage) -> None:
        self.app = app
        self.sign_in = sign_in  # the console's sign-in path, counted per client address
        self.refused_page = refused_page
        self.limit = limit
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = limit_key(scope, self.sign_in) if scope["type"] == "http" else None
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
            if _bearer(scope):
                await send_error(send, TooManyRequests, headers=refused)
            else:
                await self.refused_page(scope, receive, send, reset, refused)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
