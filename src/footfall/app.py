"""create_app(): the FastAPI application, its routers, error handlers and database lifespan."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import literal, select

from footfall import __version__, exposition, metrics
from footfall.accounts.service import TokenCache
from footfall.config import Settings
from footfall.console import routes as console
from footfall.contacts.routes import router as contacts_router
from footfall.db import Database, Statement, open_database, per_dialect
from footfall.db.postgres import PostgresDatabase
from footfall.db.replicas import ReadRouting
from footfall.errors import ErrorBody, InvalidInput, ServiceUnavailable
from footfall.http.body import FORM_TYPE, MULTIPART_TYPE, RequestBodyMiddleware
from footfall.http.handlers import install_error_handlers
from footfall.http.paths import TrailingSlashMiddleware
from footfall.http.ratelimit import InProcessLimiter, RateLimitMiddleware, RedisLimiter
from footfall.http.requestid import RequestIdMiddleware
from footfall.http.requestlog import RequestLogMiddleware
from footfall.http.routing import BEARER_SCHEME
from footfall.idempotency.service import Replay, purge_expired
from footfall.kit.time import pause
from footfall.rules.lapses import find_lapses
from footfall.rules.routes import progress_router as rule_progress_router
from footfall.rules.routes import router as rules_router
from footfall.shops.routes import router as shops_router
from footfall.stats.cache import StatsCache
from footfall.stats.routes import router as stats_router
from footfall.visits.contact_routes import router as contact_changes_router
from footfall.visits.retention import keep_days
from footfall.visits.routes import router as visits_router
from footfall.webhooks.delivery import DeliveryWorker
from footfall.webhooks.routes import router as webhooks_router

API_PREFIX = "/api/v3/oauth/clients"
DOCS_ASSETS = "/static/docs"
# ReDoc styles itself inline and searches in a worker it makes from a blob; everything else is Footfall's.
REDOC_POLICY = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                "worker-src 'self' blob:; font-src 'self' data:")
HOUSEKEEPING_INTERVAL = 600  # seconds
# Container objects allocated, net of those freed, before the collector looks at the youngest:
# Python's 700 is less than what one page of 500 visits holds while it is rendered, so every such
# request ran several collections over its own live rows. Garbage in cycles waits longer, bounded.
GC_YOUNG_THRESHOLD = 50_000
PING: dict[str, Statement] = per_dialect(lambda dialect: Statement(select(literal(1).label("one")), dialect=dialect))

# The OpenAPI document (/openapi.json), shaped for client generators: see _openapi.
API_DESCRIPTION = f"""A self-hosted implementation of Leat's Visits API: visits, contacts, shops and webhook
subscriptions, at Leat's paths under `{API_PREFIX}`.

Every API operation needs a personal access token: `Authorization: Bearer <token>`. Errors answer in
Leat's shape: `status_code`, `code`, `message`, and `errors` by field where there are any.

Request bodies are documented as JSON, which generated clients send. Every body is also read from
`{FORM_TYPE}` and `{MULTIPART_TYPE}` forms, as Leat's PHP SDK and request collection send them: each
field as text, an empty field as null.

A write that takes an `Idempotency-Key` header is safe to retry with one: a repeat answers the first
answer again, with `Idempotent-Replayed: true`. Every answer carries `X-Request-Id`, and, while the rate limit
is on, its headers (`RateLimit-*` and Laravel's `X-RateLimit-*`)."""
FORMS_NOTE = (f"\n\nThe body may also be sent as `{FORM_TYPE}` or `{MULTIPART_TYPE}`, read into the same "
              "fields (an empty field as null).")
# Relative: the server this document is served from (OpenAPI resolves it against the document's own
# URL). Footfall is self-hosted, so no one absolute URL is right, and the Host a request names is not
# trusted to write one.
SERVERS = [{"url": "/", "description": "The Footfall server this document is served from"}]
LICENSE = {"name": "MIT", "identifier": "MIT"}
TAGS = [
    {"name": "visits", "description": "Visits of contacts to shops; the changes feed, the export and the stats"},
    {"name": "shops", "description": "The account's shops (made with `footfall shops`)"},
    {"name": "contacts", "description": "Contacts: by email, or anonymous until claimed"},
    {"name": "visit rules", "description": "Milestones, frequencies and lapses: visits turned into webhook events"},
    {"name": "webhook subscriptions", "description": "Webhooks: signed events sent to a url, and their deliveries"},
    {"name": "health", "description": "Whether the server and its database answer"},
]


def _header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


_SECONDS = {"type": "integer", "minimum": 0}
# What answers carry besides their body (components/headers): see http.requestid, http.ratelimit,
# http.handlers (401, 503) and _replay.
RESPONSE_HEADERS = {
    "X-Request-Id": _header("The request's id: the one it sent when that is 1 to 128 of A-Z a-z 0-9 . _ : @ / + = -, "
                            "otherwise a new one (32 hex digits).", {"type": "string", "maxLength": 128}, True),
    "RateLimit-Limit": _header("Requests a token may make a minute (while the rate limit is on).", _SECONDS),
    "RateLimit-Remaining": _header("Requests left to the token in this minute.", _SECONDS),
    "RateLimit-Reset": _header("Seconds until this minute's window ends.", _SECONDS),
    "X-RateLimit-Limit": _header("RateLimit-Limit, by Laravel's name (as Leat's answers carry it).", _SECONDS),
    "X-RateLimit-Remaining": _header("RateLimit-Remaining, by Laravel's name.", _SECONDS),
    "X-RateLimit-Reset": _header("429 only: the Unix time at which the window ends.", _SECONDS),
    "Retry-After": _header("Seconds to wait before sending again: on every 429, and on a 503 while the "
                           "database does not answer.", _SECONDS),
    "Idempotent-Replayed": _header("`true` when this is the stored answer to an earlier request with the same "
                                   "Idempotency-Key, replayed; absent otherwise.",
                                   {"type": "string", "enum": ["true"]}),
    "WWW-Authenticate": _header("The scheme to authenticate with.", {"type": "string", "enum": ["Bearer"]}, True),
}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit",
                      "X-RateLimit-Remaining")
