"""`footfall visits import`: rows checked as the API checks them, bad ones reported, repeats skipped."""

import json
from uuid import RFC_4122, UUID

from footfall.testing.receiver import Receiver
from footfall.testing.serving import footfall
from footfall.visits.importer import BATCH_SIZE
from tests.webhooks.test_delivery import deliveries, drain, subscribe, worker_for


def _import(path, tenant, database_url):
    return footfall("visits", "import", str(path), "--account", tenant.account_uuid, database_url=database_url,
                    check=False)


async def test_csv_import_keeps_good_rows_and_reports_bad_ones(app, client, tenant, database_url, tmp_path):
    c, s = tenant.contact_uuid, tenant.shop_uuid
    path = tmp_path / "visits.csv"
    path.write_text(
        "contact_uuid,shop_uuid,external_id,source,starts_at,ends_at\n"
        f"{c},{s},imp-1,Kiosk,2024-05-01T22:00:00+02:00,2024-05-01T22:30:00+02:00\n"
        f"{c},{s},imp-2,,,\n"
        f"not-a-uuid,{s},imp-3,,,\n"
        f"{c},{s},imp-4,,2024-05-01T20:00:00Z,2024-05-01T19:00:00Z\n"
        f"{c},6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92,imp-5,,,\n"
        f"{c},{s},imp-1,Kiosk,,\n"  # the same external_id again: skipped
        f"{c},{s},,Web,2024-05-02,\n"
    )
    result = _import(path, tenant, database_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("read", "imported", "skipped", "failed")} == {
        "read": 7, "imported": 3, "skipped": 1, "failed": 3}
    assert summary["rows_per_second"] >= 0 and summary["seconds"] >= 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == ["line 4", "line 5", "line 6"]
    assert "contact_uuid" in errors[0] and "ends_at" in errors[1] and "Shop not found." in errors[2]
    body = (await client.get("/visits", headers=tenant.headers)).json()
    assert body["meta"]["total"] == 3
    first = next(v for v in body["data"] if v["external_id"] == "imp-1")
    assert first["starts_at"] == "2024-05-01T20:00:00+00:00" and first["ends_at"] == "2024-05-01T20:30:00+00:00"
    assert first["contact"] == {"uuid": c, "email": tenant.contact_email}
    by_contact = (await client.get("/visits", params={"contact_uuid": c}, headers=tenant.headers)).json()
    assert by_contact["meta"]["total"] == 3
    # Run again: everything with an external_id is skipped; the row without one is new each time.
    again = json.loads(_import(path, tenant, database_url).stdout)
    assert (again["imported"], again["skipped"], again["failed"]) == (1, 3, 3)


async def test_import_over_several_contacts_keeps_each_count(app, client, tenant, database_url, tmp_path):
    created = await client.post("/contacts", json={"email": "second@import.example"}, headers=tenant.headers)
    other = created.json()["data"]["uuid"]
    c, s = tenant.contact_uuid, tenant.shop_uuid
    path = tmp_path / "visits.csv"
    rows = [f"{c if n % 3 else other},{s},multi-{n},," for n in range(10)]  # 6 for c, 4 for the other
    path.write_text("contact_uuid,shop_uuid,external_id,source,starts_at\n" + "\n".join(rows) + "\n")
    result = _import(path, tenant, database_url)
    assert result.returncode == 0, result.stderr
    for contact, expected in ((c, 6), (other, 4)):
        listed = (await client.get("/visits", params={"contact_uuid": contact}, headers=tenant.headers)).json()
        assert listed["meta"]["total"] == expected == len(listed["data"])
    assert (await client.get("/visits", headers=tenant.headers)).json()["meta"]["total"] == 10
    # Each imported visit's uuid its own, and a version 4 uuid as the API's creates make.
    uuids = [UUID(visit["uuid"]) for visit in
             (await client.get("/visits", params={"limit": 10}, headers=tenant.headers)).json()["data"]]
    assert len(set(uuids)) == 10 and {(u.version, u.variant) for u in uuids} == {(4, RFC_4122)}


