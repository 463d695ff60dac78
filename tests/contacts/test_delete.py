"""Contact deletion, DEFAULT and GDPR, as Leat's PHP SDK sends it (v4: DELETE; master: POST .../delete)."""

import json
import sqlite3
import subprocess
import sys
from uuid import uuid4

import asyncpg
import pytest

from footfall.testing.receiver import Reply
from tests.conftest import make_tenant
from tests.webhooks.test_delivery import drain, subscribe, worker_for


async def new_contact(client, tenant, email):
    response = await client.post("/contacts", json={"email": email}, headers=tenant.headers)
    assert response.status_code == 201
    return response.json()["data"]


async def visit_for(client, tenant, contact, **fields):
    response = await client.post("/visits", json={"contact_uuid": contact["uuid"], "shop_uuid": tenant.shop_uuid,
                                                  **fields}, headers=tenant.headers)
    assert response.status_code == 201
    return response.json()["data"]


@pytest.mark.parametrize("how", ["delete", "post", "delete-query"])
async def test_a_deleted_contact_is_gone_with_its_visits(client, tenant, how):
    contact = await new_contact(client, tenant, f"{how}@krabs.sea")
    visits = [await visit_for(client, tenant, contact, external_id=f"{how}-{n}") for n in range(3)]
    kept = await visit_for(client, tenant, {"uuid": tenant.contact_uuid})
    if how == "delete":
        response = await client.request("DELETE", f"/contacts/{contact['uuid']}", data={"type": "default"},
                                        headers=tenant.headers)
    elif how == "post":
        response = await client.post(f"/contacts/{contact['uuid']}/delete", files={"type": (None, "DEFAULT")},
                                     headers=tenant.headers)
    else:
        response = await client.delete(f"/contacts/{contact['uuid']}", headers=tenant.headers)
    assert response.status_code == 200 and response.json() == {"data": None, "meta": {}}
    assert (await client.get(f"/contacts/{contact['uuid']}", headers=tenant.headers)).json()["code"] == 55031
    for visit in visits:
        assert (await client.get(f"/visits/{visit['uuid']}", headers=tenant.headers)).status_code == 404
    listed = (await client.get("/visits", headers=tenant.headers)).json()
    assert listed["meta"]["total"] == 1 and [v["uuid"] for v in listed["data"]] == [kept["uuid"]]
    changes = (await client.get("/visits/changes", headers=tenant.headers)).json()["data"]
    tombstones = [c for c in changes if "deleted_at" in c]
    assert sorted(t["external_id"] for t in tombstones) == sorted(v["external_id"] for v in visits)
    again = await client.delete(f"/contacts/{contact['uuid']}", headers=tenant.headers)
    assert again.status_code == 404 and again.json()["code"] == 55031
    # The email is free again: a new contact, with no visits.
    assert (await client.post("/contacts", json={"email": f"{how}@krabs.sea"},
                              headers=tenant.headers)).status_code == 201


@pytest.mark.parametrize("sent", [{"type": "forever"}, {"type": 3}])
async def test_a_delete_refuses_an_unknown_type(client, tenant, sent):
    contact = await new_contact(client, tenant, "typo@krabs.sea")
    for response in (
        await client.request("DELETE", f"/contacts/{contact['uuid']}", json=sent, headers=tenant.headers),
        await client.post(f"/contacts/{contact['uuid']}/delete", json=sent, headers=tenant.headers),
        await client.delete(f"/contacts/{contact['uuid']}", params={"type": str(sent["type"])}, headers=tenant.headers),
    ):
        assert response.status_code == 422 and response.json()["errors"] == {"type": ["Must be DEFAULT or GDPR."]}
    assert (await client.get(f"/contacts/{contact['uuid']}", headers=tenant.headers)).status_code == 200


async def test_a_delete_refuses_another_accounts_contact(client, app, tenant):
    other = await make_tenant(app)
    response = await client.delete(f"/contacts/{other.contact_uuid}", headers=tenant.headers)
    assert response.status_code == 404 and response.json()["code"] == 55031
    assert (await client.get(f"/contacts/{other.contact_uuid}", headers=other.headers)).status_code == 200


async def test_deletes_send_contact_deleted_and_visit_deleted(app, client, tenant, receiver):
    await subscribe(client, tenant, receiver.url("/visits"), event_type="visit_deleted")
    await subscribe(client, tenant, receiver.url("/contacts"), event_type="contact_deleted")
    kept = await new_contact(client, tenant, "kept@krabs.sea")
    erased = await new_contact(client, tenant, "erased@krabs.sea")
    visit = await visit_for(client, tenant, kept, external_id="K-1")
    await client.delete(f"/contacts/{kept['uuid']}", headers=tenant.headers)
    await client.delete(f"/contacts/{erased['uuid']}", params={"type": "gdpr"}, headers=tenant.headers)
    worker = worker_for(app)
    await drain(worker)
    await worker.close()
    [visit_event] = [json.loads(r.body) for r in receiver.wait_for("/visits", 1)]
    assert visit_event["data"]["uuid"] == visit["uuid"] and visit_event["data"]["external_id"] == "K-1"
    events = [json.loads(r.body)["data"] for r in receiver.wait_for("/contacts", 2)]
    assert [(e["uuid"], e["email"]) for e in events] == [(kept["uuid"], "kept@krabs.sea"), (erased["uuid"], None)]


