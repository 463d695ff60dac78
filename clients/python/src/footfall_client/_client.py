"""Client and AsyncClient: one set of resources, run by a sync or an async transport."""

from __future__ import annotations

import asyncio
import builtins
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from footfall_client.errors import error_from_response
from footfall_client.models import (
    ChangesPage,
    Contact,
    Page,
    RuleProgress,
    Shop,
    Stats,
    Visit,
    VisitRule,
    WebhookDelivery,
    WebhookSubscription,
    format_datetime,
)

PREFIX = "/api/v3/oauth/clients"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IN_PROGRESS = 91202  # Footfall: an Idempotency-Key whose first request still runs


@dataclass
class _Operation:
    method: str
    path: str
    parse: Callable[[dict], Any]
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    idempotency_key: str | None = None
    raw: bool = False  # parse gets the body's text (an export), not its JSON


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class _Policy:
    """When to try again, and how long to wait: exponential backoff with full jitter, or Retry-After."""

    max_retries: int
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep_scale: float = 1.0  # tests shorten the waits

    def retryable(self, operation: _Operation, response: httpx.Response | None, error: Any) -> bool:
        if operation.method in ("POST", "PUT", "DELETE") and operation.idempotency_key is None:
            return False  # a write is retried only when its Idempotency-Key makes the retry safe
        if error is not None:
            return True
        assert response is not None
        if response.status_code in RETRY_STATUSES:
            return True
        return response.status_code == 409 and _code(response) == IN_PROGRESS

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        wait = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        if response is not None and (after := _retry_after(response)) is not None:
            wait = max(wait, min(after, self.max_delay))
        return wait * self.sleep_scale


def _code(response: httpx.Response) -> int | None:
    try:
        return response.json().get("code")
    except (ValueError, AttributeError):
        return None


def _prepare(operation: _Operation) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if operation.idempotency_key is not None:
        headers["Idempotency-Key"] = operation.idempotency_key
    return {"method": operation.method, "url": PREFIX + operation.path, "params": operation.params,
            "json": operation.json, "headers": headers}


def _result(operation: _Operation, response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.text, _retry_after(response))
    return operation.parse(response.text if operation.raw else response.json())


class _SyncTransport:
    is_async = False

    def __init__(self, http: httpx.Client, policy: _Policy) -> None:
        self.http = http
        self.policy = policy

    def run(self, operation: _Operation) -> Any:
        attempt = 0
        while True:
            response, error = None, None
            try:
                response = self.http.request(**_prepare(operation))
            except httpx.TransportError as caught:
                error = caught
            if attempt < self.policy.max_retries and self.policy.retryable(operation, response, error):
                time.sleep(self.policy.delay(attempt, response))
                attempt += 1
                continue
            if error is not None:
                raise error
            return _result(operation, response)

    def lines(self, operation: _Operation) -> Iterator[str]:
        """The answer's lines as they arrive. Retried as run() is until the answer begins; a failure
        after that raises, since a retry would repeat the lines already yielded."""
        attempt = 0
        while True:
            response, error = None, None
            try:
                with self.http.stream(**_prepare(operation)) as response:
                    if response.status_code < 400:
                        yield from response.iter_lines()
                        return
                    response.read()
            except httpx.TransportError as caught:
                if response is not None and response.status_code < 400:
                    raise
                error = caught
            if attempt < self.policy.max_retries and self.policy.retryable(operation, response, error):
                time.sleep(self.policy.delay(attempt, response))
                attempt += 1
                continue
            if error is not None:
                raise error
            assert response is not None  # no transport error, so an answer came: an error answer, raised here
            _result(operation, response)


