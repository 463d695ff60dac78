"""The `footfall` command: serve, migrate, and the admin commands (one JSON object on stdout each)."""

import asyncio
import csv
import json
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from pydantic import BaseModel, ValidationError

from footfall.accounts import service as accounts
from footfall.config import Settings
from footfall import metrics
from footfall.contacts import service as contacts
from footfall.contacts.schemas import ContactCreate, ContactOut
from footfall.db import DATABASE_ERRORS, Database, Tx, backend, migrate, open_database
from footfall.errors import ContactNotFound, FootfallError
from footfall.kit import logs
from footfall.kit.time import format_iso8601, parse_iso8601, utcnow
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate, ShopOut
from footfall.visits.export import FORMATS as EXPORT_FORMATS
from footfall.webhooks.delivery import DeliveryWorker

DEFAULT_DATABASE_URL = "sqlite:///footfall.db"
log = logging.getLogger("footfall")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings in `footfall serve` (bench/floor.py serves its floor with the same): every
    process logs as kit.logs configures it, and Footfall writes the request lines (kit.requestlog)."""
    return {"timeout_graceful_shutdown": 30, "access_log": False,
            "log_config": logs.dict_config(settings.log_format, settings.log_level)}


metrics_port_option = click.option(
    "--metrics-port", type=click.IntRange(1, 65535), envvar="FOOTFALL_METRICS_PORT", default=None,
    help="Serve Prometheus metrics at /metrics on this port of its own (else FOOTFALL_METRICS_PORT); "
         "FOOTFALL_METRICS=1 serves them on the API's port instead.")

database_url_option = click.option(
    "--database-url",
    envvar="FOOTFALL_DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///PATH or postgresql://USER@HOST/DB; else FOOTFALL_DATABASE_URL.",
)


class CommandError(Exception):
    """Bad input to an admin command: one line on stderr, exit 1, nothing written."""


def _parse_uuid(value: str, option: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise CommandError(f"{option}: not a UUID: {value!r}") from None


def _validate(model: type[BaseModel], **fields: Any) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "input"
        raise CommandError(f"{field}: {first['msg'].removeprefix('Value error, ')}") from None


@asynccontextmanager
async def _migrated(database_url: str, pool_size: int) -> AsyncIterator[Database]:
    """The database, its schema brought up to date first; closed when the command is done."""
    await migrate(database_url)
    database = open_database(database_url, pool_size=pool_size)
    try:
        yield database
    finally:
        await database.close()


def _run_async(work: Coroutine[Any, Any, Any], *bad_input: type[Exception]) -> Any:
    """Runs a command's work; bad input (LookupError, and the kinds given) and database errors end
    the command with one line on stderr."""
    try:
        return asyncio.run(work)
    except (LookupError, *bad_input) as error:
        raise_usage(str(error))
    except DATABASE_ERRORS as error:
        raise_usage(f"database: {str(error).splitlines()[0]}")


def _run(database_url: str, work: Callable[[Tx], Awaitable[dict[str, Any]]]) -> None:
    """Brings the schema up to date, runs `work` in one transaction and prints its result as JSON."""
    click.echo(json.dumps(_transact(database_url, work)))


def _transact(database_url: str, work: Callable[[Tx], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Brings the schema up to date and runs `work` in one transaction: its result."""

    async def run() -> dict[str, Any]:
        async with _migrated(database_url, pool_size=1) as database, database.transaction(write=True) as tx:
            return await work(tx)

    return _run_async(run(), CommandError, ValueError)


@click.group()
@click.version_option(package_name="footfall")
def main() -> None:
    """Footfall: a self-hosted implementation of Leat's Visits API."""
    # Every command's log lines (migrations, the server, the worker) as FOOTFALL_LOG_FORMAT and
    # FOOTFALL_LOG_LEVEL say; a command's own output stays on stdout.
    settings = _settings()
    logs.configure(settings.log_format, settings.log_level)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="The port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Processes.")
