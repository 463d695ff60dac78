"""Visits in bulk: import, export and purge, each with a progress bar on stderr."""

import csv
import json
import sys
import time
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import click

from footfall.accounts import service as accounts
from footfall.cli.common import CommandError, account_option, database_url_option, migrated, run_async
from footfall.errors import FootfallError
from footfall.kit.rendering import EXPORT_FORMATS
from footfall.kit.time import format_iso8601, parse_iso8601


@click.group("visits")
def visits_group() -> None:
    """Visits."""


@visits_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@account_option
@click.option("--fire-rules", is_flag=True,
              help="Send the visit rules' events for what the import reaches (by default the rules count the "
                   "imported visits silently: a history import must not message customers).")
@database_url_option
def visits_import(file: Path, account_uuid: UUID, fire_rules: bool, database_url: str) -> None:
    """Import visits from FILE (.csv with a header row, or .ndjson/.jsonl), with the API's field names.

    Bad rows are reported on stderr by line and skipped; rows whose external_id exists are skipped
    and counted; the summary is one JSON object on stdout. Webhook events go out as for the API,
    except the visit rules' (see --fire-rules).
    """
    from footfall.visits.importer import CountingLines, import_visits, read_rows

    if file.suffix.lower() not in (".csv", ".ndjson", ".jsonl"):
        raise CommandError(f"{file.name}: the file must end in .csv, .ndjson or .jsonl")

    def report(line: int, reason: str) -> None:
        click.echo(f"line {line}: {reason}", err=True)

    async def run() -> dict[str, Any]:
        async with migrated(database_url, pool_size=4) as database:
            async with database.transaction(write=False) as tx:
                account = await accounts.get_account(tx, account_uuid)
            size = file.stat().st_size
            with open(file, encoding="utf-8", newline="") as handle, click.progressbar(
                length=size, label="importing", file=sys.stderr
            ) as bar:
                lines = CountingLines(handle)

                def progress() -> None:
                    bar.update(lines.read - bar.pos)

                summary = await import_visits(database, account, read_rows(file, lines), report, progress,
                                              fire_rules=fire_rules)
                bar.update(size - bar.pos)
            return summary.as_json()

    result = run_async(run(), ValueError, UnicodeDecodeError, csv.Error)
    click.echo(json.dumps(result))


@visits_group.command("export")
@account_option
@click.option("--format", "format_", type=click.Choice(EXPORT_FORMATS), default="ndjson", show_default=True,
              help="NDJSON (an object a line) or CSV (a header row).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write; stdout when left out.")
@click.option("--filter", "filters", multiple=True, metavar="NAME=VALUE",
              help="A filter of GET /visits, e.g. shop_uuid=..., 'created_at[gte]=2024-05-01' (repeatable).")
@database_url_option
def visits_export(
    account_uuid: UUID, format_: str, output: Path | None, filters: tuple[str, ...], database_url: str
) -> None:
    """Export the account's visits (those passing the filters) as NDJSON or CSV, in the columns
    `footfall visits import` reads; a progress bar on stderr. The summary goes to stderr too, so
    stdout holds only the visits."""
    from footfall.visits.export import export
    from footfall.visits.repository import VisitRepository
    from footfall.visits.schemas import read_query_filters

    query = {name: value for name, _, value in (item.partition("=") for item in filters)}
    try:
        chosen = read_query_filters(query)
    except FootfallError as error:
        raise CommandError(
            "; ".join(f"{name}: {' '.join(messages)}" for name, messages in (error.errors or {}).items())
        ) from None

    async def run(sink: IO[bytes]) -> dict[str, Any]:
        async with migrated(database_url, pool_size=2) as database:
            async with database.transaction(write=False) as tx:
                account = await accounts.get_account(tx, account_uuid)
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
        result = run_async(run(sys.stdout.buffer))
        sys.stdout.buffer.flush()
    else:
        with open(output, "wb") as sink:
            result = run_async(run(sink))
    click.echo(json.dumps(result), err=True)


@visits_group.command("purge")
@account_option
@click.option("--before", required=True, help="Delete the visits created before this time (ISO 8601).")
@database_url_option
def visits_purge(account_uuid: UUID, before: str, database_url: str) -> None:
    """Delete the account's visits created before a time, in short transactions of 1,000 (requests go
    on meanwhile), leaving tombstones for the changes feed; a progress bar on stderr."""
    from footfall.visits.repository import VisitFilter, VisitRepository
    from footfall.visits.retention import purge

    try:
        cutoff = parse_iso8601(before)
    except ValueError:
        raise CommandError("--before: must be an ISO 8601 date or time, e.g. 2024-01-01") from None

    async def run() -> dict[str, Any]:
        async with migrated(database_url, pool_size=2) as database:
            async with database.transaction(write=False) as tx:
                account = await accounts.get_account(tx, account_uuid)
                doomed = await VisitRepository(tx).filtered_count(
                    account.id, VisitFilter(ranges=(("created_at", "lt", cutoff),)))
            started = time.monotonic()
            with click.progressbar(length=doomed, label="purging", file=sys.stderr) as bar:
                purged = await purge(database, account, cutoff, bar.update)
            return {"purged": purged, "before": format_iso8601(cutoff), "seconds": round(time.monotonic() - started, 3)}

    result = run_async(run())
    click.echo(json.dumps(result))
