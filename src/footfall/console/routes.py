"""The web console: server-rendered pages (Jinja2) over the same services the API uses, signed in
with an API token (console/session.py). Its script and chart library are served from the package
(/static/console), never from a CDN, and no page runs inline script (Content-Security-Policy).

Form bodies arrive as JSON: http.body's middleware turns every form into JSON before any route sees it."""

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from footfall.console.session import (
    CONTENT_SECURITY_POLICY,
    COOKIE,
    ForgedForm,
    SignedOut,
    check_form,
    check_origin,
    credential_of,
    forget,
    keep,
    session,
)
from footfall.contacts import export as contacts_export
from footfall.contacts import service as contacts
from footfall.contacts.repository import AUDIENCE_BOUNDS, AUDIENCE_SORTS
from footfall.contacts.schemas import read_audience
from footfall.errors import FootfallError, InvalidInput, ShopNotFound, TooManyRequests, field_errors
from footfall.http.files import file_response
from footfall.kit.pagination import PageParams
from footfall.kit.rendering import EXPORT_FORMATS
from footfall.kit.time import format_iso8601, utcnow
from footfall.rules import service as rules
from footfall.rules.repository import Rule
from footfall.rules.schemas import RuleCreate, RuleUpdate
from footfall.shops import service as shops
from footfall.stats import service as stats
from footfall.stats.schemas import read_zone
from footfall.visits import export
from footfall.visits import service as visits
from footfall.visits.repository import SORTS, VisitFilter, VisitRow
from footfall.visits.schemas import read_query_filters
from footfall.webhooks import service as webhooks
from footfall.webhooks.schemas import EventType, SubscriptionCreate, SubscriptionUpdate

HERE = Path(__file__).parent
STATIC_URL = "/static/console"
SIGN_IN = "/sign-in"  # the one page without a session: http.ratelimit counts it per client address
PAGE_SIZE = 50
PERIODS = (30, 90)  # days the overview shows
EVENT_TYPES = EventType.__args__  # type: ignore[attr-defined]
# The list's filters as the visits page's form sends them (empty fields left out).
VISIT_FILTERS = ("shop_uuid", "source", "contact_uuid", "external_id", "starts_at[gte]", "starts_at[lt]",
                 "created_at[gte]", "created_at[lt]", "sort")
# What the visits page's sort menu says for each of the API's sorts.
SORT_LABELS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-starts_at": "Latest start first",
    "starts_at": "Earliest start first",
    "-updated_at": "Last updated first",
    "updated_at": "Least recently updated first",
}
# The audiences page's filters: GET /contacts's, as its form sends them (empty fields left out).
AUDIENCE_FILTERS = ("shop_uuid", *(f"{field}[{op}]" for field, ops in AUDIENCE_BOUNDS.items() for op in ops), "sort")
AUDIENCE_SORT_LABELS = {
    "-created_at": "Newest contact first",
    "-visit_count": "Most visits first",
    "visit_count": "Fewest visits first",
    "-last_visit_at": "Latest last visit first",
    "last_visit_at": "Earliest last visit first",
    "-first_visit_at": "Latest first visit first",
    "first_visit_at": "Earliest first visit first",
}
RULE_KINDS = tuple(rules.KIND_FIELDS)
RULE_FORM = ("name", "kind", "every", "at", "count", "within_days", "after_days", "min_visits", "shop_uuid", "source")
RECENT_DAYS = 30  # the rules page's events: each rule's in this many days

