"""Request bodies, before routing: 413 for one too large, 415 for one neither JSON nor a form, and a
form (urlencoded or multipart) turned into the equivalent JSON object, so every route validates one
model whichever way it was sent. Plain ASGI middleware: a refused request costs no routing, parsing
or database work."""

import hashlib
import json
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall.errors import BodyTooLarge, InvalidInput, UnsupportedMediaType, send_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
ACCEPTED_TYPES = ("application/json", FORM_TYPE, MULTIPART_TYPE)


class BadForm(Exception):
    """A form body that cannot become fields: {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _urlencoded_fields(body: bytes) -> dict[str, str]:
    # Undecodable bytes become U+FFFD, so a malformed form is a validation error, never a crash.
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def _multipart_fields(scope: Scope, body: bytes) -> dict[str, str]:
    """A multipart body's text fields (the last of a repeated name wins, as in a urlencoded form);
    a file part is refused on its field, since no route takes a file."""

    async def stream():
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except MultiPartException as error:
        raise BadForm({"body": [f"Not a readable multipart/form-data body: {error.message}"]}) from None
    try:
        fields: dict[str, str] = {}
        refused: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                refused[name] = ["Must be a text field, not a file."]
            else:
                fields[name] = value
    finally:
        await form.close()
    if refused:
        raise BadForm(refused)
    return fields


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def caller_key(scope: Scope) -> str | None:
    """The request's bearer token, hashed: the key of what is kept per caller (its rate limit, the
    position of its last write for the replicas), never the token itself. None without one."""
    authorization = header(scope, b"authorization")
    if not authorization or authorization[:7].lower() != b"bearer ":
        return None
    return hashlib.sha256(authorization[7:].strip()).hexdigest()[:32]


class RequestBodyMiddleware:
    """Reads a request body once, for three things: 413 for one over max_bytes (read no further than
    that), 415 for one neither JSON nor a form, and a form turned into the equivalent JSON object:
    Leat's PHP SDK sends urlencoded forms, Leat's own request collection multipart ones."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
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
        content_type = (header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower().decode("latin-1")
        if size and content_type and not (content_type in ACCEPTED_TYPES or content_type.endswith("+json")):
            await send_error(send, UnsupportedMediaType)
            return
        body = b"".join(chunks)
        if content_type == FORM_TYPE and body.strip()[:1] in (b"{", b"["):
            # curl -d '{...}' without -H 'Content-Type: application/json' sends JSON as a form.
            await send_error(send, InvalidInput, errors={"body": [
                "This body is JSON sent as a form: send it with Content-Type: application/json."]})
            return
        if content_type in (FORM_TYPE, MULTIPART_TYPE):
            try:
                fields = _urlencoded_fields(body) if content_type == FORM_TYPE else await _multipart_fields(scope, body)
            except BadForm as error:
                await send_error(send, InvalidInput, errors=error.errors)
                return
            body = json.dumps(fields).encode()
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


