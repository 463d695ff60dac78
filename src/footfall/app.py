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
from sqlalchemy import literal, select

from footfall import __version__, exposition, metrics
from footfall.accounts.service import TokenCache
from footfall.config import Settings
from footfall.console import routes as console
from footfall.contacts.routes import router as contacts_router
from footfall.db import Database, Statement, open_database, per_dialect
from footfall.db.postgres import PostgresDatabase
from footfall.db.replicas import ReadRouting
from footfall.errors import ErrorBody, ServiceUnavailable
from footfall.http.body import FORM_TYPE, MULTIPART_TYPE, RequestBodyMiddleware
from footfall.http.handlers import install_error_handlers
from footfall.http.paths import TrailingSlashMiddleware
from footfall.http.ratelimit import InProcessLimiter, RateLimitMiddleware, RedisLimiter
from footfall.http.requestid import RequestIdMiddleware
from footfall.http.requestlog import RequestLogMiddleware
from footfall.http.routing import BEARER_SCHEME
from footfall.idempotency.service import Replay, purge_expired
from footfall.kit.time import pause
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
PING: dict[str, Statement] = per_dialect(lambda dialect: Statement(select(literal(1).label("one")), dialect=dialect))


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
            stack.callback(stop.set)
            yield

    # /docs and /redoc with Swagger UI and ReDoc served from fastapi-offline's package, not a CDN: they
    # render on a machine without internet.
    app = FastAPIOffline(
        title="Footfall",
        version=__version__,
        description="A self-hosted implementation of Leat's Visits API.",
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
    for router in (stats_router, visits_router, shops_router, contacts_router, contact_changes_router, webhooks_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(console.router)
    app.mount(console.STATIC_URL, console.static, name="console-static")

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Health",
        responses={503: {"model": ErrorBody,
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
    """FastAPI's schema, plus the form encodings every body also accepts (see RequestBodyMiddleware) and
    the bearer token every API route needs (see http.routing)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["HTTPBearer"] = BEARER_SCHEME
        for route, path in schema["paths"].items():
            for operation in path.values():
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    content[FORM_TYPE] = content[MULTIPART_TYPE] = content["application/json"]
                if route.startswith(API_PREFIX):  # every API route needs a token
                    operation["security"] = [{"HTTPBearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