@click.option("--no-worker", is_flag=True, help="Do not deliver webhooks from this process (run `footfall worker`).")
@metrics_port_option
@database_url_option
def serve(host: str, port: int, workers: int, no_worker: bool, metrics_port: int | None, database_url: str) -> None:
    """Serve the API (migrating the database first); delivers webhooks too unless --no-worker."""
    import uvicorn

    _run_migrations(database_url, wait=True)
    # Worker processes build their app from the environment (create_app reads Settings).
    os.environ["FOOTFALL_DATABASE_URL"] = database_url
    if no_worker:
        os.environ["FOOTFALL_WEBHOOK_WORKER"] = "0"
    if metrics_port is not None:
        os.environ["FOOTFALL_METRICS_PORT"] = str(metrics_port)
    settings = _settings()
    standalone = None
    if settings.records_metrics:
        metrics.prepare_directory()  # before the workers start: they record there
    if metrics_port is not None:
        standalone = metrics.serve_in_thread(host, metrics_port, database_url)
    try:
        uvicorn.run("footfall.app:create_app", factory=True, host=host, port=port, workers=workers,
                    **uvicorn_options(settings))
    finally:
        if standalone is not None:
            standalone.stop()


@main.command()
@metrics_port_option
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="The address the metrics port listens on (0.0.0.0 for every interface).")
@database_url_option
def worker(metrics_port: int | None, metrics_host: str, database_url: str) -> None:
    """Deliver webhooks, without serving the API. SIGTERM finishes what is in flight, then exits."""
    _run_migrations(database_url, wait=True)
    standalone = None
    if metrics_port is not None:
        metrics.prepare_directory()
        metrics.enable()
        standalone = metrics.serve_in_thread(metrics_host, metrics_port, database_url)
    try:
        asyncio.run(_deliver(Settings(database_url=database_url)))
    finally:
        if standalone is not None:
            standalone.stop()


async def _deliver(settings: Settings) -> None:
    database = open_database(settings.database_url, pool_size=settings.database_pool_size)
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
    try:
        await delivery_worker.run(stop)
        await asyncio.gather(*background)
    finally:
        await delivery_worker.close()
        await database.close()
    log.info("footfall worker: stopped")


def _run_migrations(database_url: str, *, wait: bool = False) -> None:
    """Migrates; with `wait`, a PostgreSQL server that does not answer yet is waited for (a service
    starting beside its database), saying so every few seconds, up to FOOTFALL_DATABASE_START_TIMEOUT."""

    async def run() -> None:
        is_postgresql = backend(database_url) == "postgresql"
        deadline = time.monotonic() + Settings().database_start_timeout
        while True:
            try:
                await migrate(database_url)
                return
            except DATABASE_ERRORS as error:
                if not (wait and is_postgresql and time.monotonic() < deadline):
                    raise
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                log.warning("database not reachable (%s); retrying in 2 s", reason)
                await asyncio.sleep(2)

    try:
        asyncio.run(run())
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    except DATABASE_ERRORS as error:
        raise click.ClickException(f"database: {str(error).splitlines()[0]}") from None


@main.command("migrate")
@database_url_option
def migrate_command(database_url: str) -> None:
    """Bring the database schema up to date."""
    _run_migrations(database_url)
    click.echo(json.dumps({"migrated": True}))


@main.group("accounts")
def accounts_group() -> None:
    """Accounts: each one's visits, shops and contacts are its own."""


def _account_fields(account: Any) -> dict[str, Any]:
    return {"uuid": str(account.uuid), "name": account.name, "created_at": format_iso8601(account.created_at)}


