"""The `footfall` command: serve, migrate, and the admin commands (one JSON object on stdout each).

Each group of commands is a module here; common.py holds what they share, bad input among it. A
command's module is imported only when that command runs (LazyGroup): `footfall status` does not pay
for the web framework and every domain's statements that `footfall serve` needs."""

import importlib
from typing import Any

import click

__all__ = ["main", "uvicorn_options"]  # bench/floor.py serves its floor with uvicorn_options

# Each command's name, and where it is: "module:attribute".
COMMANDS = {
    "serve": "footfall.cli.server:serve",
    "worker": "footfall.cli.server:worker",
    "migrate": "footfall.cli.server:migrate_command",
    "status": "footfall.cli.status:status",
    "demo": "footfall.cli.demo:demo",
    "accounts": "footfall.cli.accounts:accounts_group",
    "tokens": "footfall.cli.accounts:tokens_group",
    "shops": "footfall.cli.shops:shops_group",
    "contacts": "footfall.cli.contacts:contacts_group",
    "visits": "footfall.cli.visits:visits_group",
    "webhooks": "footfall.cli.webhooks:webhooks_group",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one is asked for (click's documented pattern for
    lazily loaded subcommands)."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="footfall")
def main() -> None:
    """Footfall: a self-hosted implementation of Leat's Visits API."""
    # Every command's log lines (migrations, the server, the worker) as FOOTFALL_LOG_FORMAT and
    # FOOTFALL_LOG_LEVEL say; a command's own output stays on stdout.
    # `footfall status` logs nothing, and starts without the settings' validation (pydantic) for it.
    if click.get_current_context().invoked_subcommand == "status":
        return
    from footfall.cli.common import read_settings
    from footfall.kit import logs

    settings = read_settings()
    logs.configure(settings.log_format, settings.log_level)


def __getattr__(name: str) -> Any:
    if name == "uvicorn_options":
        from footfall.cli.server import uvicorn_options

        return uvicorn_options
    raise AttributeError(name)
