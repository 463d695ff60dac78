"""Retention: `footfall visits purge` and the daily purge that FOOTFALL_RETENTION_DAYS turns on."""

import asyncio
import json

from footfall.testing.serving import footfall
from footfall.visits.retention import keep_days


def _history(tmp_path, tenant, old: int, new: int, other_contact: str):
    path = tmp_path / "history.ndjson"
    rows = [{"contact_uuid": tenant.contact_uuid if n % 2 else other_contact, "shop_uuid": tenant.shop_uuid,
             "external_id": f"old-{n}", "created_at": f"2023-0{1 + n % 9}-01 10:00"} for n in range(old)]
    rows += [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "external_id": f"new-{n}"}
             for n in range(new)]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


async def total(client, tenant, **params) -> int:
    return (await client.get("/visits", params=params, headers=tenant.headers)).json()["meta"]["total"]


async def test_purge_deletes_what_is_older_in_batches_with_tombstones_and_counts(client, tenant, database_url,
                                                                                  tmp_path):
    other = (await client.post("/contacts", json={"email": "old@x.sea"}, headers=tenant.headers)).json()["data"]["uuid"]
    path = _history(tmp_path, tenant, old=2500, new=3, other_contact=other)
    assert footfall("visits", "import", str(path), "--account", tenant.account_uuid, database_url=database_url,
                    check=False).returncode == 0
    cursor = (await client.get("/visits/changes", params={"limit": 1000}, headers=tenant.headers)).json()
    result = footfall("visits", "purge", "--account", tenant.account_uuid, "--before", "2024-01-01",
                      database_url=database_url, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["purged"] == 2500
    assert await total(client, tenant) == 3
    assert await total(client, tenant, contact_uuid=tenant.contact_uuid) == 3
    assert await total(client, tenant, contact_uuid=other) == 0
    assert await total(client, tenant, page=2, limit=2) == 3  # the kept counts, not a count(*)
    # The feed shows a tombstone for each purged visit.
    changes, next_cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": next_cursor} if next_cursor else {})}
        page = (await client.get("/visits/changes", params=params, headers=tenant.headers)).json()
        changes += page["data"]
        next_cursor = page["meta"]["next_cursor"]
        if not page["meta"]["has_more"]:
            break
    assert sum("deleted_at" in change for change in changes) == 2500 and cursor["data"]
    again = footfall("visits", "purge", "--account", tenant.account_uuid, "--before", "2024-01-01",
                     database_url=database_url, check=False)
    assert json.loads(again.stdout)["purged"] == 0


def test_purge_refuses_a_bad_time_or_account(tenant, database_url):
    bad = footfall("visits", "purge", "--account", tenant.account_uuid, "--before", "last year",
                   database_url=database_url, check=False)
    assert bad.returncode == 1 and "--before" in bad.stderr
    nobody = footfall("visits", "purge", "--account", "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92", "--before", "2024-01-01",
                      database_url=database_url, check=False)
    assert nobody.returncode == 1 and "no account" in nobody.stderr


async def test_the_daily_retention_purges_every_account(app, client, tenant, database_url, tmp_path):
    path = _history(tmp_path, tenant, old=5, new=2, other_contact=tenant.contact_uuid)
    assert footfall("visits", "import", str(path), "--account", tenant.account_uuid, database_url=database_url,
                    check=False).returncode == 0
    stop = asyncio.Event()
    task = asyncio.create_task(keep_days(app.state.database, 365, stop))
    for _ in range(100):
        if await total(client, tenant) == 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert await total(client, tenant) == 2
