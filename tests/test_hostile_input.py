"""Hostile input, as an attacker and a careless integrator send it, to every parameter, path segment
and body field of every API route, in every body encoding: the answer is a 2xx or a 4xx in Leat's
shape ({"status_code", "code", "message"[, "errors"]}), never a 5xx, never U+FFFD stored where bytes
that were not UTF-8 were sent, never a 2xx for another account's uuid.

Hypothesis draws combinations (bounded for CI: no example database, a few hundred examples); a sweep
sends each wrong type and edge to each parameter and field, since a bounded run may not draw them all.
A failure that was found is kept as an explicit @example."""

import base64
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_from_bytes
from uuid import UUID

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from footfall.accounts import service as accounts
from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
from tests.routes import ROUTES, fill, route_id

# tests/routes.py lists the routes every authenticated test goes over; the stats route is not there (yet).
FUZZED = [*ROUTES, *[route for route in [("GET", "/visits/stats", None)] if route not in ROUTES]]
ROUTE_BY_ID = {route_id(route): route for route in FUZZED}
# The routes' parameters and fields as the app documents them, read once to build the strategies (an
# app opens its database at first use only: this one never does).
DOCUMENT = create_app(Settings(database_url=f"sqlite:///{tempfile.gettempdir()}/footfall-unopened.db")).openapi()
DESTRUCTIVE = {"DELETE /visits/{visit}", "DELETE /contacts/{contact}", "POST /contacts/{contact}/delete",
               "DELETE /webhook-subscriptions/{subscription}", "DELETE /visit-rules/{rule}"}
BOUNDARY = "hostile-7f3a9c"
FORM = "application/x-www-form-urlencoded"