class ConsoleRoute(APIRoute):
    """A console page: its failures render as pages (the sign-in page when signed out), not as the
    API's JSON errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except FootfallError as error:
                return _failure(request, error)
            except RequestValidationError:
                return _failure(request, NotFound())

        return route_handler


class NotFound(FootfallError):
    status_code, code, message = 404, 90404, "There is no such page."


router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["moment"] = lambda value: (
    format_iso8601(value).replace("T", " ").removesuffix("+00:00") if value else ""
)
static = StaticFiles(directory=HERE / "static")


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update({"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY",
                             "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff"})
    return response


def _signed_in(request: Request, template: str, signed: Any, **context: Any) -> Response:
    return _page(request, template, read_only=signed.read_only, csrf=signed.form_token,
                 account=signed.account, **context)


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _failure(request: Request, error: FootfallError) -> Response:
    if isinstance(error, SignedOut):
        response = _see(SIGN_IN)
        forget(response)
        return response
    return _page(request, "error.html", status_code=error.status_code, error=error)


async def too_many_requests_page(scope: Scope, receive: Receive, send: Send, retry_after: int,
                                 headers: list[tuple[bytes, bytes]]) -> None:
    """The rate limit's 429 as a console page: http.ratelimit answers it before routing."""
    response = _page(Request(scope, receive), "error.html", status_code=429, error=TooManyRequests(),
                     retry_after=retry_after)
    response.raw_headers.extend(headers)
    await response(scope, receive, send)