@accounts_group.command("create")
@click.option("--name", required=True, help="What the account is called (1 to 255 characters).")
@database_url_option
def accounts_create(name: str, database_url: str) -> None:
    """Create an account and print it: {"uuid", "name", "created_at"}."""
    if not name.strip() or len(name) > 255 or "\x00" in name:
        raise_usage("--name: must be 1 to 255 characters")

    async def work(tx: Tx) -> dict[str, Any]:
        return _account_fields(await accounts.create_account(tx, name))

    _run(database_url, work)


@accounts_group.command("list")
@database_url_option
def accounts_list(database_url: str) -> None:
    """Print every account, oldest first: {"data": [{"uuid", "name", "created_at"}, ...]}."""

    async def work(tx: Tx) -> dict[str, Any]:
        return {"data": [_account_fields(account) for account in await accounts.list_accounts(tx)]}

    _run(database_url, work)


@main.group("tokens")
def tokens_group() -> None:
    """API tokens (personal access tokens)."""


@tokens_group.command("create")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@click.option("--name", default=None, help="What the token is for, as tokens list shows it.")
@click.option("--expires-at", default=None, help="ISO 8601; no expiry when left out.")
@click.option("--read-only", is_flag=True, help="Refuse every write (403) with this token.")
@database_url_option
def tokens_create(
    account_uuid: str, name: str | None, expires_at: str | None, read_only: bool, database_url: str
) -> None:
    """Create a token. It is printed once; only its hash is stored."""
    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))
    expires = _or_exit(lambda: _parse_expiry(expires_at)) if expires_at else None
    if name is not None and (len(name) > 255 or "\x00" in name):
        raise_usage("--name: must be at most 255 characters")

    async def work(tx: Tx) -> dict[str, Any]:
        account = await accounts.get_account(tx, account_id)
        issued = await accounts.issue_token(tx, account, name=name, expires_at=expires, read_only=read_only)
        return {**_token_json(issued.token), "token": issued.secret, "account_uuid": str(account.uuid)}

    _run(database_url, work)


def _token_json(token) -> dict[str, Any]:
    def moment(value):
        return format_iso8601(value) if value else None

    return {
        "uuid": str(token.uuid),
        "name": token.name,
        "read_only": token.read_only,
        "expires_at": moment(token.expires_at),
        "revoked_at": moment(token.revoked_at),
        "last_used_at": moment(token.last_used_at),
        "created_at": moment(token.created_at),
    }


@tokens_group.command("list")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@database_url_option
def tokens_list(account_uuid: str, database_url: str) -> None:
    """The account's tokens (never the tokens themselves): {"data": [...]}."""
    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))

    async def work(tx: Tx) -> dict[str, Any]:
        tokens = await accounts.list_tokens(tx, await accounts.get_account(tx, account_id))
        return {"data": [_token_json(token) for token in tokens]}

    _run(database_url, work)


def _parse_expiry(value: str):
    try:
        moment = parse_iso8601(value)
    except ValueError as error:
        raise CommandError(f"--expires-at: {error}") from None
    if moment <= utcnow():
        raise CommandError("--expires-at: must be in the future")
    return moment


@tokens_group.command("revoke")
@click.argument("token_uuid")
@database_url_option
def tokens_revoke(token_uuid: str, database_url: str) -> None:
    """Revoke a token: it is refused from its next request on."""
    uuid = _or_exit(lambda: _parse_uuid(token_uuid, "TOKEN_UUID"))

    async def work(tx: Tx) -> dict[str, Any]:
        return _token_json(await accounts.revoke_token(tx, uuid))

    _run(database_url, work)


@main.group("shops")
def shops_group() -> None:
    """Shops, where visits happen."""


