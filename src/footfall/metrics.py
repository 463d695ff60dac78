"""What Footfall records for Prometheus (prometheus-client), only when asked for (exposition serves it).

Every process records into files under PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess
mode), so the process that answers a scrape reports the sum over all of `serve --workers N`. The
connection pools' figures are sampled by each process every second."""

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from footfall.db import Database
from footfall.kit.time import pause

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
