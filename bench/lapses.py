"""The lapse pass at scale: how long the worker's look for lapsed contacts takes, and that several
passes at once mark each lapse once.

    python bench/lapses.py --database-url postgresql://postgres@127.0.0.1:5432/test
                           [--contacts 100000] [--visits 300000] [--json PATH]

On a database of its own beside the one named (dropped afterwards): one account with --contacts
contacts and --visits visits imported by `footfall visits import` (bench/dataset.py: one visit every
30 s from 2024-01-01, so every contact's latest visit is long past), fresh planner statistics, then:

- a lapse rule of every shop and source (after 30 days): the first pass (every contact with a visit
  lapses) and the next one (nothing new), timed;
- a lapse rule of one source (Kiosk): its first pass, timed (it groups the visits themselves);
- a third rule, two passes at once: the contacts each marked, which must be every contact with a
  visit, once (the run exits 1 otherwise).

Only one rule is ACTIVE at a time, so each pass times one rule. Local only, bounded by the sizes.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dataset import import_file, make_account, write_visits_csv  # noqa: E402
from footfall.accounts.service import get_account  # noqa: E402
from footfall.db import open_database  # noqa: E402
from footfall.rules import service as rules  # noqa: E402
from footfall.rules.lapses import lapse_pass  # noqa: E402
from footfall.rules.schemas import RuleCreate, RuleUpdate  # noqa: E402


async def set_rule(database, account_uuid: str, data: RuleCreate, others: list[UUID]) -> UUID:
    """Makes the rule, the only ACTIVE one: the rules made before are set INACTIVE."""
    async with database.transaction(write=True) as tx:
        account = await get_account(tx, UUID(account_uuid))
        for uuid in others:
            await rules.update(tx, account, uuid, RuleUpdate(status="INACTIVE"))
        return (await rules.create(tx, account, data)).uuid


async def timed_pass(database) -> dict:
    started = time.perf_counter()
    lapsed = await lapse_pass(database)
    return {"lapsed": lapsed, "seconds": round(time.perf_counter() - started, 3)}


async def run(server_url: str, contacts: int, visits: int, folder: Path) -> dict:
    name = f"footfall_lapses_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        made = await make_account(url, contacts=contacts, shops=20)
        path = folder / "visits.csv"
        write_visits_csv(path, visits, made["contacts"], made["shops"])
        imported = import_file(url, made["account_uuid"], path)
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("VACUUM ANALYZE")
            visited = await connection.fetchval("SELECT count(DISTINCT contact_id) FROM visits")
        finally:
            await connection.close()
        database = open_database(url, pool_size=4)
        try:
            made_rules: list[UUID] = []
            made_rules.append(await set_rule(database, made["account_uuid"], RuleCreate(
                name="every shop", kind="lapse", after_days=30), made_rules))
            first = await timed_pass(database)
            again = await timed_pass(database)
            made_rules.append(await set_rule(database, made["account_uuid"], RuleCreate(
                name="kiosk", kind="lapse", after_days=30, source="Kiosk"), made_rules))
            one_source = await timed_pass(database)
            made_rules.append(await set_rule(database, made["account_uuid"], RuleCreate(
                name="two workers", kind="lapse", after_days=30), made_rules))
            both = await asyncio.gather(lapse_pass(database), lapse_pass(database))
        finally:
            await database.close()
        return {"contacts": contacts, "visits": visits, "contacts_with_visits": visited,
                "import": imported, "first_pass": first, "next_pass": again, "one_source_pass": one_source,
                "two_passes_at_once": {"lapsed": list(both), "each_once": sum(both) == visited}}
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server to make a database beside")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=300_000)
    parser.add_argument("--json", default=None, help="write the report as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = asyncio.run(run(args.database_url, args.contacts, args.visits, Path(folder)))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    seconds = report["first_pass"]["seconds"]
    print(f"first pass over {args.contacts:,} contacts: {seconds} s (target < 2 s): "
          f"{'met' if seconds < 2 else 'missed'}", file=sys.stderr)
    if not report["two_passes_at_once"]["each_once"]:
        sys.exit("two passes at once did not mark every lapse exactly once")


if __name__ == "__main__":
    main()