# Bytes that are not UTF-8: a lone continuation byte, a BOM of UTF-16, a truncated sequence, an
# overlong NUL, an encoded surrogate, beyond U+10FFFF.
NOT_UTF8 = [b"\xff", b"\xff\xfe", b"caf\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\x80ok"]
INT64 = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**40]
NUMBERS = [0, -1, 1.5, -0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf"), *INT64]
WRONG_TYPES = [None, True, False, [], {}, [None], ["x"], {"a": 1}, 0, 1.5]
# Year 1 and 9999, beyond them, and offsets no clock has.
DATES = [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:01+14:00", "0001-01-01 00:00",
    "0001-01-01T23:59:59-23:59", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-00:01", "9999-12-31T12:00:00+12:00",
    "9999-12-31T23:59:59.999999-23:59", "9999-12-31", "10000-01-01T00:00:00Z", "+10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-05-01T23:59:60Z",
    "2024-05-01T24:00:00Z", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+23:59:59.999999",
    "2024-05-01T12:00:00+00:60", "2024-05-01T12:00:00+05:30:15", "2024-05-01T12:00:00-00:00",
    "2024-05-01T12:00:00+1", "2024-05-01T12:00:00+0530", "2024-05-01T12:00:00.123456789Z",
    "2024-05-01T12:00:00Z[Europe/Amsterdam]", "2024-05-01T12:00:00 UTC", "20240501T120000Z", "2024-W18-3",
    "2024-122", "2024-05-01", "12:00", "1714564800", "1e308", "now", "T", " ",
]
UUID_FORMS = [
    "", "x", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d9", "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92a",
    "6e8ec5a8_0eb7_4e5f_ad20_c0d271d97d92", "g" * 32, "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92\x00",
    "../../etc/passwd", "' OR 1=1 --", "%s", "1",
    # Odd forms of our own and another account's uuids: {own:...} and {other:...} are filled at run time.
    "{own:contact}", "{own:contact|upper}", "{own:contact|braces}", "{own:contact|urn}", "{own:contact|hex}",
    "{own:shop|upper}", "{own:visit|hex}", "{own:subscription|braces}", "{own:rule|upper}",
    "{other:contact}", "{other:shop}", "{other:visit}", "{other:subscription}", "{other:delivery}", "{other:rule}",
    "{other:visit|upper}",
]
EMAILS = ["a@b.sea", "A@B.SEA", "@b.sea", "a@", "a@b", "a b@c.sea", "a@@b.sea", "a@b.sea\x00", "\x00@b.sea",
          "x" * 250 + "@b.sea", "a@" + "b" * 300 + ".sea", "a@b.sea\n", " a@b.sea ", "\u202ea@b.sea", "a@b.sea;c@d.sea"]
URLS = ["http://127.0.0.1:9/h", "https://[::1", "http://", "javascript:alert(1)", "file:///etc/passwd", "ftp://x.y/",
        "http://" + "a" * 3000 + ".sea/", "http://\x00/", "http://user:pass@127.0.0.1/", "http://127.0.0.1:99999/",
        "http://[fe80::1%25eth0]/", "http://0x7f.1/", "http://例え.テスト/", "//x.sea/h", "http://x.sea/\ud800"]
# Cursors of the caller's own account ({cursor:xid:seq}, written at run time) at odd positions.
CURSORS = [f"{{cursor:{position}}}" for position in [
    "9223372036854775807:9223372036854775807", "9223372036854775808:0", "-1:0", "0:-9223372036854775809", "0:0:0",
    "1e3:0", "٣:0", " 1:1", "1_0:0", ":"]]
ZONES = ["UTC", "Europe/Amsterdam", "europe/amsterdam", "Etc/GMT+12", "Etc/GMT-14", "Etc/GMT+15", "Pacific/Kiritimati",
         "America/Sao_Paulo", "../../etc/passwd", "/etc/localtime", "posix/Europe/Amsterdam", "Factory", "localtime",
         "+05:30", "", "\x00", "UTC\x00", "a" * 300]
CONTROL = "".join(map(chr, [*range(32), 127, *range(0x80, 0xA0)])) + "\u2028\u2029\u200b\u202e\ufeff"
SURROGATES = ["\ud800", "\udfff", "a\udc80b", "\ud83d", "\ude00\ud83d", "\ud800\udc00"]


TEXT = st.one_of(
    # Any text but U+FFFD, so that U+FFFD in an answer means bytes were replaced.
    st.text(st.characters(codec="utf-8", exclude_characters="\ufffd"), max_size=40),
    st.text(st.sampled_from(CONTROL), min_size=1, max_size=8).map(lambda s: f"a{s}b"),
    st.sampled_from(SURROGATES),
    st.sampled_from(["'; DROP TABLE visits; --", "%s%n%x", "{{7*7}}", "${jndi:ldap://x}", "\\", "\\u0000", "null"]),
    # Overlong, under the body limit (1 MiB) as sent: 255 is the longest any text field takes.
    st.sampled_from([256, 4096, 65_536, 300_000, 1_000_000]).map(lambda n: "x" * n),
    st.sampled_from([128, 40_000, 200_000]).map(lambda n: "é" * n),
)
NOT_TEXT = st.sampled_from(NOT_UTF8)  # raw bytes: sent as they are in every encoding
ANY = st.one_of(TEXT, NOT_TEXT, st.sampled_from(NUMBERS), st.sampled_from(WRONG_TYPES), st.sampled_from(DATES),
                st.sampled_from(UUID_FORMS), st.integers(), st.floats())


def _for_schema(schema: dict[str, Any]) -> st.SearchStrategy:
    """Hostile values for a field, most of them aimed at its type so that some pass validation and
    go deeper; the rest anything at all."""
    kinds = [schema, *schema.get("anyOf", [])]
    formats = {kind.get("format") for kind in kinds}
    types = {kind.get("type") for kind in kinds}
    enums = [value for kind in kinds for value in kind.get("enum", [])]
    aimed = []
    if "date-time" in formats:
        aimed.append(st.sampled_from(DATES))
    if "uuid" in formats:
        aimed.append(st.sampled_from(UUID_FORMS))
    if "integer" in types or "number" in types:
        aimed.append(st.sampled_from([*NUMBERS, *map(str, INT64), "1.5", "1e308", "-1", " 1", "1_0", "0x10", "٣"]))
    if enums:
        aimed.append(st.sampled_from(enums).flatmap(lambda e: st.sampled_from(
            [e, e.upper(), e.lower(), f" {e} ", e + "\x00", e + "\u0130", [e]])))
    if "array" in types:
        aimed.append(st.lists(st.one_of(st.sampled_from(WRONG_TYPES), TEXT), max_size=3))
    if not aimed:
        aimed.append(TEXT)
    return st.one_of(*aimed, *aimed, *aimed, ANY)


def _named(name: str, schema: dict[str, Any]) -> st.SearchStrategy:
    if name.endswith("email"):
        return st.one_of(st.sampled_from(EMAILS), _for_schema(schema))
    if name == "url":
        return st.one_of(st.sampled_from(URLS), _for_schema(schema))
    if name == "timezone":
        return st.one_of(st.sampled_from(ZONES), TEXT)
    if name == "cursor":
        return st.one_of(st.sampled_from(["", "=", "AAAA", "x" * 1000, "Og", "OjA6MA", "bm90OmE6Yg", *CURSORS]),
                         st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode()), TEXT)
    return _for_schema(schema)