@shops_group.command("create")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@click.option("--name", required=True, help="The shop's name, as visits show it.")
@click.option("--type", "shop_type", default="physical", show_default=True, help="physical or web.")
@click.option("--reference", default=None, help="Your own reference for the shop, e.g. a branch code.")
@database_url_option
def shops_create(account_uuid: str, name: str, shop_type: str, reference: str | None, database_url: str) -> None:
    """Create a shop in the account and print it as the API shows it."""
    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))
    data = _or_exit(lambda: _validate(ShopCreate, name=name, type=shop_type, reference=reference))

    async def work(tx: Tx) -> dict[str, Any]:
        shop = await shops.create(tx, await accounts.get_account(tx, account_id), data)
        return ShopOut.model_validate(shop).model_dump(mode="json")

    _run(database_url, work)


@shops_group.command("list")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@database_url_option
def shops_list(account_uuid: str, database_url: str) -> None:
    """Print the account's shops by name: {"data": [...]}, each as the API shows it."""
    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))

    async def work(tx: Tx) -> dict[str, Any]:
        found = await shops.list_all(tx, await accounts.get_account(tx, account_id))
        return {"data": [ShopOut.model_validate(shop).model_dump(mode="json") for shop in found]}

    _run(database_url, work)


@main.command("status")
@database_url_option
def status(database_url: str) -> None:
    """Print what an operator checks, as JSON, without changing anything: whether the database
    answers, whether its schema is at the newest revision, and the webhook deliveries pending and
    failed, with the age of the oldest pending one. Exits 1 when the database does not answer or
    its schema is behind."""
    from footfall.db.migrate import schema_revisions
    from footfall.webhooks.service import outbox

    async def run() -> dict[str, Any]:
        current, head = await schema_revisions(database_url)
        database = open_database(database_url, pool_size=1)
        try:
            async with database.transaction(write=False) as tx:
                deliveries = await outbox(tx) if current == head else None
        finally:
            await database.close()
        return {
            "database": "reachable",
            "schema": {"revision": current, "newest": head, "at_newest": current == head},
            "deliveries": None if deliveries is None else {
                "pending": deliveries.pending, "failed": deliveries.failed,
                "oldest_pending_seconds": None if deliveries.oldest_pending_seconds is None else
                round(deliveries.oldest_pending_seconds, 1),
            },
        }

    try:
        result = asyncio.run(run())
    except DATABASE_ERRORS as error:
        click.echo(json.dumps({"database": f"unreachable: {type(error).__name__}: {error}"[:500],
                               "schema": None, "deliveries": None}))
        sys.exit(1)
    click.echo(json.dumps(result))
    if not result["schema"]["at_newest"]:
        sys.exit(1)


@main.group("webhooks")
def webhooks_group() -> None:
    """Webhooks: a local receiver to try them with."""


@webhooks_group.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=9000, show_default=True, type=click.IntRange(1, 65535), help="The port to listen on.")
@click.option("--secret", default=None, envvar="FOOTFALL_LISTEN_SECRET",
              help="The subscription's signing secret (whsec_...): both signatures of each delivery are "
                   "checked with it, and a delivery whose signature is wrong is answered 400.")
def webhooks_listen(host: str, port: int, secret: str | None) -> None:
    """Receive webhook deliveries here and print each one (a line, then its body), for development:
    subscribe http://HOST:PORT/anything with FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS=1 set for the server."""
    import uvicorn

    from footfall.webhooks.listen import listener

    click.echo(f"listening on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    uvicorn.run(listener(secret), host=host, port=port, log_level="warning")


@main.group("contacts")
def contacts_group() -> None:
    """Contacts, who visit."""


@contacts_group.command("create")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@click.option("--email", required=True, help="The contact's email (kept lower-cased).")
@database_url_option
def contacts_create(account_uuid: str, email: str, database_url: str) -> None:
    """Create a contact (or print the account's existing contact with this email)."""
    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))
    data = _or_exit(lambda: _validate(ContactCreate, email=email))

    async def work(tx: Tx) -> dict[str, Any]:
        contact, _ = await contacts.create(tx, await accounts.get_account(tx, account_id), data)
        return ContactOut.model_validate(contact).model_dump(mode="json")

    _run(database_url, work)