class _AsyncTransport:
    is_async = True

    def __init__(self, http: httpx.AsyncClient, policy: _Policy) -> None:
        self.http = http
        self.policy = policy

    async def run(self, operation: _Operation) -> Any:
        attempt = 0
        while True:
            response, error = None, None
            try:
                response = await self.http.request(**_prepare(operation))
            except httpx.TransportError as caught:
                error = caught
            if attempt < self.policy.max_retries and self.policy.retryable(operation, response, error):
                await asyncio.sleep(self.policy.delay(attempt, response))
                attempt += 1
                continue
            if error is not None:
                raise error
            return _result(operation, response)

    async def lines(self, operation: _Operation) -> AsyncIterator[str]:
        """As _SyncTransport.lines, awaited."""
        attempt = 0
        while True:
            response, error = None, None
            try:
                async with self.http.stream(**_prepare(operation)) as response:
                    if response.status_code < 400:
                        async for line in response.aiter_lines():
                            yield line
                        return
                    await response.aread()
            except httpx.TransportError as caught:
                if response is not None and response.status_code < 400:
                    raise
                error = caught
            if attempt < self.policy.max_retries and self.policy.retryable(operation, response, error):
                await asyncio.sleep(self.policy.delay(attempt, response))
                attempt += 1
                continue
            if error is not None:
                raise error
            assert response is not None  # no transport error, so an answer came: an error answer, raised here
            _result(operation, response)


def _data(parse: Callable[[dict], Any]) -> Callable[[dict], Any]:
    return lambda body: parse(body["data"])


def _key(given: str | None) -> str:
    return given if given is not None else str(uuid.uuid4())


def _fields(**fields: Any) -> dict[str, Any]:
    return {name: format_datetime(value) for name, value in fields.items()}


class _Resource:
    def __init__(self, transport: Any) -> None:
        self._t = transport


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Filters as the list takes them: created_at_gte=... becomes created_at[gte]=...; times formatted."""
    params = {}
    for name, value in filters.items():
        if value is None:
            continue
        column, _, op = name.rpartition("_")
        key = f"{column}[{op}]" if op in ("gte", "gt", "lte", "lt") else name
        params[key] = format_datetime(value)
    return params


class Visits(_Resource):
    def list(self, limit: int = 30, page: int = 1, contact_uuid: str | None = None, **filters: Any) -> Page[Visit]:
        """filters: shop_uuid, source, external_id, sort, and ranges as created_at_gte=, starts_at_lt=, ..."""
        params: dict[str, Any] = {"limit": limit, "page": page, **_filters({"contact_uuid": contact_uuid, **filters})}
        return self._t.run(_Operation("GET", "/visits", lambda b: Page.from_json(b, Visit.from_json), params))

    def iter(self, *, limit: int = 100, contact_uuid: str | None = None, **filters: Any) -> Any:
        """Every visit, page after page (an async iterator on AsyncClient)."""
        return _iterate(self, limit, {"contact_uuid": contact_uuid, **filters})

    def delete(self, uuid: str) -> None:
        return self._t.run(_Operation("DELETE", f"/visits/{uuid}", lambda b: None))

    def changes_page(self, cursor: str | None = None, limit: int = 500) -> ChangesPage:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._t.run(_Operation("GET", "/visits/changes", ChangesPage.from_json, params))

    def changes(self, cursor: str | None = None, *, limit: int = 500) -> Any:
        """Every change after the cursor (a Visit, with updated_at, or a Tombstone), following
        next_cursor until none is left; the iterator's `cursor` is then where to go on from."""
        return _Changes(self, cursor, limit)

    def export(self, format: str = "ndjson", **filters: Any) -> str:
        """The visits that pass the filters, as NDJSON or CSV text."""
        params = {"format": format, **_filters(filters)}
        return self._t.run(_Operation("GET", "/visits/export", lambda text: text, params, raw=True))

    def stats(self, interval: str = "day", *, group_by: str | None = None, timezone: str = "UTC",
              contact_uuid: str | None = None, **filters: Any) -> Stats:
        """Visits, unique, new and returning contacts and the median duration per bucket; filters as
        list takes them (starts_at_gte= and starts_at_lt= set the period)."""
        params = {"interval": interval, "timezone": timezone,
                  **_filters({"group_by": group_by, "contact_uuid": contact_uuid, **filters})}
        return self._t.run(_Operation("GET", "/visits/stats", Stats.from_json, params))

    def get(self, uuid: str) -> Visit:
        return self._t.run(_Operation("GET", f"/visits/{uuid}", _data(Visit.from_json)))

    def create(self, contact_uuid: str, shop_uuid: str, *, external_id: str | None = None,
               source: str | None = None, starts_at: Any = None, ends_at: Any = None,
               idempotency_key: str | None = None) -> Visit:
        body = {"contact_uuid": contact_uuid, "shop_uuid": shop_uuid}
        body.update({k: v for k, v in _fields(external_id=external_id, source=source, starts_at=starts_at,
                                               ends_at=ends_at).items() if v is not None})
        return self._t.run(_Operation("POST", "/visits", _data(Visit.from_json), json=body,
                                      idempotency_key=_key(idempotency_key)))

    def update(self, uuid: str, *, idempotency_key: str | None = None, **fields: Any) -> Visit:
        """external_id, source, starts_at, ends_at; a field given as None is cleared."""
        return self._t.run(_Operation("PUT", f"/visits/{uuid}", _data(Visit.from_json), json=_fields(**fields),
                                      idempotency_key=_key(idempotency_key)))