# Names no route takes, which must be ignored or refused, never crash.
ODD_NAMES = ["", "__proto__", "constructor", "visits[0][source]", "source[]", "x" * 300, "a\x00b", "ünïcode", "%00"]


@dataclass(frozen=True)
class Hostile:
    """One hostile request to `route`: body fields set (dotted into the batch: visits.0.source) in
    `encoding`, query parameters appended (a name may repeat), path placeholders replaced, an
    Idempotency-Key. Values are JSON values, or bytes sent as they are."""

    route: str
    encoding: str = "json"
    fields: tuple[tuple[str, Any], ...] = ()
    query: tuple[tuple[str, Any], ...] = ()
    path: tuple[tuple[str, str], ...] = ()
    idempotency_key: bytes | None = None

    def __repr__(self) -> str:
        # Valid Python, to paste into an @example, and short: a long run of one character as "x" * n.
        def short(value: Any) -> str:
            if isinstance(value, (str, bytes)) and len(value) > 64 and len(set(value)) == 1:
                return f"{value[:1]!r} * {len(value)}"
            if isinstance(value, tuple):
                return "(" + "".join(short(item) + ", " for item in value) + ")"
            return repr(value)

        given = [f"{name}={short(getattr(self, name))}" for name in self.__dataclass_fields__
                 if name == "route" or getattr(self, name) != self.__dataclass_fields__[name].default]
        return f"Hostile({', '.join(given)})"

    def _repr_pretty_(self, printer, cycle) -> None:  # how Hypothesis shows a failing example
        printer.text(repr(self))


def _operation(route) -> dict[str, Any]:
    method, path, _ = route
    wanted = re.sub(r"\{[^}]*\}", "{}", API_PREFIX + path.split("?")[0])
    for template, operations in DOCUMENT["paths"].items():
        if re.sub(r"\{[^}]*\}", "{}", template) == wanted and method.lower() in operations:
            return operations[method.lower()]
    raise AssertionError(f"{route_id(route)} is not in the OpenAPI document")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body_fields(route) -> dict[str, dict[str, Any]]:
    """Every body field the route documents, by name; a batch's item fields as visits.0.<name>."""
    content = _operation(route).get("requestBody", {}).get("content", {})
    schema = _resolve(content.get("application/json", {}).get("schema", {}))
    fields = {}
    for name, field in schema.get("properties", {}).items():
        fields[name] = field
        for item in [field.get("items", {})] if field.get("type") == "array" else []:
            for item_name, item_field in _resolve(item).get("properties", {}).items():
                fields[f"{name}.0.{item_name}"] = item_field
    return fields


def _query_parameters(route) -> dict[str, dict[str, Any]]:
    parameters = _operation(route).get("parameters", [])
    return {p["name"]: p.get("schema", {}) for p in parameters if p["in"] == "query"}


def hostile_cases(route) -> st.SearchStrategy[Hostile]:
    method, path, _ = route
    fields = _body_fields(route) or {"contact_identifier_value": {}, "type": {}}
    parameters = _query_parameters(route) or {"page": {"type": "integer"}, "limit": {"type": "integer"}}
    placeholders = re.findall(r"\{(\w+)\}", path)

    def pairs(vocabulary: dict[str, dict[str, Any]], max_size: int) -> st.SearchStrategy:
        known = st.sampled_from(sorted(vocabulary))
        name = st.one_of(known, known, st.sampled_from(ODD_NAMES))
        return st.lists(name.flatmap(lambda n: st.tuples(st.just(n), _named(n, vocabulary.get(n, {})))),
                        max_size=max_size).map(tuple)

    return st.builds(
        Hostile,
        route=st.just(route_id(route)),
        encoding=st.sampled_from(["json", "form", "multipart"]) if method != "GET" else st.just("json"),
        fields=pairs(fields, 3) if method != "GET" else st.just(()),
        query=st.one_of(st.just(()), pairs(parameters, 4)),
        path=st.one_of(st.just(()), st.tuples(st.tuples(st.sampled_from(placeholders), st.sampled_from(
            [*UUID_FORMS, "%ff", "%00", "%2F", "..", "%2e%2e", "a/b"])))) if placeholders else st.just(()),
        idempotency_key=st.one_of(st.none(), st.sampled_from(
            [b"", b" ", b"k" * 10_000, b"\x7f", b"key\xff", "é".encode(), b"*"])) if method != "GET" else st.none(),
    )