@contacts_group.command("delete")
@click.argument("contact_uuid")
@click.option("--gdpr", is_flag=True, help="Also erase the email from every stored event, delivery log and answer.")
@database_url_option
def contacts_delete(contact_uuid: str, gdpr: bool, database_url: str) -> None:
    """Delete a contact and its visits, as DELETE /contacts/{uuid} does (type GDPR with --gdpr)."""
    uuid = _or_exit(lambda: _parse_uuid(contact_uuid, "CONTACT_UUID"))

    async def work(tx: Tx) -> dict[str, Any]:
        try:
            account = await accounts.get_account(tx, await contacts.account_of(tx, uuid))
            await contacts.delete(tx, account, uuid, gdpr=gdpr)
        except ContactNotFound:
            raise CommandError(f"no contact {uuid}") from None
        return {"deleted": str(uuid), "type": "GDPR" if gdpr else "DEFAULT"}

    _run(database_url, work)


@main.group("visits")
def visits_group() -> None:
    """Visits."""


@visits_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@database_url_option
def visits_import(file: Path, account_uuid: str, database_url: str) -> None:
    """Import visits from FILE (.csv with a header row, or .ndjson/.jsonl), with the API's field names.

    Bad rows are reported on stderr by line and skipped; rows whose external_id exists are skipped
    and counted; the summary is one JSON object on stdout. Webhook events go out as for the API.
    """
    from footfall.visits.importer import CountingLines, import_visits, read_rows

    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))
    if file.suffix.lower() not in (".csv", ".ndjson", ".jsonl"):
        raise_usage(f"{file.name}: the file must end in .csv, .ndjson or .jsonl")

    def report(line: int, reason: str) -> None:
        click.echo(f"line {line}: {reason}", err=True)

    async def run() -> dict[str, Any]:
        async with _migrated(database_url, pool_size=4) as database:
            async with database.transaction(write=False) as tx:
                account = await accounts.get_account(tx, account_id)
            size = file.stat().st_size
            with open(file, encoding="utf-8", newline="") as handle, click.progressbar(
                length=size, label="importing", file=sys.stderr
            ) as bar:
                lines = CountingLines(handle)

                def progress() -> None:
                    bar.update(lines.read - bar.pos)

                summary = await import_visits(database, account, read_rows(file, lines), report, progress)
                bar.update(size - bar.pos)
            return summary.as_json()

    result = _run_async(run(), ValueError, UnicodeDecodeError, csv.Error)
    click.echo(json.dumps(result))


@visits_group.command("export")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@click.option("--format", "format_", type=click.Choice(EXPORT_FORMATS), default="ndjson", show_default=True, help="NDJSON (an object a line) or CSV (a header row).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write; stdout when left out.")
@click.option("--filter", "filters", multiple=True, metavar="NAME=VALUE",
              help="A filter of GET /visits, e.g. shop_uuid=..., 'created_at[gte]=2024-05-01' (repeatable).")
@database_url_option
def visits_export(account_uuid: str, format_: str, output: Path | None, filters: tuple[str, ...], database_url: str) -> None:
    """Export the account's visits (those passing the filters) as NDJSON or CSV, in the columns
    `footfall visits import` reads; a progress bar on stderr. The summary goes to stderr too, so
    stdout holds only the visits."""
    from footfall.visits.export import export
    from footfall.visits.repository import VisitRepository
    from footfall.visits.schemas import read_query_filters

    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))
    query = dict(item.split("=", 1) if "=" in item else (item, "") for item in filters)
    try:
        chosen = read_query_filters(query)
    except FootfallError as error:
        raise_usage("; ".join(f"{name}: {' '.join(messages)}" for name, messages in (error.errors or {}).items()))

    async def run(sink) -> dict[str, Any]:
        async with _migrated(database_url, pool_size=2) as database:
            async with database.transaction(write=False) as tx:
                account = await accounts.get_account(tx, account_id)
                total = await VisitRepository(tx).filtered_count(account.id, chosen)
            written, started = 0, time.monotonic()
            with click.progressbar(length=total, label="exporting", file=sys.stderr) as bar:
                async for chunk in export(database, account.id, chosen, format_):
                    sink.write(chunk.data)
                    written += chunk.visits
                    bar.update(chunk.visits)
            seconds = time.monotonic() - started
            return {"exported": written, "seconds": round(seconds, 3),
                    "rows_per_second": round(written / seconds) if seconds else 0}

    if output is None:
        result = _run_async(run(sys.stdout.buffer))
        sys.stdout.buffer.flush()
    else:
        with open(output, "wb") as sink:
            result = _run_async(run(sink))
    click.echo(json.dumps(result), err=True)


