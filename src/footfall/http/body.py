"""What arrives with a request, before routing: 413 for a body too large, 415 for one neither JSON
nor a form, a form (urlencoded or multipart) turned into the equivalent JSON object, so every route
validates one model whichever way it was sent, and 422 (1003) for bytes that are not UTF-8 in the
body or the query string, on the field they were sent in. Plain ASGI middleware: a refused request
costs no routing, parsing or database work."""

import hashlib
import json
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File, FormParser, parse_options_header
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall.errors import MESSAGES, BodyTooLarge, InvalidInput, UnsupportedMediaType, send_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
ACCEPTED_TYPES = ("application/json", FORM_TYPE, MULTIPART_TYPE)
NOT_UTF8 = MESSAGES["string_unicode"]


class BadForm(Exception):
    """A body or query string that cannot become fields: {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _is_utf8(text: str) -> bool:
    """Whether text was UTF-8 whole: each byte that was not is a lone surrogate here (decoded with
    surrogateescape), which does not encode back."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    # A field's name in an answer, which is UTF-8 itself: each undecodable byte as U+FFFD.
    return name if _is_utf8(name) else "".join(c if _is_utf8(c) else "\ufffd" for c in name)


def _utf8_pairs(text: str) -> list[tuple[str, str]]:
    """A urlencoded text's (name, value) pairs, each undecodable byte (raw or %-escaped) kept as a lone
    surrogate; BadForm on the fields that hold one, never U+FFFD stored in their place."""
    pairs = parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
    refused = {_shown(name): [NOT_UTF8] for name, value in pairs if not (_is_utf8(name) and _is_utf8(value))}
    if refused:
        raise BadForm(refused)
    return pairs


def _urlencoded_fields(body: bytes) -> dict[str, str]:
    return dict(_utf8_pairs(body.decode("utf-8", "surrogateescape")))


def _multipart_fields(content_type: bytes, body: bytes) -> dict[str, str]:
    """A multipart body's text fields (the last of a repeated name wins, as in a urlencoded form),
    read by python-multipart as bytes and decoded as UTF-8, whatever charset the Content-Type names
    (PHP, and so Leat, reads none): a part that is not UTF-8 is refused on its field, and so is a
    file part, since no route takes a file."""
    parts: list[tuple[bytes, bytes | None]] = []  # (name, value), None for a file

    def on_field(field: Field) -> None:
        parts.append((field.field_name or b"", field.value or b""))

    def on_file(file: File) -> None:
        parts.append((file.field_name or b"", None))
        file.close()

    try:
        boundary = parse_options_header(content_type)[1].get(b"boundary")
        if not boundary:
            raise FormParserError("its Content-Type names no boundary")
        parser = FormParser(MULTIPART_TYPE, on_field, on_file, boundary=boundary)
        parser.write(body)
        parser.finalize()
    except FormParserError as error:
        raise BadForm({"body": [f"Not a readable multipart/form-data body: {_shown(str(error))}."]}) from None
    fields: dict[str, str] = {}
    refused: dict[str, list[str]] = {}
    for raw_name, raw_value in parts:
        name = raw_name.decode("utf-8", "surrogateescape")
        value = raw_value.decode("utf-8", "surrogateescape") if raw_value is not None else None
        if value is None:
            refused[_shown(name)] = ["Must be a text field, not a file."]
        elif not (_is_utf8(name) and _is_utf8(value)):
            refused[_shown(name)] = [NOT_UTF8]
        else:
            fields[name] = value
    if refused:
        raise BadForm(refused)
    return fields


def _undecodable_json(body: bytes) -> dict[str, list[str]] | None:
    """None for a JSON body that is UTF-8 (RFC 8259 allows nothing else); otherwise where its other
    bytes are: the fields (dotted, as validation names them: visits.0.source) whose names or values
    hold them, or the body when it cannot be read far enough to tell."""
    if body.isascii():
        return None
    try:
        body.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    unreadable = {"body": ["The body is not UTF-8: send JSON as UTF-8 text."]}
    try:
        document = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return unreadable
    refused: dict[str, list[str]] = {}
    pending: list[tuple[str, object]] = [("", document)]
    while pending:  # not recursive: the document may be as deep as the parser allows
        path, value = pending.pop()
        if isinstance(value, str) and not _is_utf8(value):
            refused[path or "body"] = [NOT_UTF8]
        elif isinstance(value, (dict, list)):
            for key, item in value.items() if isinstance(value, dict) else enumerate(value):
                field = f"{path}.{_shown(str(key))}" if path else _shown(str(key))
                if not _is_utf8(str(key)):
                    refused[field] = [NOT_UTF8]
                pending.append((field, item))
    return refused or unreadable


def _check_query(query: bytes) -> None:
    """BadForm on a query parameter that is not UTF-8 (%-escaped: uvicorn refuses raw bytes above
    ASCII in a request line with its own 400), which Starlette would read as U+FFFD."""
    if b"%" in query or not query.isascii():
        _utf8_pairs(query.decode("utf-8", "surrogateescape"))


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


SESSION_COOKIE = "footfall_session"  # the console's session: the API token itself (console/session.py)


def caller_key(scope: Scope) -> str | None:
    """The request's token, hashed: the key of what is kept per caller (its rate limit, the position
    of its last write for the replicas), never the token itself. The token is the bearer token or,
    without one, the console's session cookie: one token has one key whichever way it comes. None
    without either."""
    authorization = header(scope, b"authorization")
    if authorization and authorization[:7].lower() == b"bearer ":
        return hashlib.sha256(authorization[7:].strip()).hexdigest()[:32]
    cookies = header(scope, b"cookie")
    # Read as the console reads it (request.cookies): the same parser, the same header.
    token = cookie_parser(cookies.decode("latin-1")).get(SESSION_COOKIE) if cookies else None
    if not token:
        return None
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class RequestBodyMiddleware:
    """Reads a request body once: 413 for one over max_bytes (read no further than that), 415 for one
    neither JSON nor a form, and a form turned into the equivalent JSON object: Leat's PHP SDK sends
    urlencoded forms, Leat's own request collection multipart ones. Bytes that are not UTF-8, in a
    body of any type or in the query string, are refused on their field (1003) before anything reads
    them as U+FFFD or Latin-1."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_query(scope.get("query_string", b""))
        except BadForm as error:
            await send_error(send, InvalidInput, errors=error.errors)
            return
        if scope["method"] not in BODY_METHODS:
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
        raw_type = header(scope, b"content-type") or b""
        content_type = raw_type.split(b";", 1)[0].strip().lower().decode("latin-1")
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
                fields = _urlencoded_fields(body) if content_type == FORM_TYPE else _multipart_fields(raw_type, body)
            except BadForm as error:
                await send_error(send, InvalidInput, errors=error.errors)
                return
            body = json.dumps(fields).encode()
            headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            scope = {**scope, "headers": headers}
        elif body and (undecodable := _undecodable_json(body)):
            await send_error(send, InvalidInput, errors=undecodable)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