async def make_owned(client, tenant, headers: dict[str, str] | None = None) -> dict[str, str]:
    """One of everything in the tenant's account: an anonymous contact (so a claim can succeed) with a
    visit, a subscription and its delivery of that visit, a visit rule."""
    headers = headers or tenant.headers
    subscription = (await client.post("/webhook-subscriptions", headers=headers, json={
        "name": "n", "event_type": "visit_created", "url": "http://127.0.0.1:9/h"})).json()["data"]
    contact = (await client.post("/contacts/anonymous", headers=headers)).json()["data"]
    visit = (await client.post("/visits", headers=headers,
                               json={"contact_uuid": contact["uuid"], "shop_uuid": tenant.shop_uuid})).json()["data"]
    delivery = (await client.get(f"/webhook-subscriptions/{subscription['uuid']}/deliveries",
                                 headers=headers)).json()["data"][0]
    rule = (await client.post("/visit-rules", headers=headers,
                              json={"name": "n", "kind": "milestone", "every": 5})).json()["data"]
    return {"visit": visit["uuid"], "shop": tenant.shop_uuid, "contact": contact["uuid"],
            "subscription": subscription["uuid"], "delivery": delivery["id"], "rule": rule["uuid"],
            "account": tenant.account_uuid}


def _symbols(text: str, own: dict[str, str], other: dict[str, str]) -> str:
    """{own:contact|upper} and the like, filled with the ids of this run."""

    def one(match: re.Match) -> str:
        whose, name, form = match.group(1), match.group(2), match.group(3)
        value = (own if whose == "own" else other)[name]
        return {"": value, "upper": value.upper(), "braces": "{" + value + "}", "urn": "urn:uuid:" + value,
                "hex": value.replace("-", "")}[form or ""]

    text = re.sub(r"\{cursor:([^}]*)\}", lambda m: base64.urlsafe_b64encode(
        f"{own['account']}:{m.group(1)}".encode()).decode().rstrip("="), text)
    return re.sub(r"\{(own|other):(\w+)(?:\|(\w+))?\}", one, text)


def _filled(value: Any, own: dict[str, str], other: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _symbols(value, own, other)
    if isinstance(value, list):
        return [_filled(item, own, other) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, own, other) for key, item in value.items()}
    return value


def _set(body: dict[str, Any], dotted: str, value: Any) -> None:
    *walk, last = dotted.split(".") if dotted.startswith("visits.0.") else [dotted]
    target: Any = body
    for step in walk:
        # The batch's list, or its item, may itself have been replaced by a hostile value.
        if isinstance(target, list):
            target = target[int(step)] if len(target) > int(step) else None
        elif isinstance(target, dict):
            target = target.get(step)
        else:
            return
    if isinstance(target, dict):
        target[last] = value