HEADERS_BY_STATUS = {"401": ("WWW-Authenticate",), "429": ("Retry-After", "X-RateLimit-Reset"), "503": ("Retry-After",)}


class ReplicaHealth(BaseModel):
    hosts: str = Field(description="The replica, as FOOTFALL_DATABASE_REPLICA_URLS names it")
    state: str = Field(description="ok (serves reads), lagging, down or starting", examples=["ok"])
    lag_seconds: float | None = Field(description="How far behind the primary it is; null when unknown")


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    # Absent, never null, without replicas.
    replicas: list[ReplicaHealth] | SkipJsonSchema[None] = Field(default=None, description="Each replica's state "
                                                                 "(with replicas only)")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    database = open_database(settings.database_url, pool_size=settings.database_pool_size,
                             statement_cache_size=settings.database_statement_cache_size)
    reads = None
    if settings.database_replica_urls:
        if not isinstance(database, PostgresDatabase):
            raise ValueError("FOOTFALL_DATABASE_REPLICA_URLS needs PostgreSQL (FOOTFALL_DATABASE_URL=postgresql://...)")
        reads = ReadRouting.open(database, settings.database_replica_urls, settings.replica_max_lag_seconds,
                                 settings.redis_url, settings.database_pool_size)
    recorder = metrics.enable() if settings.records_metrics else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded by now (modules, models, compiled statements) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it under load.
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        stop = asyncio.Event()
        # Undone in reverse at shutdown (SIGTERM), or when starting fails part way: the background
        # tasks are told to stop, each is awaited (the worker finishes the deliveries in flight) and
        # what it used is closed, and the database last.
        async with AsyncExitStack() as stack:
            stack.push_async_callback(database.close)
            if isinstance(limiter, RedisLimiter):
                stack.push_async_callback(limiter.close)

            def background(work: Coroutine[Any, Any, None], name: str) -> None:
                task = asyncio.create_task(work, name=name)
                stack.push_async_callback(lambda: task)

            background(_housekeeping(database, stop), "footfall-housekeeping")
            if reads is not None:
                await reads.check()  # the replicas' state before the first request
                stack.push_async_callback(reads.close)
                background(reads.run(stop), "footfall-replica-checks")
            if recorder is not None:
                stack.callback(metrics.forget_process)
                background(metrics.sample_pool(recorder, database, stop), "footfall-pool-sampling")
            if settings.webhook_worker:
                worker = DeliveryWorker(database, settings)
                stack.push_async_callback(worker.close)
                background(worker.run(stop), "footfall-webhook-worker")
                if settings.retention_days:
                    background(keep_days(database, settings.retention_days, stop), "footfall-retention")
                background(find_lapses(database, settings.rules_interval, stop), "footfall-lapses")
            stack.callback(stop.set)
            yield

    # /docs and /redoc with Swagger UI and ReDoc served from fastapi-offline's package, not a CDN: they
    # render on a machine without internet.
    app = FastAPIOffline(
        title="Footfall",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would send the schema to swagger.io
        redoc_url=None,  # below, with a policy that keeps its logo from loading off redocly's CDN
    )
    app.state.settings = settings
    app.state.database = database
    app.state.reads = reads
    app.state.token_cache = TokenCache(settings.token_cache_seconds)
    app.state.stats_cache = StatsCache()

    install_error_handlers(app)
    app.add_exception_handler(Replay, _replay)
    # Added innermost first: the rate limit sees a request before its body is read.
    app.add_middleware(RequestBodyMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TrailingSlashMiddleware)
    limiter = None
    if settings.rate_limit > 0:
        limiter = RedisLimiter(settings.redis_url) if settings.redis_url else InProcessLimiter()
        app.add_middleware(RateLimitMiddleware, limit=settings.rate_limit, limiter=limiter,
                           sign_in=console.SIGN_IN, refused_page=console.too_many_requests_page)
    # A line a request, the middlewares' own answers (413, 415, 429) included.
    app.add_middleware(RequestLogMiddleware, documented_paths=lambda: app.openapi()["paths"])
    # Outermost: every answer carries the id, and every log line of the request too.
    app.add_middleware(RequestIdMiddleware)
    # stats before visits: /visits/stats is not a visit's uuid.
    for router in (stats_router, visits_router, shops_router, contacts_router, contact_changes_router,
                   rule_progress_router, rules_router, webhooks_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(console.router)
    app.mount(console.STATIC_URL, console.static, name="console-static")

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Health",
        operation_id="getHealth",
        response_model=None,  # the answer as written below; documented by Health
        responses={200: {"model": Health, "description": "The database answers."},
                   422: {"model": ErrorBody, "description": f"{InvalidInput.code} Invalid input: a query string "
                                                            "that is not UTF-8."},
                   503: {"model": ErrorBody,
                         "description": "90503 Service unavailable: the database does not answer."}},
    )
    async def healthz() -> dict[str, Any]:
        """200 when the database answers, 503 when it does not; with replicas, each one's state (ok,
        lagging or down: only ok ones serve reads) and lag in seconds."""
        try:
            async with database.transaction(write=False) as tx:
                await tx.fetchval(PING[database.dialect])
        except Exception:
            raise ServiceUnavailable({"database": ["The database does not answer."]}) from None
        if reads is not None:
            return {"status": "ok", "replicas": reads.report()}
        return {"status": "ok"}

    if settings.metrics:
        app.add_route("/metrics", exposition.endpoint, include_in_schema=False)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> Response:
        page = get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js", with_google_fonts=False,
                              redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png")
        page.headers["Content-Security-Policy"] = REDOC_POLICY
        return page

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's way to shape the document
    return app