class _Changes:
    """Iterates (or async-iterates) the changes feed; `cursor` is the position after what it yielded."""

    def __init__(self, visits: Visits, cursor: str | None, limit: int) -> None:
        self.visits, self.cursor, self.limit = visits, cursor, limit

    def __iter__(self) -> Iterator[Any]:
        while True:
            page = self.visits.changes_page(self.cursor, self.limit)
            yield from page.items
            self.cursor = page.next_cursor
            if not page.has_more:
                return

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            page = await self.visits.changes_page(self.cursor, self.limit)
            for item in page.items:
                yield item
            self.cursor = page.next_cursor
            if not page.has_more:
                return


def _iterate(resource: Any, limit: int, filters: dict[str, Any]) -> Any:
    """Every item of a resource's list, page after page (an async iterator on AsyncClient)."""
    if resource._t.is_async:
        async def pages() -> AsyncIterator[Any]:
            page = 1
            while True:
                result = await resource.list(limit=limit, page=page, **filters)
                for item in result.items:
                    yield item
                if page >= result.last_page or not result.items:
                    return
                page += 1

        return pages()

    def sync_pages() -> Iterator[Any]:
        page = 1
        while True:
            result = resource.list(limit=limit, page=page, **filters)
            yield from result.items
            if page >= result.last_page or not result.items:
                return
            page += 1

    return sync_pages()


class Shops(_Resource):
    def list(self) -> list:
        return self._t.run(_Operation("GET", "/shops", lambda b: [Shop.from_json(s) for s in b["data"]]))

    def get(self, uuid: str) -> Shop:
        return self._t.run(_Operation("GET", f"/shops/{uuid}", _data(Shop.from_json)))


