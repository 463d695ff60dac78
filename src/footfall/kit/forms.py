"""Leat's PHP SDK sends request bodies as application/x-www-form-urlencoded. This ASGI middleware
turns such a body into the equivalent JSON object before FastAPI reads it, so every route
validates one model whichever way the client encodes it."""

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM_TYPE = b"application/x-www-form-urlencoded"


def _is_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == FORM_TYPE
    return False


class FormToJsonMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_form(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        # Undecodable bytes become U+FFFD, so a malformed form is a validation error, never a crash.
        fields = dict(parse_qsl(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True))
        body = json.dumps(fields).encode()
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def receive_json() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, receive_json, send)
