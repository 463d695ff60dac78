"""Prometheus metrics served: FOOTFALL_METRICS=1 serves them at /metrics on the API's port,
`--metrics-port` on a port of their own. A scrape sums what every process recorded (metrics) and reads
the outbox's figures from the database (every process and host shares them)."""

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from footfall.config import Settings
from footfall.db import Database, open_database
from footfall.webhooks.outbox import Outbox, outbox


class _OutboxCollector:
    def __init__(self, deliveries: Outbox) -> None:
        self.deliveries = deliveries

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily("footfall_webhook_deliveries_pending", "Webhook deliveries waiting to be sent.",
                                value=self.deliveries.pending)
        yield GaugeMetricFamily("footfall_webhook_deliveries_failed", "Webhook deliveries that failed for good.",
                                value=self.deliveries.failed)
        yield GaugeMetricFamily("footfall_webhook_oldest_pending_seconds",
                                "Age of the oldest pending webhook delivery (0 when none is pending).",
                                value=self.deliveries.oldest_pending_seconds or 0.0)


async def exposition(database: Database) -> bytes:
    """The scrape's answer: every process's figures summed, and the outbox as the database has it now."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    async with database.transaction(write=False) as tx:
        registry.register(_OutboxCollector(await outbox(tx)))
    return generate_latest(registry)


async def endpoint(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(await exposition(request.app.state.database), media_type=CONTENT_TYPE_LATEST)


def standalone_app(settings: Settings) -> Starlette:
    """/metrics alone, for --metrics-port: a port of its own, which a load balancer in front of the API
    does not expose."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.database = open_database(settings.database_url, pool_size=1,
                                           statement_cache_size=settings.database_statement_cache_size)
        yield
        await app.state.database.close()

    return Starlette(routes=[Route("/metrics", endpoint)], lifespan=lifespan)


def serve_in_thread(host: str, port: int, settings: Settings) -> "StandaloneServer":
    """`footfall serve --metrics-port`: the metrics port served from a thread of the parent process, which
    outlives every worker process."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(standalone_app(settings), host=host, port=port,
                                           log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="footfall-metrics", daemon=True)
    thread.start()
    return StandaloneServer(server, thread)


class StandaloneServer:
    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
