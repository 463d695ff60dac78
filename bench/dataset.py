"""Builds a benchmark account: contacts and shops inserted directly, visits through `footfall visits import`."""

import asyncio
import csv
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from footfall.accounts import service as accounts
from footfall.db import migrate, open_database
from footfall.kit.time import utcnow
from footfall.tables import contacts as contacts_table
from footfall.tables import shops as shops_table


async def make_account(database_url: str, contacts: int, shops: int) -> dict:
    """An account with a token, `contacts` contacts and `shops` shops; returns their uuids and the token."""
    await migrate(database_url)
    database = open_database(database_url, pool_size=1)
    try:
        async with database.transaction(write=True) as tx:
            account = await accounts.create_account(tx, "Benchmark")
            issued = await accounts.issue_token(tx, account, name="bench")
            now = utcnow()
            contact_uuids = [uuid4() for _ in range(contacts)]
            shop_uuids = [uuid4() for _ in range(shops)]
            await tx.copy_records(
                contacts_table, ("uuid", "account_id", "email", "created_at"),
                [(uuid, account.id, f"c{n}@bench.example", now) for n, uuid in enumerate(contact_uuids)],
            )
            await tx.copy_records(
                shops_table, ("uuid", "account_id", "name", "type", "reference", "created_at"),
                [(uuid, account.id, f"Shop {n}", "physical", None, now) for n, uuid in enumerate(shop_uuids)],
            )
        return {
            "account_uuid": str(account.uuid),
            "token": issued.secret,
            "contacts": [str(uuid) for uuid in contact_uuids],
            "shops": [str(uuid) for uuid in shop_uuids],
        }
    finally:
        await database.close()


HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
SECONDS_APART = 30


def write_visits_csv(path: Path, visits: int, contacts: list[str], shops: list[str], seed: int = 1) -> None:
    rng = random.Random(seed)
    start = HISTORY_START
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["contact_uuid", "shop_uuid", "external_id", "source", "starts_at", "ends_at", "created_at"])
        # One visit every 30 s, recorded as it starts: an account grows by its history, at a steady rate.
        for n in range(visits):
            starts = start + timedelta(seconds=n * SECONDS_APART)
            writer.writerow([
                contacts[rng.randrange(len(contacts))], shops[rng.randrange(len(shops))], f"bench-{n}",
                "Kiosk" if n % 3 else "Website", starts.isoformat(), (starts + timedelta(minutes=20)).isoformat(),
                starts.isoformat(),
            ])


def peak_rss_mb(pid: int) -> float:
    """The process's peak memory so far (VmHWM, which only rises)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def import_file(database_url: str, account_uuid: str, path: Path, python: str = sys.executable) -> dict:
    """The import's own report, and `peak_rss_mb`: the importer's peak memory, its VmHWM read while it
    runs (the high-water mark only rises; the rusage of a reaped child counts the parent's memory it
    was forked from, and a peak measured that way grows with the bench's own process)."""
    import json
    import tempfile
    import time

    peak = 0.0
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [python, "-m", "footfall", "visits", "import", str(path), "--account", account_uuid,
             "--database-url", database_url],
            stdout=output, stderr=errors,
        )
        while process.poll() is None:
            try:
                peak = max(peak, peak_rss_mb(process.pid))
            except OSError:
                break
            time.sleep(0.05)
        if process.wait():
            errors.seek(0)
            raise subprocess.CalledProcessError(process.returncode, process.args, stderr=errors.read())
        output.seek(0)
        report = json.loads(output.read())
    report["peak_rss_mb"] = round(peak, 1)
    return report


if __name__ == "__main__":
    import tempfile

    url, n = sys.argv[1], int(sys.argv[2])
    made = asyncio.run(make_account(url, contacts=max(10, n // 100), shops=20))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "visits.csv"
        write_visits_csv(path, n, made["contacts"], made["shops"])
        print(import_file(url, made["account_uuid"], path))
