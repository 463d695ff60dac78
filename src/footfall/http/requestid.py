"""X-Request-Id: each request's id, taken from the request when it is a sane value and made here
otherwise, answered on the response and carried onto the webhook deliveries the request causes."""

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall.kit.requestid import current
from footfall.kit.uuids import new_uuid

HEADER = b"x-request-id"
# What a proxy or client sends as an id (a uuid, a trace id): never a value that could break a log line.
SANE = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        value = given.decode("ascii") if given is not None and SANE.match(given) else new_uuid().hex
        token = current.set(value)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, value.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)
