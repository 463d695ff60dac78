"""The option every command that opens a database takes, in a module light enough for `footfall status`
(click alone): common.py re-exports it with the rest."""

import click

DEFAULT_DATABASE_URL = "sqlite:///footfall.db"

database_url_option = click.option(
    "--database-url",
    envvar="FOOTFALL_DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///PATH or postgresql://USER@HOST/DB; else FOOTFALL_DATABASE_URL.",
)