class Contacts(_Resource):
    def create(self, email: str, *, idempotency_key: str | None = None) -> Contact:
        return self._t.run(_Operation("POST", "/contacts", _data(Contact.from_json), json={"email": email},
                                      idempotency_key=_key(idempotency_key)))

    def get(self, uuid: str) -> Contact:
        return self._t.run(_Operation("GET", f"/contacts/{uuid}", _data(Contact.from_json)))

    def list(self, limit: int = 30, page: int = 1, **filters: Any) -> Page[Contact]:
        """Newest first; or an audience: shop_uuid (then counts and dates are that shop's visits),
        visit_count_gte=, visit_count_lte=, last_visit_at_gte=, last_visit_at_lt=, first_visit_at_gte=,
        first_visit_at_lt=, and sort ("visit_count", "-last_visit_at", ...)."""
        params = {"limit": limit, "page": page, **_filters(filters)}
        return self._t.run(_Operation("GET", "/contacts", lambda b: Page.from_json(b, Contact.from_json), params))

    def iter(self, *, limit: int = 100, **filters: Any) -> Any:
        """Every contact of the audience, page after page (an async iterator on AsyncClient)."""
        return _iterate(self, limit, filters)

    def export(self, format: str = "ndjson", **filters: Any) -> Any:
        """The audience's contacts (list's filters; every contact without any) as the export streams
        them: its lines, without their line ends, CSV's header first (an async iterator on
        AsyncClient). Columns: uuid, email, visit_count, first_visit_at, last_visit_at."""
        params = {"format": format, **_filters(filters)}
        return self._t.lines(_Operation("GET", "/contacts/export", str, params, raw=True))

    def rule_progress(self, uuid: str) -> builtins.list[RuleProgress]:
        """The contact's standing with each of the account's visit rules."""
        return self._t.run(_Operation("GET", f"/contacts/{uuid}/visit-rules",
                                      lambda b: [RuleProgress.from_json(item) for item in b["data"]]))

    def find_by_email(self, email: str) -> Contact:
        """The account's contact with this email; NotFound when there is none."""
        return self._t.run(_Operation("GET", "/contacts/find-one-by", _data(Contact.from_json), {"email": email}))

    def find_or_create(self, email: str) -> Contact:
        return self._t.run(_Operation("GET", "/contacts/find-or-create", _data(Contact.from_json), {"email": email}))

    def create_anonymous(self, *, idempotency_key: str | None = None) -> Contact:
        """A contact with no email (email None), to be claimed later."""
        return self._t.run(_Operation("POST", "/contacts/anonymous", _data(Contact.from_json), json={},
                                      idempotency_key=_key(idempotency_key)))

    def claim(self, uuid: str, email: str, *, idempotency_key: str | None = None) -> Contact:
        """Gives an anonymous contact its email."""
        return self._t.run(_Operation("PUT", f"/contacts/{uuid}/claim", _data(Contact.from_json),
                                      json={"email": email}, idempotency_key=_key(idempotency_key)))


    def delete(self, uuid: str, *, gdpr: bool = False) -> None:
        """Deletes the contact and its visits; gdpr also erases its email from all Footfall keeps."""
        return self._t.run(_Operation("DELETE", f"/contacts/{uuid}", lambda b: None,
                                      {"type": "GDPR" if gdpr else "DEFAULT"}))


class VisitRules(_Resource):
    """Footfall's visit rules: milestones, frequencies and lapses, each sent as a webhook event."""

    def list(self, limit: int = 30, page: int = 1) -> Page[VisitRule]:
        """Newest first."""
        return self._t.run(_Operation("GET", "/visit-rules", lambda b: Page.from_json(b, VisitRule.from_json),
                                      {"limit": limit, "page": page}))

    def iter(self, *, limit: int = 100) -> Any:
        """Every rule, page after page (an async iterator on AsyncClient)."""
        return _iterate(self, limit, {})

    def create(self, name: str, kind: str, *, every: int | None = None, at: builtins.list[int] | None = None,
               count: int | None = None, within_days: int | None = None, after_days: int | None = None,
               min_visits: int | None = None, shop_uuid: str | None = None, source: str | None = None,
               status: str | None = None, idempotency_key: str | None = None) -> VisitRule:
        """kind "milestone" takes every or at, "frequency" count and within_days, "lapse" after_days
        (and min_visits, default 1); shop_uuid and source narrow the visits that count."""
        fields = {"every": every, "at": at, "count": count, "within_days": within_days, "after_days": after_days,
                  "min_visits": min_visits, "shop_uuid": shop_uuid, "source": source, "status": status}
        body = {"name": name, "kind": kind, **{k: v for k, v in fields.items() if v is not None}}
        return self._t.run(_Operation("POST", "/visit-rules", _data(VisitRule.from_json), json=body,
                                      idempotency_key=_key(idempotency_key)))

    def get(self, uuid: str) -> VisitRule:
        return self._t.run(_Operation("GET", f"/visit-rules/{uuid}", _data(VisitRule.from_json)))

    def update(self, uuid: str, *, idempotency_key: str | None = None, **fields: Any) -> VisitRule:
        """name, status; a rule's kind, numbers, shop and source cannot change."""
        return self._t.run(_Operation("PUT", f"/visit-rules/{uuid}", _data(VisitRule.from_json), json=fields,
                                      idempotency_key=_key(idempotency_key)))

    def delete(self, uuid: str) -> None:
        # As a subscription's: safe to repeat (a second one answers 404), so without a key and unretried.
        return self._t.run(_Operation("DELETE", f"/visit-rules/{uuid}", lambda b: None))