@visits_group.command("purge")
@click.option("--account", "account_uuid", required=True, help="Account UUID.")
@click.option("--before", required=True, help="Delete the visits created before this time (ISO 8601).")
@database_url_option
def visits_purge(account_uuid: str, before: str, database_url: str) -> None:
    """Delete the account's visits created before a time, in short transactions of 1,000 (requests go
    on meanwhile), leaving tombstones for the changes feed; a progress bar on stderr."""
    from footfall.visits.repository import VisitFilter, VisitRepository
    from footfall.visits.retention import purge

    account_id = _or_exit(lambda: _parse_uuid(account_uuid, "--account"))
    try:
        cutoff = parse_iso8601(before)
    except ValueError:
        raise_usage("--before: must be an ISO 8601 date or time, e.g. 2024-01-01")

    async def run() -> dict[str, Any]:
        async with _migrated(database_url, pool_size=2) as database:
            async with database.transaction(write=False) as tx:
                account = await accounts.get_account(tx, account_id)
                doomed = await VisitRepository(tx).filtered_count(
                    account.id, VisitFilter(ranges=(("created_at", "lt", cutoff),)))
            started = time.monotonic()
            with click.progressbar(length=doomed, label="purging", file=sys.stderr) as bar:
                purged = await purge(database, account, cutoff, bar.update)
            return {"purged": purged, "before": format_iso8601(cutoff), "seconds": round(time.monotonic() - started, 3)}

    result = _run_async(run())
    click.echo(json.dumps(result))


@main.command()
@click.option("--env", "as_env", is_flag=True,
              help="Print shell variables instead (B, H, C, S, V, W: the README's examples use them): "
                   'eval "$(footfall demo --env)".')
@database_url_option
def demo(as_env: bool, database_url: str) -> None:
    """Create a demo account with data (once) and print a new token for it, a curl line, and the
    uuids the README's examples name."""
    from footfall.demo import ensure_demo, examples

    async def work(tx: Tx) -> dict[str, Any]:
        account, created = await ensure_demo(tx)
        issued = await accounts.issue_token(tx, account, name="demo")
        return {
            "account_uuid": str(account.uuid),
            "created": created,
            "token": issued.secret,
            "curl": f"curl -s -H 'Authorization: Bearer {issued.secret}' "
            "http://127.0.0.1:8000/api/v3/oauth/clients/visits",
            **await examples(tx, account),
        }

    if not as_env:
        _run(database_url, work)
        return
    made = _transact(database_url, work)
    variables = {"B": "http://127.0.0.1:8000/api/v3/oauth/clients", "H": f"Authorization: Bearer {made['token']}",
                 "C": made["contact_uuid"], "S": made["shop_uuid"], "V": made["visit_uuid"],
                 "W": made["subscription_uuid"]}
    click.echo("\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items()))


def _settings() -> Settings:
    """The settings from the environment; a bad value ends the command with one line naming it."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        raise_usage(f"FOOTFALL_{str(first['loc'][0]).upper()}: {first['msg']}")
        raise


def _or_exit(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except CommandError as error:
        raise_usage(str(error))


def raise_usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
