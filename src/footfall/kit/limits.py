"""Limits every request meets before routing: body size and type, and a rate limit per token.

Both are plain ASGI middleware, so a refused request costs no routing, parsing or database work,
and their answers are in Leat's error shape like every other.
"""

import hashlib
import json
import logging
import math
import time
from typing import Protocol
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall.errors import BodyTooLarge, FootfallError, TooManyRequests, UnsupportedMediaType

log = logging.getLogger("footfall")

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPE = "application/x-www-form-urlencoded"
ACCEPTED_TYPES = ("application/json", FORM_TYPE)


async def send_error(
    send: Send, error: type[FootfallError], message: str | None = None, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    status = error.status_code
    body = json.dumps({"status_code": status, "code": error.code, "message": message or error.message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class RequestBodyMiddleware:
    """Reads a request body once, for three things: 413 for one over max_bytes (read no further than
    that), 415 for one neither JSON nor form, and a form turned into the equivalent JSON object, as
    Leat's PHP SDK sends form parameters: so every route validates one model either way."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_error(send, BodyTooLarge, f"The body is larger than {self.max_bytes} bytes.")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, BodyTooLarge, f"The body is larger than {self.max_bytes} bytes.")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        content_type = (_header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower().decode("latin-1")
        if size and content_type and not (content_type in ACCEPTED_TYPES or content_type.endswith("+json")):
            await send_error(send, UnsupportedMediaType)
            return
        body = b"".join(chunks)
        if content_type == FORM_TYPE:
            # Undecodable bytes become U+FFFD, so a malformed form is a validation error, never a crash.
            body = json.dumps(dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))).encode()
            headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            scope = {**scope, "headers": headers}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


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
    """A fixed one-minute window per bearer token: RateLimit-* headers on every answer, 429 over the limit."""

    def __init__(self, app: ASGIApp, limit: int, limiter: Limiter) -> None:
        self.app = app
        self.limit = limit
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = _header(scope, b"authorization") if scope["type"] == "http" else None
        if not authorization or not authorization[:7].lower() == b"bearer ":
            await self.app(scope, receive, send)
            return
        now = time.time()
        window = int(now // 60)
        reset = max(1, math.ceil((window + 1) * 60 - now))
        key = hashlib.sha256(authorization[7:].strip()).hexdigest()[:32]
        count = await self.limiter.hit(key, window)
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(max(0, self.limit - count)).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]
        if count > self.limit:
            await send_error(send, TooManyRequests, headers=[*headers, (b"retry-after", str(reset).encode())])
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