class WebhookSubscriptions(_Resource):
    """Footfall's webhook subscriptions (Leat's API, with visit events and a delivery log)."""

    def list(self, *, event_type: str | None = None, status: str | None = None, limit: int = 30,
             page: int = 1) -> Page[WebhookSubscription]:
        params = {k: v for k, v in {"event_type": event_type, "status": status, "limit": limit,
                                    "page": page}.items() if v is not None}
        return self._t.run(_Operation("GET", "/webhook-subscriptions",
                                      lambda b: Page.from_json(b, WebhookSubscription.from_json), params))

    def create(self, name: str, event_type: str, url: str, *, secret: str | None = None,
               idempotency_key: str | None = None) -> WebhookSubscription:
        body = {"name": name, "event_type": event_type, "url": url}
        if secret is not None:
            body["secret"] = secret
        return self._t.run(_Operation("POST", "/webhook-subscriptions", _data(WebhookSubscription.from_json),
                                      json=body, idempotency_key=_key(idempotency_key)))

    def get(self, uuid: str) -> WebhookSubscription:
        return self._t.run(_Operation("GET", f"/webhook-subscriptions/{uuid}", _data(WebhookSubscription.from_json)))

    def update(self, uuid: str, *, idempotency_key: str | None = None, **fields: Any) -> WebhookSubscription:
        """name, url, status."""
        return self._t.run(_Operation("PUT", f"/webhook-subscriptions/{uuid}", _data(WebhookSubscription.from_json),
                                      json=fields, idempotency_key=_key(idempotency_key)))

    def delete(self, uuid: str) -> None:
        # DELETE is safe to repeat (a second one answers 404), so it goes without a key and unretried.
        return self._t.run(_Operation("DELETE", f"/webhook-subscriptions/{uuid}", lambda b: None))

    def deliveries(self, uuid: str, *, limit: int = 30, page: int = 1) -> Page[WebhookDelivery]:
        return self._t.run(_Operation("GET", f"/webhook-subscriptions/{uuid}/deliveries",
                                      lambda b: Page.from_json(b, WebhookDelivery.from_json),
                                      {"limit": limit, "page": page}))

    def retry_delivery(self, uuid: str, delivery_id: str) -> WebhookDelivery:
        return self._t.run(_Operation("POST", f"/webhook-subscriptions/{uuid}/deliveries/{delivery_id}/retry",
                                      _data(WebhookDelivery.from_json), idempotency_key=_key(None)))


class _Base:
    def _resources(self, transport: Any) -> None:
        self.visits = Visits(transport)
        self.shops = Shops(transport)
        self.contacts = Contacts(transport)
        self.visit_rules = VisitRules(transport)
        self.webhook_subscriptions = WebhookSubscriptions(transport)


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "User-Agent": "footfall-client/0.1.0"}


class Client(_Base):
    """Client(base_url, token) for Footfall (http://127.0.0.1:8000) or Leat (https://api.piggy.eu)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10, max_retries: int = 3,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=_headers(token), timeout=timeout,
                                  transport=transport)
        self._policy = _Policy(max_retries)
        self._resources(_SyncTransport(self._http, self._policy))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(_Base):
    """The same surface as Client, every call awaited."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10, max_retries: int = 3,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=_headers(token), timeout=timeout,
                                       transport=transport)
        self._policy = _Policy(max_retries)
        self._resources(_AsyncTransport(self._http, self._policy))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