def _json_bytes(body: Any) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity as Python writes them, lone surrogates
    as \\u escapes, and bytes values as raw bytes inside their quotes."""
    raws: list[bytes] = []

    def mark(value: Any) -> Any:
        if isinstance(value, bytes):
            raws.append(value)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(value, list):
            return [mark(item) for item in value]
        if isinstance(value, dict):
            return {key: mark(item) for key, item in value.items()}
        return value

    text = json.dumps(mark(body), ensure_ascii=False)
    text = re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)
    data = text.encode()
    for index, raw in enumerate(raws):
        data = data.replace(f"@@raw{index}@@".encode(), raw)
    return data


def _form_value(value: Any) -> bytes:
    # A form carries text: a careless integrator's other values arrive as their JSON text; a lone
    # surrogate as the bytes a lax encoder writes for it, which are not UTF-8.
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else _json_bytes(value)


def _form_bytes(body: dict[str, Any], encoding: str) -> tuple[bytes, str]:
    items = [(_form_value(name), _form_value(value)) for name, value in body.items()]
    if encoding == "form":
        return b"&".join(quote_from_bytes(n).encode() + b"=" + quote_from_bytes(v).encode() for n, v in items), FORM
    parts = [b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="' + n.replace(b'"', b"%22")
             + b'"\r\n\r\n' + v + b"\r\n" for n, v in items]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def _query_text(value: Any) -> str:
    # 3000 bytes at most: a URL (and a request line) has a limit well before the body's.
    return quote_from_bytes(_form_value(value)[:3000], safe="")


async def send(client, headers, route, case: Hostile, own: dict[str, str], other: dict[str, str]):
    method, path, body = route
    ids = {**own, **{name: _symbols(value, own, other) for name, value in case.path}}
    target = fill(path, {name: quote(value, safe="%/") for name, value in ids.items()})
    query = "&".join(f"{quote(_symbols(name, own, other), safe='')}={_query_text(_filled(value, own, other))}"
                     for name, value in case.query)
    if query:
        target += ("&" if "?" in target else "?") + query
    headers = dict(headers)
    if case.idempotency_key is not None:
        headers["Idempotency-Key"] = case.idempotency_key
    content = None
    if method != "GET":
        document = json.loads(fill(json.dumps(body), own)) if body else {}
        for name, value in case.fields:
            _set(document, name, _filled(value, own, other))
        if case.encoding == "json":
            content, headers["Content-Type"] = _json_bytes(document), "application/json"
        else:
            if "visits" in document and not isinstance(document["visits"], (str, bytes)):
                # A form is flat: the batch as a careless client sends it.
                document["visits"] = _json_bytes(document["visits"])
            content, headers["Content-Type"] = _form_bytes(document, case.encoding)
    return await client.request(method, target, content=content, headers=headers), target, content


def assert_answered(response, case: Hostile, target: str, content: bytes | None) -> None:
    """2xx or 4xx; a 4xx in Leat's shape; an answer that is UTF-8, and a 2xx without U+FFFD (none is
    sent); no 2xx for another account's uuid in the path."""
    request = f"{case}\n{target}\n{(content or b'')[:500]!r}"
    assert response.status_code < 500, f"{response.status_code} {response.text[:500]}\n{request}"
    text = response.content.decode("utf-8")
    if response.status_code < 300:  # a refusal names an undecodable field with U+FFFD in its place
        assert "\ufffd" not in text, f"U+FFFD in the answer: {text[:500]}\n{request}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), request
        answer = response.json()
        assert set(answer) - {"errors"} == {"status_code", "code", "message"}, request
        assert answer["status_code"] == response.status_code and type(answer["code"]) is int, request
        assert isinstance(answer["message"], str) and answer["message"], request
        errors = answer.get("errors", {"x": ["x"]})
        assert isinstance(errors, dict) and errors, request
        assert all(messages and all(isinstance(m, str) for m in messages) for messages in errors.values()), request
    elif any("{other:" in value for _, value in case.path):
        raise AssertionError(f"{response.status_code} for another account's uuid: {request}")


@pytest.fixture
async def ids(client, tenant, other_tenant):
    yield await make_owned(client, tenant), await make_owned(client, other_tenant)
    # The subscriptions go, with their deliveries: left pending (to hosts that never answer), they
    # would hold up the webhook workers of later tests, which deliver every account's.
    for owner in (tenant, other_tenant):
        listed = await client.get("/webhook-subscriptions", params={"limit": 100}, headers=owner.headers)
        for subscription in listed.json().get("data", []):
            await client.delete(f"/webhook-subscriptions/{subscription['uuid']}", headers=owner.headers)


async def fresh_headers(app, tenant) -> dict[str, str]:
    """The tenant's headers with a token of its own: each example starts with a full rate limit."""
    async with app.state.database.transaction(write=True) as tx:
        issued = await accounts.issue_token(tx, await accounts.get_account(tx, UUID(tenant.account_uuid)))
    return {**tenant.headers, "Authorization": f"Bearer {issued.secret}"}


def test_every_api_operation_is_fuzzed(app):
    fuzzed = {(m, re.sub(r"\{[^}]*\}", "{}", API_PREFIX + p.split("?")[0])) for m, p, _ in FUZZED}
    documented = {(m.upper(), re.sub(r"\{[^}]*\}", "{}", p)) for p, ops in app.openapi()["paths"].items()
                  for m in ops if p.startswith(API_PREFIX)}
    assert documented == fuzzed