async def test_contacts_looked_up_a_batch_at_a_time_fail_by_line(app, client, tenant, other_tenant, database_url,
                                                                 tmp_path):
    # Three batches (BATCH_SIZE rows each) over two contacts, with another account's contact and an
    # unknown one among them: those fail by their line, in the file's order, whichever batch they
    # are in, and every other row counts on its own contact.
    created = await client.post("/contacts", json={"email": "batches@import.example"}, headers=tenant.headers)
    second, c, s = created.json()["data"]["uuid"], tenant.contact_uuid, tenant.shop_uuid
    strangers = (other_tenant.contact_uuid, "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d93")
    rows, failing, counts = [], [], {c: 0, second: 0}
    for n in range(2 * BATCH_SIZE + 300):
        if n % 1499 == 7:
            contact = strangers[len(failing) % 2]
            failing.append(f"line {n + 2}")
        else:
            contact = c if n % 3 else second
            counts[contact] += 1
        rows.append(f"{contact},{s},batched-{n}")
    path = tmp_path / "visits.csv"
    path.write_text("contact_uuid,shop_uuid,external_id\n" + "\n".join(rows) + "\n")
    result = _import(path, tenant, database_url)
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == failing and all("Contact not found." in e for e in errors)
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["failed"]) == (len(rows) - len(failing), len(failing))
    for contact, expected in counts.items():
        answer = (await client.get(f"/contacts/{contact}", headers=tenant.headers)).json()["data"]
        assert answer["visit_count"] == expected
    assert (await client.get("/visits", headers=other_tenant.headers)).json()["meta"]["total"] == 0


