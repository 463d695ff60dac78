"""Prometheus metrics (prometheus-client), recorded only when asked for: FOOTFALL_METRICS=1 serves them
at /metrics on the API's port, `--metrics-port` on a port of their own.

Every process records into files under PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess
mode), so the process that answers a scrape reports the sum over all of `serve --workers N`. The
outbox's figures are read from the database at each scrape (every process and host shares them); the
connection pools' are sampled by each process every second."""

import asyncio
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from footfall.db import Database, open_database
from footfall.kit.time import pause
from footfall.webhooks.service import Outbox, outbox

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a cached show (about 1 ms) to the slowest export chunk.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
POOL_SAMPLE_SECONDS = 1.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """What Footfall records; one instance a process (`enable`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "footfall_http_requests", "HTTP requests answered, by route template, method and status.",
            ["method", "route", "status"])
        self.request_seconds = Histogram(
            "footfall_http_request_duration_seconds", "Time from a request's arrival to the end of its answer.",
            ["method", "route"], buckets=LATENCY_BUCKETS)
        self.connections_in_use = Gauge(
            "footfall_database_connections_in_use", "Database connections in use (sampled every second).",
            multiprocess_mode="livesum")
        self.connection_waiters = Gauge(
            "footfall_database_connection_waiters",
            "Transactions waiting for a database connection (sampled every second).", multiprocess_mode="livesum")
        self.delivery_attempts = Counter(
            "footfall_webhook_delivery_attempts",
            "Webhook delivery attempts by outcome: succeeded, retrying (failed, another attempt is due), "
            "failed (failed for good).", ["outcome"])
        self.rate_limited = Counter("footfall_rate_limited_requests", "Requests answered 429 by the rate limit.")
        self.imported_visits = Counter(
            "footfall_imported_visits",
            "Visits of POST /visits/batch by outcome: created, retried (already stored), failed.", ["outcome"])
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Counts an answered request. Its series are kept per (method, route, status): `labels()`
        each time cost as much as the counting."""
        if method not in METHODS:
            method = "other"  # a client's made-up method must not make series without end
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (self.requests.labels(method, route, status),
                                                  self.request_seconds.labels(method, route))
        series[0].inc()
        series[1].observe(seconds)


current: Metrics | None = None


def prepare_directory() -> str:
    """The directory every process of a server records into, emptied of an earlier run's files (which
    would add to this run's counts): PROMETHEUS_MULTIPROC_DIR when set, else a new one. Call it in the
    parent process, before its workers start."""
    given = os.environ.get(DIRECTORY_VARIABLE)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.db"):
            old.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="footfall-metrics-"))
        os.environ[DIRECTORY_VARIABLE] = str(directory)
    return str(directory)


def enable() -> Metrics:
    """This process records from now on (once; later calls return the same)."""
    global current
    if current is None:
        if DIRECTORY_VARIABLE not in os.environ:
            prepare_directory()
        from prometheus_client import values

        # prometheus-client picks where values live when it is first imported: before the directory was
        # set, they would stay in this process and no scrape would see them.
        if values.ValueClass is values.MutexValue:
            raise RuntimeError(f"prometheus_client was imported before {DIRECTORY_VARIABLE} was set")
        current = Metrics()
    return current


def forget_process() -> None:
    """At a process's end: its gauges leave the sums (its counters stay counted)."""
    if current is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


async def sample_pool(metrics: Metrics, database: Database, stop: asyncio.Event) -> None:
    while not stop.is_set():
        load = database.load()
        metrics.connections_in_use.set(load.in_use)
        metrics.connection_waiters.set(load.waiting)
        await pause(stop, POOL_SAMPLE_SECONDS)


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


def standalone_app(database_url: str) -> Starlette:
    """/metrics alone, for --metrics-port: a port of its own, which a load balancer in front of the API
    does not expose."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.database = open_database(database_url, pool_size=1)
        yield
        await app.state.database.close()

    return Starlette(routes=[Route("/metrics", endpoint)], lifespan=lifespan)


def serve_in_thread(host: str, port: int, database_url: str) -> "StandaloneServer":
    """`footfall serve --metrics-port`: the metrics port served from a thread of the parent process, which
    outlives every worker process."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(standalone_app(database_url), host=host, port=port,
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
