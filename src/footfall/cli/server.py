"""Running Footfall: serve, worker and migrate (status is status.py's, light enough to start at once).

What only serving or delivering needs (uvicorn, metrics, the delivery worker) is imported by the
command that uses it, so `migrate` and `status` start without it."""

import asyncio
import json
import logging
import os
import signal
import sys
import time
from typing import Any

import click

from footfall.cli.common import database_url_option, read_settings
from footfall.config import Settings
from footfall.db import DATABASE_ERRORS, backend, migrate, open_database, unreachable
from footfall.kit import logs

log = logging.getLogger("footfall")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings in `footfall serve` (bench/floor.py serves its floor with the same): every
    process logs as kit.logs configures it, and Footfall writes the request lines (http.requestlog)."""
    return {"timeout_graceful_shutdown": 30, "access_log": False,
            "log_config": logs.dict_config(settings.log_format, settings.log_level)}


metrics_port_option = click.option(
    "--metrics-port", type=click.IntRange(1, 65535), envvar="FOOTFALL_METRICS_PORT", default=None,
    help="Serve Prometheus metrics at /metrics on this port of its own (else FOOTFALL_METRICS_PORT); "
         "FOOTFALL_METRICS=1 serves them on the API's port instead.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="The port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Processes.")
@click.option("--no-worker", is_flag=True, help="Do not deliver webhooks from this process (run `footfall worker`).")
@metrics_port_option
@database_url_option
def serve(host: str, port: int, workers: int, no_worker: bool, metrics_port: int | None, database_url: str) -> None:
    """Serve the API (migrating the database first); delivers webhooks too unless --no-worker."""
    import uvicorn

    from footfall import exposition, metrics

    _run_migrations(database_url, wait=True)
    # Worker processes build their app from the environment (create_app reads Settings).
    os.environ["FOOTFALL_DATABASE_URL"] = database_url
    if no_worker:
        os.environ["FOOTFALL_WEBHOOK_WORKER"] = "0"
    if metrics_port is not None:
        os.environ["FOOTFALL_METRICS_PORT"] = str(metrics_port)
    settings = read_settings()
    standalone = None
    if settings.records_metrics:
        metrics.prepare_directory()  # before the workers start: they record there
    if metrics_port is not None:
        standalone = exposition.serve_in_thread(host, metrics_port, settings)
    try:
        uvicorn.run("footfall.app:create_app", factory=True, host=host, port=port, workers=workers,
                    **uvicorn_options(settings))
    finally:
        if standalone is not None:
            standalone.stop()


@click.command()
@metrics_port_option
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="The address the metrics port listens on (0.0.0.0 for every interface).")
@database_url_option
def worker(metrics_port: int | None, metrics_host: str, database_url: str) -> None:
    """Deliver webhooks, without serving the API. SIGTERM finishes what is in flight, then exits."""
    from footfall import exposition, metrics

    _run_migrations(database_url, wait=True)
    settings = Settings(database_url=database_url)
    standalone = None
    if metrics_port is not None:
        metrics.prepare_directory()
        metrics.enable()
        standalone = exposition.serve_in_thread(metrics_host, metrics_port, settings)
    try:
        asyncio.run(_deliver(settings))
    finally:
        if standalone is not None:
            standalone.stop()


async def _deliver(settings: Settings) -> None:
    from footfall import metrics
    from footfall.webhooks.delivery import DeliveryWorker

    database = open_database(settings.database_url, pool_size=settings.database_pool_size,
                             statement_cache_size=settings.database_statement_cache_size)
    delivery_worker = DeliveryWorker(database, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("footfall worker: delivering webhooks")
    background = []
    if settings.retention_days:
        from footfall.visits.retention import keep_days

        background.append(asyncio.create_task(keep_days(database, settings.retention_days, stop)))
    if metrics.current is not None:
        background.append(asyncio.create_task(metrics.sample_pool(metrics.current, database, stop)))
    from footfall.rules.lapses import find_lapses

    background.append(asyncio.create_task(find_lapses(database, settings.rules_interval, stop)))
    try:
        await delivery_worker.run(stop)
        await asyncio.gather(*background)
    finally:
        await delivery_worker.close()
        await database.close()
    log.info("footfall worker: stopped")


def _run_migrations(database_url: str, *, wait: bool = False) -> None:
    """Migrates; with `wait`, a PostgreSQL server that does not answer yet is waited for (a service
    starting beside its database), saying so every few seconds, up to FOOTFALL_DATABASE_START_TIMEOUT.
    An error of the database that answered (a migration it refused, a wrong password) ends it at once."""

    async def run() -> None:
        is_postgresql = backend(database_url) == "postgresql"
        deadline = time.monotonic() + Settings().database_start_timeout
        while True:
            try:
                await migrate(database_url)
                return
            except DATABASE_ERRORS as error:
                # Only a database that does not answer is waited for: a migration it refused fails now.
                if not (wait and is_postgresql and unreachable(error) and time.monotonic() < deadline):
                    raise
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                log.warning("database not reachable (%s); retrying in 2 s", reason)
                await asyncio.sleep(2)

    def stop_waiting(signum: int, _frame: object) -> None:
        # An orchestrator stopping a service that still waits for its database: a clean exit, not
        # the kill that SIGTERM's default action is. uvicorn and the worker install their own after.
        log.info("stopped while waiting for the database")
        sys.exit(0)

    previous = signal.signal(signal.SIGTERM, stop_waiting)
    try:
        asyncio.run(run())
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    except DATABASE_ERRORS as error:
        raise click.ClickException(f"database: {str(error).splitlines()[0]}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("migrate")
@database_url_option
def migrate_command(database_url: str) -> None:
    """Bring the database schema up to date."""
    _run_migrations(database_url)
    click.echo(json.dumps({"migrated": True}))