async def test_repeats_across_batches_written_at_once_are_stored_once(client, tenant, database_url, tmp_path):
    # Two batches, written at once on PostgreSQL, repeat two external_ids in crossed order: the kind
    # of pair on which the two transactions can deadlock (one is then written again).
    c, s = tenant.contact_uuid, tenant.shop_uuid
    ids = [f"cross-{n}" for n in range(2 * BATCH_SIZE)]
    ids[10], ids[BATCH_SIZE - 10], ids[BATCH_SIZE + 10], ids[-10] = "X", "Y", "Y", "X"
    path = tmp_path / "visits.csv"
    path.write_text("contact_uuid,shop_uuid,external_id\n" + "".join(f"{c},{s},{i}\n" for i in ids))
    result = _import(path, tenant, database_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (2 * BATCH_SIZE - 2, 2, 0)
    listed = (await client.get("/visits", params={"contact_uuid": c}, headers=tenant.headers)).json()
    assert listed["meta"]["total"] == 2 * BATCH_SIZE - 2


async def test_ndjson_import_and_its_webhook_events(app, client, tenant, database_url, tmp_path):
    with Receiver() as receiver:
        subscription = await subscribe(client, tenant, receiver.url("/imported"))
        c, s = tenant.contact_uuid, tenant.shop_uuid
        path = tmp_path / "visits.ndjson"
        lines = [json.dumps({"contact_uuid": c, "shop_uuid": s, "external_id": f"nd-{n}", "source": "Kiosk"})
                 for n in range(3)]
        path.write_text("\n".join([*lines, "{not json", "[1, 2]", ""]) + "\n")
        result = _import(path, tenant, database_url)
        summary = json.loads(result.stdout)
        assert (summary["read"], summary["imported"], summary["failed"]) == (5, 3, 2), result.stderr
        worker = worker_for(app)
        await drain(worker)
        await worker.close()
        events = [json.loads(r.body) for r in receiver.wait_for("/imported", 3)]
        listed = (await client.get("/visits", headers=tenant.headers)).json()["data"]
        assert sorted(e["data"]["external_id"] for e in events) == ["nd-0", "nd-1", "nd-2"]
        for event in events:
            assert event["type"] == "visit_created"
            assert event["data"] == next(v for v in listed if v["uuid"] == event["data"]["uuid"])
        assert len(await deliveries(client, tenant, subscription)) == 3


def test_an_unknown_file_type_or_account_is_one_line_on_stderr(tenant, database_url, tmp_path):
    path = tmp_path / "visits.txt"
    path.write_text("x")
    result = _import(path, tenant, database_url)
    assert (result.returncode == 1
            and result.stderr.strip() == "error: visits.txt: the file must end in .csv, .ndjson or .jsonl")
    csv_path = tmp_path / "v.csv"
    csv_path.write_text("contact_uuid\n")
    result = footfall("visits", "import", str(csv_path), "--account", "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92",
                      database_url=database_url, check=False)
    assert result.returncode == 1 and "no account" in result.stderr


async def test_an_import_keeps_a_given_created_at_and_leaves_fresh_statistics(client, tenant, database_url, tmp_path):
    c, s = tenant.contact_uuid, tenant.shop_uuid
    path = tmp_path / "history.ndjson"
    path.write_text("\n".join(json.dumps(row) for row in [
        {"contact_uuid": c, "shop_uuid": s, "external_id": "old-1", "created_at": "2023-01-02 03:04:05"},
        {"contact_uuid": c, "shop_uuid": s, "external_id": "old-2", "created_at": "yesterday"},
        {"contact_uuid": c, "shop_uuid": s, "external_id": "new-1"},
    ]) + "\n")
    result = _import(path, tenant, database_url)
    assert result.returncode == 0 and json.loads(result.stdout)["failed"] == 1
    assert "created_at" in result.stderr
    body = (await client.get("/visits", params={"sort": "created_at"}, headers=tenant.headers)).json()
    old = body["data"][0]
    assert old["external_id"] == "old-1" and old["created_at"] == "2023-01-02T03:04:05+00:00"
    assert old["starts_at"] == old["created_at"]  # starts_at defaults to the visit's created_at
    assert body["data"][1]["created_at"] > "2026"
    if database_url.startswith("sqlite"):
        import sqlite3
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            assert connection.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'visits'").fetchone()[0] > 0
    else:
        import asyncpg
        connection = await asyncpg.connect(database_url)
        try:
            analyzed = await connection.fetchval(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'visits'")
        finally:
            await connection.close()
        assert analyzed is not None


async def test_an_export_imported_back_into_its_account_adds_nothing(client, tenant, database_url, tmp_path):
    """Visits without an external_id are recognised by the uuid the export wrote: imported back, the
    account has each visit once, its counts and changes feed as before; a visit deleted since comes back."""
    from tests.visits.test_routes import create_visit

    for n in range(3):
        await create_visit(client, tenant, external_id=f"back-{n}", source="Kiosk")
    walk_ins = [(await create_visit(client, tenant, source="App", starts_at=f"2024-05-0{n + 1} 10:00")).json()["data"]
                for n in range(4)]
    feed = (await client.get("/visits/changes", headers=tenant.headers)).json()["meta"]
    assert feed["has_more"] is False

    async def state() -> tuple:
        listed = (await client.get("/visits", params={"limit": 100}, headers=tenant.headers)).json()
        contact = (await client.get(f"/contacts/{tenant.contact_uuid}", headers=tenant.headers)).json()["data"]
        stats = (await client.get("/visits/stats", params={"interval": "month"}, headers=tenant.headers)).json()
        exported = (await client.get("/visits/export", headers=tenant.headers)).text
        return listed["meta"]["total"], sorted(v["uuid"] for v in listed["data"]), contact["visit_count"], \
            [bucket["visits"] for bucket in stats["data"]], exported

    before = await state()
    assert before[0] == before[2] == 7
    for format in ("csv", "ndjson"):
        path = tmp_path / f"visits.{format}"
        exported = footfall("visits", "export", "--account", tenant.account_uuid, "--format", format, "--output",
                            str(path), database_url=database_url)
        assert json.loads(exported.stderr.strip().splitlines()[-1])["exported"] == 7
        result = _import(path, tenant, database_url)
        assert result.returncode == 0, result.stderr
        assert {k: json.loads(result.stdout)[k] for k in ("read", "imported", "skipped", "failed")} == {
            "read": 7, "imported": 0, "skipped": 7, "failed": 0}
        assert await state() == before
        changes = (await client.get("/visits/changes", params={"cursor": feed["next_cursor"]},
                                    headers=tenant.headers)).json()
        assert changes["data"] == [] and changes["meta"]["next_cursor"] == feed["next_cursor"]

    # A walk-in deleted since the export comes back (as a new visit); the rest are there already.
    assert (await client.delete(f"/visits/{walk_ins[0]['uuid']}", headers=tenant.headers)).status_code == 200
    result = _import(tmp_path / "visits.csv", tenant, database_url)
    assert (json.loads(result.stdout)["imported"], json.loads(result.stdout)["skipped"]) == (1, 6)
    total, uuids, visit_count, buckets, _ = await state()
    assert (total, visit_count, sum(buckets)) == (7, 7, 7) and walk_ins[0]["uuid"] not in uuids
    back = (await client.get("/visits", params={"source": "App", "starts_at[lt]": "2024-05-02"},
                             headers=tenant.headers)).json()["data"]
    assert [(v["starts_at"], v["created_at"]) for v in back] == [(walk_ins[0]["starts_at"], walk_ins[0]["created_at"])]
