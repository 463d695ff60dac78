"""The `footfall` command: serve, migrate, and the admin commands (one JSON object on stdout each).

Each group of commands is a module here; common.py holds what they share, bad input among it."""

import click

from footfall.cli.accounts import accounts_group, demo, tokens_group
from footfall.cli.common import read_settings
from footfall.cli.contacts import contacts_group
from footfall.cli.server import migrate_command, serve, status, uvicorn_options, worker
from footfall.cli.shops import shops_group
from footfall.cli.visits import visits_group
from footfall.cli.webhooks import webhooks_group
from footfall.kit import logs

__all__ = ["main", "uvicorn_options"]  # bench/floor.py serves its floor with uvicorn_options


@click.group()
@click.version_option(package_name="footfall")
def main() -> None:
    """Footfall: a self-hosted implementation of Leat's Visits API."""
    # Every command's log lines (migrations, the server, the worker) as FOOTFALL_LOG_FORMAT and
    # FOOTFALL_LOG_LEVEL say; a command's own output stays on stdout.
    settings = read_settings()
    logs.configure(settings.log_format, settings.log_level)


for command in (serve, worker, migrate_command, status, demo, accounts_group, tokens_group, shops_group,
                contacts_group, visits_group, webhooks_group):
    main.add_command(command)