async def _housekeeping(database: Database, stop: asyncio.Event) -> None:
    """Every few minutes: drop Idempotency-Keys past their time. Failures wait for the next round."""
    while not stop.is_set():
        try:
            await purge_expired(database)
        except Exception:
            logging.getLogger("footfall").warning("housekeeping: purging expired Idempotency-Keys failed",
                                                  exc_info=True)
        await pause(stop, HOUSEKEEPING_INTERVAL)


async def _replay(_: Request, replay: Exception) -> Response:
    """The first answer to a request repeated with its Idempotency-Key."""
    assert isinstance(replay, Replay)  # registered for Replay alone
    return Response(
        replay.body, status_code=replay.status_code, media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, shaped for client generators: bodies as JSON only (the forms every body also
    takes, see RequestBodyMiddleware, are told in each description: a generator offered them sends one,
    and a form has no null), the bearer token every API route needs (see http.routing), and the headers
    every answer carries."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                             servers=SERVERS, license_info=LICENSE, tags=TAGS)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["HTTPBearer"] = BEARER_SCHEME
        components["headers"] = RESPONSE_HEADERS
        schema["security"] = [{"HTTPBearer": []}]
        for route, path in schema["paths"].items():
            for operation in path.values():
                api = route.startswith(API_PREFIX)
                operation["security"] = [{"HTTPBearer": []}] if api else []  # /healthz needs none
                if "requestBody" in operation:
                    operation["description"] = operation.get("description", "") + FORMS_NOTE
                _declare_headers(operation, api=api)
        app.openapi_schema = schema
    return app.openapi_schema


def _declare_headers(operation: dict[str, Any], api: bool) -> None:
    """Each answer's headers, by reference to components/headers: X-Request-Id on every one; on an API
    route's, the rate limit's and those of its status; and Idempotent-Replayed on the success of a route
    that takes an Idempotency-Key (only answers below 400 are stored, and so replayed)."""
    idempotent = any(parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
                     for parameter in operation.get("parameters", []))
    for status, response in operation["responses"].items():
        names = ["X-Request-Id"]
        if api:
            names += [*RATE_LIMIT_HEADERS, *HEADERS_BY_STATUS.get(status, ())]
        if idempotent and status.startswith("2"):
            names.append("Idempotent-Replayed")
        headers = response.setdefault("headers", {})
        for name in names:
            headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})