async def rows_holding(database_url: str, text: str) -> list[str]:
    """Every row of every table, as text, that holds `text` (case-insensitive)."""
    if database_url.startswith("sqlite"):
        found = []
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in connection.execute(f'SELECT * FROM "{table}"'):
                    if text.lower() in repr(row).lower():
                        found.append(f"{table}: {row}")
        return found
    connection = await asyncpg.connect(database_url)
    try:
        found = []
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        for (table,) in tables:
            rows = await connection.fetch(
                f'SELECT row_to_json(t)::text AS row FROM "{table}" t '
                'WHERE strpos(lower(row_to_json(t)::text), $1) > 0',
                text.lower())
            found += [f"{table}: {row['row']}" for row in rows]
        return found
    finally:
        await connection.close()


async def test_a_gdpr_delete_leaves_no_trace_of_the_email(app, client, tenant, receiver, database_url):
    email = f"erase-{uuid4().hex[:8]}@bikinibottom.sea"
    # Every feature that can keep the email: events (pending, delivered, and failed with the receiver's
    # echo in the log), Idempotency-Key answers, the batch's contact_email, find-or-create.
    receiver.script("/echo", Reply(500, body=f"refused {email}".encode()))
    await subscribe(client, tenant, receiver.url("/ok"), event_type="contact_created")
    await subscribe(client, tenant, receiver.url("/echo"), event_type="visit_created")
    await subscribe(client, tenant, receiver.url("/ok"), event_type="visit_updated")
    created = await client.post("/contacts", json={"email": email}, headers={**tenant.headers, "Idempotency-Key": "k1"})
    contact = created.json()["data"]
    await client.get("/contacts/find-or-create", params={"email": email}, headers=tenant.headers)
    visit = await visit_for(client, tenant, contact, source="Kiosk")
    await client.put(f"/visits/{visit['uuid']}", json={"source": "Web"},
                     headers={**tenant.headers, "Idempotency-Key": "k2"})
    batch = {"visits": [{"contact_email": email, "shop_uuid": tenant.shop_uuid, "external_id": "B-1"}]}
    await client.post("/visits/batch", json=batch, headers={**tenant.headers, "Idempotency-Key": "k3"})
    worker = worker_for(app, webhook_retry_schedule=[0, 3600])
    await drain(worker)
    receiver.wait_for("/echo", 1)  # one at a time per subscription: the rest wait behind it
    await client.post("/visits", json={"contact_uuid": contact["uuid"], "shop_uuid": tenant.shop_uuid},
                      headers=tenant.headers)  # its event still pending at the erasure
    rows_before = await rows_holding(database_url, email)
    assert {row.split(":")[0] for row in rows_before} >= {"contacts", "webhook_events", "webhook_deliveries",
                                                          "idempotency_keys"}

    response = await client.post(f"/contacts/{contact['uuid']}/delete", data={"type": "GDPR"}, headers=tenant.headers)
    assert response.status_code == 200
    assert await rows_holding(database_url, email) == []
    delivered = len(receiver.received)
    await drain(worker)  # what was pending goes out, without the email
    await worker.close()
    assert all(email not in r.body.decode() for r in receiver.received[delivered:])
    # A repeat of a key whose answer held the email runs afresh rather than replaying it.
    again = await client.post("/contacts", json={"email": email}, headers={**tenant.headers, "Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.json()["data"]["uuid"] != contact["uuid"]


def test_the_cli_deletes_a_contact(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"

    def footfall(*args):
        result = subprocess.run([sys.executable, "-m", "footfall", *args, "--database-url", url],
                                capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout, result.stderr

    account = json.loads(footfall("accounts", "create", "--name", "CLI")[1])
    contact = json.loads(footfall("contacts", "create", "--account", account["uuid"], "--email", "cli@x.sea")[1])
    code, out, _ = footfall("contacts", "delete", contact["uuid"], "--gdpr")
    assert code == 0 and json.loads(out) == {"deleted": contact["uuid"], "type": "GDPR"}
    code, _, err = footfall("contacts", "delete", contact["uuid"])
    assert code == 1 and "no contact" in err
    code, _, err = footfall("contacts", "delete", "nope")
    assert code == 1 and "CONTACT_UUID" in err