@settings(max_examples=int(os.environ.get("FOOTFALL_SOAK_EXAMPLES", "300")), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(FUZZED).flatmap(hostile_cases))
# Found before http/body.py refused bytes that are not UTF-8: stored as U+FFFD (urlencoded, the query
# string) or as Latin-1 (multipart).
@example(case=Hostile(route="POST /visits", encoding="form", fields=(("source", b"\xff\xfe"),)))
@example(case=Hostile(route="PUT /visits/{visit}", encoding="multipart", fields=(("external_id", b"caf\xc3"),)))
@example(case=Hostile(route="GET /contacts/find-or-create?email=a@b.sea", query=(("email", b"a\xff@b.sea"),)))
async def test_hostile_requests_answer_2xx_or_4xx_in_leat_shape(app, client, tenant, ids, case):
    route = ROUTE_BY_ID[case.route]
    own, other = ids
    headers = await fresh_headers(app, tenant)
    if case.route in DESTRUCTIVE:
        own = await make_owned(client, tenant, headers)
    response, target, content = await send(client, headers, route, case, own, other)
    assert_answered(response, case, target, content)


# Every parameter and field, each with every wrong JSON type and the edges: what Hypothesis may not
# draw for each in a bounded run.
SWEEP_VALUES = [*WRONG_TYPES, 2**63 - 1, 2**63, -(2**63) - 1, 1e308, float("nan"), "x" * 256, "a\x00b", "\ud800",
                b"\xff", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "{other:contact}", "not-a-uuid"]
SWEEP_QUERY = [*SWEEP_VALUES, "", "٣", "1e3", "-0", "0001-01-01T00:00:01Z", "9999-12-31T23:59:59Z", "%ff", b"\xc0\x80"]


@pytest.mark.parametrize("route", FUZZED, ids=route_id)
async def test_every_parameter_and_field_takes_each_wrong_type_and_edge(app, client, tenant, ids, route):
    own, other = ids
    method, path, _ = route
    cases = [Hostile(route_id(route), query=((name, value),))
             for name in _query_parameters(route) for value in SWEEP_QUERY]
    # A repeated parameter: the hostile value first and last.
    cases += [Hostile(route_id(route), query=((name, value), (name, "1")))
              for name in _query_parameters(route) for value in ("x", b"\xff")]
    cases += [Hostile(route_id(route), query=((name, "1"), (name, value)))
              for name in _query_parameters(route) for value in ("x", b"\xff")]
    for name in re.findall(r"\{(\w+)\}", path):
        cases += [Hostile(route_id(route), path=((name, value),)) for value in [
            "%ff", "%ED%A0%80", "%00", "%2F", "..", "not-a-uuid", f"{{other:{name}}}", f"{{own:{name}|upper}}"]]
    if method != "GET":
        for name in _body_fields(route) or {"anything": {}}:
            cases += [Hostile(route_id(route), fields=((name, value),)) for value in SWEEP_VALUES]
            cases += [Hostile(route_id(route), encoding=encoding, fields=((name, value),))
                      for encoding in ("form", "multipart") for value in (None, [], "x" * 256, b"\xff")]
    for index, case in enumerate(cases):
        if index % 100 == 0:  # a token's rate limit is 600 requests a minute
            headers = await fresh_headers(app, tenant)
        mine = await make_owned(client, tenant, headers) if case.route in DESTRUCTIVE else own
        response, target, content = await send(client, headers, route, case, mine, other)
        assert_answered(response, case, target, content)


async def _visits(client, tenant) -> list[dict]:
    return (await client.get("/visits?limit=100", headers=tenant.headers)).json()["data"]


def _multipart(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n'
                    + value + b"\r\n" for name, value in fields) + f"--{BOUNDARY}--\r\n".encode()