async def _form(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ForgedForm() from None
    return body if isinstance(body, dict) else {}


@router.get(SIGN_IN)
async def sign_in_page(request: Request) -> Response:
    return _page(request, "sign_in.html", error=None)


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    check_origin(request)  # another site must not sign a browser in to its own account (login CSRF)
    token = str((await _form(request)).get("token", "")).strip()
    if token:
        try:
            await credential_of(request, token)
        except SignedOut:
            token = ""
    if not token:
        return _page(request, "sign_in.html", status_code=401, error="That token does not work: it is unknown, "
                                                                        "revoked or expired.")
    response = _see("/")
    keep(response, request, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token:  # a read-only token signs out too: no session(write=True) here
        check_form(request, token, await _form(request))
    response = _see(SIGN_IN)
    forget(response)
    return response


@router.get("/")
async def overview(request: Request, days: int = 30, split: str = "", timezone: str = "UTC") -> Response:
    days = days if days in PERIODS else PERIODS[0]
    group_by = split if split in stats.GROUPS else None
    errors: dict[str, list[str]] = {}
    try:
        zone = read_zone(timezone.strip())
    except InvalidInput as error:
        # The form again, the error beside the field and the name as typed; the figures in UTC meanwhile.
        errors = dict(error.errors or {})
        zone = read_zone("UTC")
    today = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=days - 1), today + timedelta(days=1)
    period = VisitFilter(None, ranges=(("starts_at", "gte", start), ("starts_at", "lt", end)))
    async with session(request) as signed:
        cache = request.app.state.stats_cache
        per_day = await stats.visit_stats(signed.tx, signed.account, period, "day", group_by, zone, cache)
        totals = await stats.period_totals(signed.tx, signed.account, period, start, end, cache)
        hours = await stats.visits_by_hour_of_day(signed.tx, signed.account, period, start, end, zone, cache)
        shop_names = {str(shop.uuid): shop.name for shop in await shops.list_all(signed.tx, signed.account)}
    assert per_day is not None  # the period is given
    edges = per_day.buckets[:-1]
    datasets = []
    for group in per_day.groups:
        if group_by is None:
            label = "Visits"
        elif group_by == "shop":
            label = shop_names.get(str(group), str(group))
        else:
            label = group or "(no source)"
        counted = [per_day.counts.get((number, group)) for number in range(1, len(edges) + 1)]
        datasets.append({"label": label, "data": [row.visits if row else 0 for row in counted]})
    chart = {"labels": [edge.strftime("%Y-%m-%d") for edge in edges], "datasets": datasets}
    hours_chart = {"labels": [f"{hour:02d}:00" for hour in range(24)], "datasets": [{"label": "Visits", "data": hours}]}
    busiest = sorted(range(24), key=lambda hour: (-hours[hour], hour))[:3] if any(hours) else []
    return _signed_in(
        request, "overview.html", signed, days=days, periods=PERIODS, split=group_by or "",
        timezone=timezone if errors else zone.key, zone=zone.key, errors=errors,
        chart=orjson.dumps(chart).decode(), hours_chart=orjson.dumps(hours_chart).decode(), totals=totals,
        busiest=busiest, start=start, end=end - timedelta(days=1),
    )


def _visit_query(request: Request) -> dict[str, str]:
    """The visits page's filters as given (empty fields dropped), to show in its form and links."""
    return {name: value for name in VISIT_FILTERS if (value := request.query_params.get(name, "").strip())}


@router.get("/visits")
async def visits_page(request: Request, page: int = 1) -> Response:
    query = _visit_query(request)
    page = max(page, 1)
    errors: dict[str, list[str]] = {}
    async with session(request) as signed:
        shop_list = await shops.list_all(signed.tx, signed.account)
        try:
            filters = read_query_filters(query)
        except InvalidInput as error:
            errors = dict(error.errors or {})
            rows: Sequence[VisitRow] = []
            total = 0
        else:
            rows, total = await visits.list_page(signed.tx, signed.account, PageParams(PAGE_SIZE, page), filters)
    meta = PageParams(PAGE_SIZE, page).meta(total)
    shop_names = {shop.id: shop.name for shop in shop_list}
    return _signed_in(
        request, "visits.html", signed, rows=rows, meta=meta, query=query, errors=errors, shops=shop_list,
        shop_names=shop_names, sorts=[(sort, SORT_LABELS[sort]) for sort in SORTS], export_query=urlencode(query),
        page_link=lambda n: "/visits?" + urlencode({**query, "page": n}),
    )


@router.get("/visits/export")
async def visits_export(request: Request, format: str = "csv") -> Response:
    query = _visit_query(request)
    if format not in EXPORT_FORMATS:
        raise InvalidInput({"format": ["Must be ndjson or csv."]})
    async with session(request) as signed:
        filters = read_query_filters(query)
        account_id = signed.account.id
    database = request.app.state.database

    async def body() -> AsyncIterator[bytes]:
        async for chunk in export.export(database, account_id, filters, format):
            yield chunk.data

    return file_response(body(), format, "visits", no_store=True)


@router.get("/visits/{uuid}")
async def visit_page(request: Request, uuid: UUID) -> Response:
    async with session(request) as signed:
        visit = await visits.get(signed.tx, signed.account, uuid)
        shop = next((s for s in await shops.list_all(signed.tx, signed.account) if s.id == visit.shop_id), None)
    return _signed_in(request, "visit.html", signed, visit=visit, shop=shop)


@router.get("/contacts")
async def contacts_page(request: Request, page: int = 1) -> Response:
    params = PageParams(PAGE_SIZE, max(page, 1))
    async with session(request) as signed:
        rows, total = await contacts.list_page(signed.tx, signed.account, params)
    return _signed_in(request, "contacts.html", signed, rows=rows, meta=params.meta(total),
                      page_link=lambda n: f"/contacts?page={n}")


@router.get("/contacts/{uuid}")
async def contact_page(request: Request, uuid: UUID, page: int = 1) -> Response:
    params = PageParams(PAGE_SIZE, max(page, 1))
    async with session(request) as signed:
        contact = await contacts.get(signed.tx, signed.account, uuid)
        standing = await rules.progress(signed.tx, signed.account, uuid)
        rows, total = await visits.list_page(signed.tx, signed.account, params, VisitFilter(uuid))
        shop_list = await shops.list_all(signed.tx, signed.account)
    progress = [
        {"rule": row.rule, "numbers": rule_numbers(row.rule), "count": row.total, "reached": reached,
         "next_at": rules.next_at(row.rule, row.total, reached), "lapsed": row.lapsed_at is not None,
         "lapsed_at": row.lapsed_at, "last_visit_at": row.last_visit_at}
        for row, reached in standing
    ]
    return _signed_in(request, "contact.html", signed, contact=contact, rows=rows, meta=params.meta(total),
                      shop_names={shop.id: shop.name for shop in shop_list}, progress=progress,
                      rule_shops={shop.uuid: shop.name for shop in shop_list},
                      page_link=lambda n: f"/contacts/{uuid}?page={n}")


def _audience_query(request: Request) -> dict[str, str]:
    """The audiences page's filters as given (empty fields dropped), to show in its form and links."""
    return {name: value for name in AUDIENCE_FILTERS if (value := request.query_params.get(name, "").strip())}


@router.get("/audiences")
async def audiences_page(request: Request, page: int = 1) -> Response:
    query = _audience_query(request)
    params = PageParams(PAGE_SIZE, max(page, 1))
    errors: dict[str, list[str]] = {}
    async with session(request) as signed:
        shop_list = await shops.list_all(signed.tx, signed.account)
        try:
            audience = read_audience(query)
        except InvalidInput as error:
            # The form again, each message beside its field; no contacts until the filters read.
            errors = dict(error.errors or {})
            rows: Sequence[Any] = []
            total = 0
        else:
            rows, total = await contacts.list_page(signed.tx, signed.account, params, audience)
    filtered = {name: value for name, value in query.items() if name != "sort"}
    return _signed_in(
        request, "audiences.html", signed, rows=rows, meta=params.meta(total), query=query, errors=errors,
        filtered=bool(filtered), shops=shop_list,
        sorts=[(sort, AUDIENCE_SORT_LABELS.get(sort, sort)) for sort in AUDIENCE_SORTS],
        export_query=urlencode(filtered), page_link=lambda n: "/audiences?" + urlencode({**query, "page": n}),
    )


@router.get("/audiences/export")
async def audience_export(request: Request, format: str = "csv") -> Response:
    """GET /contacts/export's file, signed in with the session: the audiences page's CSV link."""
    query = _audience_query(request)
    if format not in EXPORT_FORMATS:
        raise InvalidInput({"format": ["Must be ndjson or csv."]})
    async with session(request) as signed:
        audience = read_audience(query)
        account_id = signed.account.id
    database = request.app.state.database

    async def body() -> AsyncIterator[bytes]:
        async for chunk in contacts_export.export(database, account_id, audience, format):
            yield chunk

    return file_response(body(), format, "contacts", no_store=True)


@router.get("/shops")
async def shops_page(request: Request) -> Response:
    async with session(request) as signed:
        rows = await shops.list_all(signed.tx, signed.account)
        # No count is kept per shop: each is the list's total with the shop's filter at limit 0,
        # which counts the shop's index entries and reads no visit.
        visit_counts = [(await visits.list_page(signed.tx, signed.account, PageParams(0, 1),
                                                VisitFilter(shop_uuid=shop.uuid)))[1] for shop in rows]
    return _signed_in(request, "shops.html", signed, rows=list(zip(rows, visit_counts, strict=True)))


async def _subscriptions(request: Request, signed: Any, **context: Any) -> Response:
    rows, _ = await webhooks.list_page(signed.tx, signed.account, PageParams(100, 1), None, None)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return _signed_in(request, "webhooks.html", signed, rows=rows, event_types=EVENT_TYPES, **context)


@router.get("/webhooks")
async def webhooks_page(request: Request) -> Response:
    async with session(request) as signed:
        return await _subscriptions(request, signed)


@router.post("/webhooks")
async def create_subscription(request: Request) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        values = {name: str(form.get(name, "")).strip() for name in ("name", "event_type", "url")}
        try:
            data = SubscriptionCreate.model_validate(values)
            created = await webhooks.create(signed.tx, signed.account, data, request.app.state.settings)
        except ValidationError as error:
            return await _subscriptions(request, signed, errors=field_errors(error.errors(), located=False),
                                        values=values)
        except InvalidInput as error:
            return await _subscriptions(request, signed, errors=error.errors or {}, values=values)
    # The secret is shown on this page only, once, as the API's create answer shows it.
    return _page(request, "secret.html", read_only=False, csrf=signed.form_token, account=signed.account,
                 subscription=created)


@router.post("/webhooks/{uuid}/status")
async def set_subscription_status(request: Request, uuid: UUID) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        status = "ACTIVE" if form.get("status") == "ACTIVE" else "INACTIVE"
        await webhooks.update(signed.tx, signed.account, uuid, SubscriptionUpdate(status=status),
                              request.app.state.settings)
    return _see("/webhooks")


@router.post("/webhooks/{uuid}/delete")
async def delete_subscription(request: Request, uuid: UUID) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        await webhooks.delete(signed.tx, signed.account, uuid)
    return _see("/webhooks")


@router.get("/webhooks/{uuid}")
async def subscription_page(request: Request, uuid: UUID, page: int = 1) -> Response:
    params = PageParams(PAGE_SIZE, max(page, 1))
    async with session(request) as signed:
        subscription = await webhooks.get(signed.tx, signed.account, uuid)
        rows, total = await webhooks.list_deliveries(signed.tx, signed.account, uuid, params)
    return _signed_in(request, "webhook.html", signed, subscription=subscription, rows=rows,
                      meta=params.meta(total), page_link=lambda n: f"/webhooks/{uuid}?page={n}")


@router.post("/webhooks/{uuid}/deliveries/{delivery_uuid}/retry")
async def retry_delivery(request: Request, uuid: UUID, delivery_uuid: UUID) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        await webhooks.retry_delivery(signed.tx, signed.account, uuid, delivery_uuid)
    return _see(f"/webhooks/{uuid}")


def rule_numbers(rule: Rule) -> str:
    """What a rule counts, in words: its kind's numbers."""
    if rule.kind == "milestone":
        if rule.every:
            return f"every {rule.every} visits"
        return "at visits " + ", ".join(str(at) for at in orjson.loads(rule.at or "[]"))
    if rule.kind == "frequency":
        return f"{rule.needed} visits within {rule.within_days} days"
    visits_before = rule.min_visits or 1
    return (f"no visit for {rule.after_days} days, after at least {visits_before} "
            f"visit{'' if visits_before == 1 else 's'}")


async def _rules(request: Request, signed: Any, page: int = 1, **context: Any) -> Response:
    params = PageParams(PAGE_SIZE, max(page, 1))
    rows, total = await rules.list_page(signed.tx, signed.account, params)
    events = await rules.recent_events(signed.tx, signed.account, RECENT_DAYS)
    shop_list = await shops.list_all(signed.tx, signed.account)
    context.setdefault("errors", {})
    context.setdefault("values", {"kind": RULE_KINDS[0]})
    return _signed_in(
        request, "rules.html", signed, meta=params.meta(total), recent_days=RECENT_DAYS, kinds=RULE_KINDS,
        form_fields=RULE_FORM, shops=shop_list, shop_names={shop.uuid: shop.name for shop in shop_list},
        rows=[(rule, rule_numbers(rule), events.get(rule.uuid, 0)) for rule in rows],
        page_link=lambda n: f"/rules?page={n}", **context,
    )


@router.get("/rules")
async def rules_page(request: Request, page: int = 1) -> Response:
    async with session(request) as signed:
        return await _rules(request, signed, page)


def _rule_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Messages by the form's field: an item of `at` (at.2) is the field's."""
    by_field: dict[str, list[str]] = {}
    for field, messages in errors.items():
        by_field.setdefault(field.split(".")[0], []).extend(messages)
    return by_field


@router.post("/rules")
async def create_rule(request: Request) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        values = {name: str(form.get(name, "")).strip() for name in RULE_FORM}
        # `at` is typed as a list with commas; each count is read (and refused) as the API reads it.
        at = [count.strip() for count in values["at"].split(",") if count.strip()]
        try:
            data = RuleCreate.model_validate({**values, "at": at or None})
            await rules.create(signed.tx, signed.account, data)
        except ValidationError as error:
            errors = _rule_errors(field_errors(error.errors(), located=False))
            # A field left empty is absent (null) to the model, whose message would be about its type.
            errors = {field: ["Required."] if values.get(field) == "" else messages
                      for field, messages in errors.items()}
            return await _rules(request, signed, errors=errors, values=values)
        except InvalidInput as error:
            return await _rules(request, signed, errors=_rule_errors(dict(error.errors or {})), values=values)
        except ShopNotFound as error:  # deleted since the form was shown
            return await _rules(request, signed, errors={"shop_uuid": [error.message]}, values=values)
    return _see("/rules")


@router.post("/rules/{uuid}/status")
async def set_rule_status(request: Request, uuid: UUID) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        status = "ACTIVE" if form.get("status") == "ACTIVE" else "INACTIVE"
        await rules.update(signed.tx, signed.account, uuid, RuleUpdate(status=status))
    return _see("/rules")


@router.post("/rules/{uuid}/delete")
async def delete_rule(request: Request, uuid: UUID) -> Response:
    form = await _form(request)
    async with session(request, write=True, form=form) as signed:
        await rules.delete(signed.tx, signed.account, uuid)
    return _see("/rules")
