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
from footfall.db import create_engine, create_sessionmaker, migrate, session_scope
from footfall.models import Contact, Shop, utcnow


async def make_account(database_url: str, contacts: int, shops: int) -> dict:
    """An account with a token, `contacts` contacts and `shops` shops; returns their uuids and the token."""
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        sessions = create_sessionmaker(engine)
        async with session_scope(sessions, write=True) as session:
            account = await accounts.create_account(session, "Benchmark")
            issued = await accounts.issue_token(session, account, name="bench")
            now = utcnow()
            contact_rows = [
                {"uuid": uuid4(), "account_id": account.id, "email": f"c{n}@bench.example", "created_at": now,
                 "visit_count": 0}
                for n in range(contacts)
            ]
            shop_rows = [
                {"uuid": uuid4(), "account_id": account.id, "name": f"Shop {n}", "type": "physical", "reference": None,
                 "created_at": now}
                for n in range(shops)
            ]
            await session.execute(Contact.__table__.insert(), contact_rows)
            await session.execute(Shop.__table__.insert(), shop_rows)
        return {
            "account_uuid": str(account.uuid),
            "token": issued.secret,
            "contacts": [str(r["uuid"]) for r in contact_rows],
            "shops": [str(r["uuid"]) for r in shop_rows],
        }
    finally:
        await engine.dispose()


def write_visits_csv(path: Path, visits: int, contacts: list[str], shops: list[str], seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["contact_uuid", "shop_uuid", "external_id", "source", "starts_at", "ends_at"])
        for n in range(visits):
            starts = start + timedelta(seconds=n * 30)
            writer.writerow([
                contacts[rng.randrange(len(contacts))], shops[rng.randrange(len(shops))], f"bench-{n}",
                "Kiosk" if n % 3 else "Website", starts.isoformat(), (starts + timedelta(minutes=20)).isoformat(),
            ])


def import_file(database_url: str, account_uuid: str, path: Path) -> dict:
    import json

    result = subprocess.run(
        [sys.executable, "-m", "footfall", "visits", "import", str(path), "--account", account_uuid,
         "--database-url", database_url],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


if __name__ == "__main__":
    import tempfile

    url, n = sys.argv[1], int(sys.argv[2])
    made = asyncio.run(make_account(url, contacts=max(10, n // 100), shops=20))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "visits.csv"
        write_visits_csv(path, n, made["contacts"], made["shops"])
        print(import_file(url, made["account_uuid"], path))
