"""`footfall demo`: the demo account, a token for it, and what the README's examples need."""

import json
import logging
import shlex
from datetime import date
from typing import Any

import click

from footfall.cli.common import CommandError, database_url_option, read_settings, run_async, transact
from footfall.db import Tx

API_PATH = "/api/v3/oauth/clients"  # the API's prefix (footfall.app's, which the CLI does not import)
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _month_starts(today: date) -> tuple[str, str]:
    """The first days of last month and of this month: a whole month the demo's 90 days cover."""
    this_month = today.replace(day=1)
    last_month = (this_month.replace(year=this_month.year - 1, month=12) if this_month.month == 1
                  else this_month.replace(month=this_month.month - 1))
    return last_month.isoformat(), this_month.isoformat()


@click.command()
@click.option("--env", "as_env", is_flag=True,
              help="Print shell variables instead (B, H, C, S, V, W, ACCOUNT, FROM and TO: the README's "
                   'examples use them): eval "$(footfall demo --env)".')
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="The port `footfall serve` listens on, for the printed curl line and $B "
                   "(http://127.0.0.1:PORT; default 8000).")
@click.option("--base-url", default=None,
              help="The server's address as you reach it, e.g. http://footfall.internal:8080, for the printed "
                   "curl line and $B (instead of --port).")
@database_url_option
def demo(as_env: bool, port: int | None, base_url: str | None, database_url: str) -> None:
    """Create a demo account with data (once) and print a new token for it, a curl line, and the
    uuids the README's examples name."""
    from footfall.accounts import service as accounts
    from footfall.demo import ensure_demo, examples, find_lapses, try_deliveries
    from footfall.kit.time import utcnow

    if port is not None and base_url is not None:
        raise CommandError("--port and --base-url: give one or the other")
    server = base_url.rstrip("/") if base_url else f"http://127.0.0.1:{port or 8000}"
    if not server.startswith(("http://", "https://")):
        raise CommandError(f"--base-url: must start with http:// or https://: {base_url!r}")
    api = f"{server}{API_PATH}"
    settings = read_settings()

    async def work(tx: Tx) -> dict[str, Any]:
        account, created = await ensure_demo(tx, settings)
        issued = await accounts.issue_token(tx, account, name="demo")
        return {
            "account_uuid": str(account.uuid),
            "created": created,
            "token": issued.secret,
            "curl": f"curl -s -H 'Authorization: Bearer {issued.secret}' {api}/visits",
            **await examples(tx, account, settings),
        }

    made = transact(database_url, work)
    if made["created"]:
        # A line per attempt would bury the demo's answer; the delivery log keeps every attempt.
        attempts_log = logging.getLogger("footfall.webhooks")
        attempts_log.setLevel(max(attempts_log.getEffectiveLevel(), logging.WARNING))
        run_async(try_deliveries(database_url, settings))
        run_async(find_lapses(database_url, settings))
    if not as_env:
        click.echo(json.dumps(made))
        return
    month_from, month_to = _month_starts(utcnow().date())
    variables = {"B": api, "H": f"Authorization: Bearer {made['token']}",
                 "C": made["contact_uuid"], "S": made["shop_uuid"], "V": made["visit_uuid"],
                 "W": made["subscription_uuid"], "L": made["lapsed_contact_uuid"], "ACCOUNT": made["account_uuid"],
                 "FROM": month_from, "TO": month_to}
    click.echo("\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items()))