def _encoded(encoding: str, fields: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """A body of fields given as bytes, in one encoding: urlencoded with each byte %-escaped, or raw;
    multipart; JSON with the bytes as they are inside its strings."""
    if encoding == "urlencoded":
        return b"&".join(quote_from_bytes(n).encode() + b"=" + quote_from_bytes(v).encode() for n, v in fields), FORM
    if encoding == "urlencoded raw":
        return b"&".join(n + b"=" + v for n, v in fields), FORM
    if encoding == "multipart":
        return _multipart(fields), f"multipart/form-data; boundary={BOUNDARY}"
    return b"{" + b",".join(b'"' + n + b'":"' + v + b'"' for n, v in fields) + b"}", "application/json"


ENCODINGS = ["urlencoded", "urlencoded raw", "multipart", "json"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("bad", [b"\xff\xfe", b"caf\xc3", b"\xed\xa0\x80", b"\xc0\x80"], ids=repr)
async def test_bytes_that_are_not_utf8_are_refused_on_their_field_in_every_body_encoding(client, tenant, encoding, bad):
    visit = {b"contact_uuid": tenant.contact_uuid.encode(), b"shop_uuid": tenant.shop_uuid.encode()}
    body, content_type = _encoded(encoding, [*visit.items(), (b"source", b"web " + bad)])
    headers = {**tenant.headers, "Content-Type": content_type}
    response = await client.post("/visits", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json() == {"status_code": 422, "code": 1003, "message": "Invalid input.",
                               "errors": {"source": ["Must be text (UTF-8)."]}}
    assert await _visits(client, tenant) == []

    stored = (await client.post("/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid,
                                                 "external_id": "kept"}, headers=tenant.headers)).json()["data"]
    body, content_type = _encoded(encoding, [(b"external_id", bad), (b"source", b"fine")])
    response = await client.put(f"/visits/{stored['uuid']}", content=body,
                                headers={**headers, "Content-Type": content_type})
    assert response.status_code == 422 and response.json()["errors"] == {"external_id": ["Must be text (UTF-8)."]}
    body, content_type = _encoded(encoding, [(b"email", b"a" + bad + b"@bikinibottom.sea")])
    response = await client.post("/contacts", content=body, headers={**headers, "Content-Type": content_type})
    assert response.status_code == 422 and response.json()["errors"] == {"email": ["Must be text (UTF-8)."]}
    assert [visit["source"] for visit in await _visits(client, tenant)] == [None]
    contacts = (await client.get("/contacts", headers=tenant.headers)).json()["data"]
    assert [contact["email"] for contact in contacts] == [tenant.contact_email]


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_field_name_that_is_not_utf8_is_refused(client, tenant, encoding):
    body, content_type = _encoded(encoding, [(b"contact_uuid", tenant.contact_uuid.encode()),
                                             (b"shop_uuid", tenant.shop_uuid.encode()), (b"sou\xffrce", b"web")])
    response = await client.post("/visits", content=body, headers={**tenant.headers, "Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {"sou\ufffdrce": ["Must be text (UTF-8)."]}
    assert await _visits(client, tenant) == []


async def test_json_that_is_not_utf8_is_refused_on_the_batch_item_field_or_the_body(client, tenant):
    headers = {**tenant.headers, "Content-Type": "application/json"}
    body = (b'{"visits":[{"contact_uuid":"%s","shop_uuid":"%s","source":"\xff"}]}'
            % (tenant.contact_uuid.encode(), tenant.shop_uuid.encode()))
    response = await client.post("/visits/batch", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {"visits.0.source": ["Must be text (UTF-8)."]}
    response = await client.post("/visits", content=b'{"source": "\xff', headers=headers)  # not JSON either
    assert response.status_code == 422
    assert response.json()["errors"] == {"body": ["The body is not UTF-8: send JSON as UTF-8 text."]}
    assert await _visits(client, tenant) == []


@pytest.mark.parametrize(("path", "field"), [
    ("/contacts/find-or-create?email=a%FF@bikinibottom.sea", "email"),
    ("/contacts/find-or-create/async?email=a%C3@bikinibottom.sea", "email"),
    ("/contacts/find-one-by?email=%ED%A0%80@bikinibottom.sea", "email"),
    ("/visits?source=%FF", "source"),
    ("/visits?source=web&source=%C0%80", "source"),
    ("/visits/stats?timezone=Europe/Amsterdam%FF", "timezone"),
    ("/webhook-subscriptions?status=ACTIVE&%FF=1", "\ufffd"),
])
async def test_query_parameters_that_are_not_utf8_are_refused_on_their_name(client, tenant, path, field):
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json() == {"status_code": 422, "code": 1003, "message": "Invalid input.",
                               "errors": {field: ["Must be text (UTF-8)."]}}
    contacts = (await client.get("/contacts", headers=tenant.headers)).json()["data"]
    assert [contact["email"] for contact in contacts] == [tenant.contact_email]


# Whole bodies no client should send: not an object, too deep, numbers past what a parser reads, NaN,
# repeated keys, a BOM, UTF-16, cut short; forms and multipart bodies that cannot be read.
JSON = "application/json"
MULTIPART_B = "multipart/form-data; boundary=B"
PART = b'--B\r\nContent-Disposition: form-data; name="source"\r\n%s\r\n%s\r\n--B--\r\n'
WHOLE_BODIES = [
    (b"", JSON), (b"null", JSON), (b"[]", JSON), (b'"x"', JSON), (b'{"source":"x"', JSON),
    (b"{" * 100_000, JSON), (b"[" * 100_000 + b"]" * 100_000, JSON), (b'{"source":' + b"1" * 5000 + b"}", JSON),
    (b'{"source":1e999}', JSON), (b'{"source":NaN,"external_id":-Infinity}', JSON),
    (b'{"source":"a","source":"b"}', JSON), (b'\xef\xbb\xbf{"source":"x"}', JSON),
    ('{"source":"x"}'.encode("utf-16"), JSON), ('{"source":"x"}'.encode("utf-16-le"), JSON),
    (b'{"source":"x"}', "application/json; charset=utf-16"), (b'{"source":"x"}', "application/merge-patch+json"),
    (b'{"source":"x"}', ""), (b"\xff\xfe", ""), (b'{"source":"x"}', "text/plain"), (b"x", "application/octet-stream"),
    (b"a=1&a=2&b", FORM), (b"&&&==&=", FORM), (b"a=%&b=%zz%f", FORM), (b"a=1;b=2", FORM), (b'{"source":"x"}', FORM),
    (b"source=" + b"%" * 500_000, FORM), (b"x=" + b"%ff" * 300_000, FORM), (b"a=1&" * 250_000, FORM),
    (b"garbage", MULTIPART_B), (b"--B\r\n", MULTIPART_B), (b"--B--\r\n", MULTIPART_B),
    (b"--B\r\nno colon\r\n\r\nx\r\n--B--\r\n", MULTIPART_B),
    (b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n", MULTIPART_B),
    (b"--B\r\nContent-Disposition: form-data; name*=utf-8''source\r\n\r\nx\r\n--B--\r\n", MULTIPART_B),
    (b'--B\r\nContent-Disposition: form-data; name="' + b"n" * 100_000 + b'"\r\n\r\nx\r\n--B--\r\n', MULTIPART_B),
    (b'--B\r\nContent-Disposition: form-data; name="source"; filename="\xff"\r\n\r\nx\r\n--B--\r\n', MULTIPART_B),
    (b"--B\r\n" + b"X-Header: v\r\n" * 200 + b'Content-Disposition: form-data; name="x"\r\n\r\nx\r\n--B--\r\n',
     MULTIPART_B),
    (PART % (b"Content-Transfer-Encoding: base64\r\n", b"!!!"), MULTIPART_B),
    (PART % (b"Content-Transfer-Encoding: base64\r\n", b"/w=="), MULTIPART_B),
    (PART % (b"Content-Transfer-Encoding: quoted-printable\r\n", b"=FF=ZZ"), MULTIPART_B),
    *[(PART % (b"", b"x\xe9"), f"{MULTIPART_B}; charset={charset}") for charset in ("utf-16", "zlib", "idna", "nope")],
    (PART % (b"", b"x"), "multipart/form-data; boundary=" + "B" * 200),
    (PART % (b"", b"x"), f"{MULTIPART_B}; boundary=C"),
]
WRITES = [route for route in FUZZED if route[0] != "GET"]


async def _send_whole(client, headers, own, route, content: bytes, content_type: str | bytes) -> None:
    # The body middleware reads these before routing: a deleted visit or contact changes nothing here.
    method, path, _ = route
    target = fill(path, own)
    response = await client.request(method, target, content=content,
                                     headers={**headers, **({"Content-Type": content_type} if content_type else {})})
    assert_answered(response, Hostile(route_id(route)), target, content)


@pytest.mark.parametrize("route", WRITES, ids=route_id)
async def test_whole_bodies_that_cannot_be_read_are_4xx_in_leat_shape(app, client, tenant, ids, route):
    headers = await fresh_headers(app, tenant)
    for content, content_type in WHOLE_BODIES:
        await _send_whole(client, headers, ids[0], route, content, content_type)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(WRITES), content=st.binary(max_size=300), content_type=st.one_of(
    st.sampled_from([JSON, FORM, MULTIPART_B, ""]),
    # Content-Type parameters as no client writes them (a server would refuse CR, LF and NUL).
    st.binary(max_size=60).filter(lambda b: not set(b) & set(b"\r\n\x00")).map(lambda b: b"multipart/form-data; " + b)))
async def test_random_bytes_are_2xx_or_4xx_in_leat_shape(app, client, tenant, ids, route, content, content_type):
    await _send_whole(client, await fresh_headers(app, tenant), ids[0], route, content, content_type)
