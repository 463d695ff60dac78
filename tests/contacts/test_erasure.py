"""A GDPR erasure reaches exactly the erased contact's data: every table of the database is compared
before and after, row by row and byte by byte, and only the contact's own rows may differ, each only
as erasure says."""

import json
import sqlite3
from typing import Any
from uuid import UUID

import asyncpg

from footfall.tables import metadata
from footfall.testing.receiver import Reply
from tests.conftest import make_tenant
from tests.webhooks.test_delivery import drain, subscribe, worker_for

ERASED = "ann@example.com"
# Emails that hold the erased one as text, in the same account, and the same email in another.
NEIGHBOURS = ("joann@example.com", "ann@example.com.au")
FILLER = "x" * 4090  # a receiver's answer cut at 4 KiB ends inside the email that follows it


def _key(table: str, row: dict[str, Any]) -> str:
    known = metadata.tables.get(table)
    columns = [column.name for column in known.primary_key] if known is not None else sorted(row)
    return json.dumps([row[column] for column in columns], default=str)


async def snapshot(database_url: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every row of every table, by primary key (or whole, in a table Footfall does not define)."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.row_factory = sqlite3.Row
            names = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in names:
                rows = [dict(row) for row in connection.execute(f'SELECT * FROM "{name}"')]
                tables[name] = {_key(name, row): row for row in rows}
        return tables
    connection = await asyncpg.connect(database_url)
    try:
        names = await connection.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        for (name,) in names:
            rows = [json.loads(text) for (text,) in
                    await connection.fetch(f'SELECT row_to_json(t)::text FROM "{name}" t')]
            tables[name] = {_key(name, row): row for row in rows}
    finally:
        await connection.close()
    return tables


def _owner(body: str) -> str | None:
    """The uuid of the contact an event is about, read from its structure."""
    data = json.loads(body)["data"]
    return data["contact"]["uuid"] if "contact" in data else data.get("uuid")


async def test_erasure_changes_only_the_erased_contacts_rows(app, client, tenant, receiver, database_url):
    other = await make_tenant(app)
    receiver.script("/contacts", *[Reply(200, body=(FILLER + ERASED).encode())] * 20)
    receiver.script("/visits", *[Reply(500, body=f"refused {ERASED} and {NEIGHBOURS[0]}".encode())] * 20)
    contacts: dict[tuple[str, str], dict] = {}
    keyed: dict[tuple[str, str], dict] = {}  # each contact's keyed create of a visit, to repeat after
    for owner in (tenant, other):
        await subscribe(client, owner, receiver.url("/contacts"), event_type="contact_created")
        await subscribe(client, owner, receiver.url("/visits"), event_type="visit_created")
        await subscribe(client, owner, receiver.url("/updates"), event_type="visit_updated")
        emails = (ERASED, *NEIGHBOURS) if owner is tenant else (ERASED,)
        for email in emails:
            headers = {**owner.headers, "Idempotency-Key": f"contact-{email}"}
            contact = (await client.post("/contacts", json={"email": email}, headers=headers)).json()["data"]
            contacts[(owner.account_uuid, email)] = contact
            body = {"contact_uuid": contact["uuid"], "shop_uuid": owner.shop_uuid, "source": email}
            headers = {**owner.headers, "Idempotency-Key": f"visit-{email}"}
            visit = await client.post("/visits", json=body, headers=headers)
            assert visit.status_code == 201
            keyed[(owner.account_uuid, email)] = {"body": body, "headers": headers, "answer": visit.json()}
            await client.put(f"/visits/{visit.json()['data']['uuid']}", json={"ends_at": "2030-01-01T00:00:00Z"},
                             headers={**owner.headers, "Idempotency-Key": f"update-{email}"})
        batch = {"visits": [{"contact_email": email, "shop_uuid": owner.shop_uuid} for email in emails]}
        await client.post("/visits/batch", json=batch, headers={**owner.headers, "Idempotency-Key": "batch"})
    worker = worker_for(app, webhook_retry_schedule=[0, 3600])
    await drain(worker)
    erased = contacts[(tenant.account_uuid, ERASED)]

    before = await snapshot(database_url)
    response = await client.delete(f"/contacts/{erased['uuid']}", params={"type": "GDPR"}, headers=tenant.headers)
    assert response.status_code == 200
    after = await snapshot(database_url)

    ann_events = {key for key, row in before["webhook_events"].items() if _owner(row["body"]) == erased["uuid"]}
    ann_event_ids = {before["webhook_events"][key]["id"] for key in ann_events}
    assert len(ann_events) == 4  # contact_created, visit_created (the create's and the batch's), visit_updated
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, {}), after.get(table, {})
        for key in old.keys() | new.keys():
            was, now = old.get(key), new.get(key)
            if was == now:
                continue
            if table == "webhook_events" and key in ann_events:
                erased_body = was["body"].replace(f'"email":"{ERASED}"', '"email":null').replace(ERASED, "")
                assert now == {**was, "body": erased_body}
                assert ERASED not in now["body"]
            elif table == "webhook_deliveries" and was and was["event_id"] in ann_event_ids:
                assert now == {**was, "last_response_body": None}
            elif table == "webhook_deliveries" and was is None:
                assert now["event_id"] not in ann_event_ids  # the erasure's own events' deliveries
            elif table == "webhook_events" and was is None:
                assert (json.loads(now["body"])["type"] in ("visit_deleted", "contact_deleted")
                        and ERASED not in now["body"])
            elif table == "contacts":
                assert now is None and same_uuid(was["uuid"], erased["uuid"])
            elif table == "contact_visit_counts":
                assert now is None and was["contact_id"] == contact_column(before, erased)
            elif table == "visits":
                assert now is None and was["contact_id"] == contact_column(before, erased)
            elif table == "visit_tombstones":
                assert was is None and now["uuid"] in {row["uuid"] for row in before["visits"].values()
                                                        if row["contact_id"] == contact_column(before, erased)}
            elif table == "idempotency_keys":
                assert now is None and erased["uuid"] in (was["response_body"] or "")
                assert was["account_id"] == contact_column(before, erased, "account_id")
            elif table == "account_visit_counts":  # a slot's row may be new
                assert (was or now)["account_id"] == contact_column(before, erased, "account_id")
            elif table in ("visit_change_counter", "sqlite_sequence"):
                pass  # SQLite's own numbering of changes and rows
            else:
                raise AssertionError(f"{table} changed: {was} -> {now}")

    # What the neighbours' clients see is as it was: a keyed repeat replays, creates nothing.
    for (account_uuid, email), sent in keyed.items():
        if (account_uuid, email) == (tenant.account_uuid, ERASED):
            continue
        repeat = await client.post("/visits", json=sent["body"], headers=sent["headers"])
        assert repeat.headers.get("idempotent-replayed") == "true", email
        assert repeat.json() == sent["answer"]
    # A delivery of a neighbour's event, sent again, carries its email whole and signed.
    sent_before = len(receiver.received)
    joann = contacts[(tenant.account_uuid, NEIGHBOURS[0])]
    subscriptions = (await client.get("/webhook-subscriptions", params={"event_type": "contact_created"},
                                      headers=tenant.headers)).json()["data"]
    deliveries = (await client.get(f"/webhook-subscriptions/{subscriptions[0]['uuid']}/deliveries",
                                   headers=tenant.headers)).json()["data"]
    for delivery in deliveries:
        await client.post(f"/webhook-subscriptions/{subscriptions[0]['uuid']}/deliveries/{delivery['id']}/retry",
                          headers=tenant.headers)
    await drain(worker)
    await worker.close()
    resent = [json.loads(r.body)["data"] for r in receiver.received[sent_before:] if r.path == "/contacts"]
    assert {"uuid": joann["uuid"], "email": NEIGHBOURS[0]}.items() <= next(
        data for data in resent if data["uuid"] == joann["uuid"]).items()
    assert all(data["email"] is None for data in resent if data["uuid"] == erased["uuid"])


def contact_column(tables, contact, column: str = "id") -> Any:
    """A column of the contact's row (its id unless told), read from a snapshot."""
    [row] = [row for row in tables["contacts"].values() if same_uuid(row["uuid"], contact["uuid"])]
    return row[column]


def same_uuid(stored: Any, shown: str) -> bool:
    """A uuid as a table keeps it (SQLite: 32 hex digits) against one as the API shows it."""
    return UUID(str(stored)) == UUID(shown)
