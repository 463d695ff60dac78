"""DELETE /visits/{uuid} and the changes feed (GET /visits/changes): what a client mirroring an
account's visits relies on."""

import asyncio
import base64
import random

import pytest

from tests.conftest import make_tenant
from tests.visits.test_routes import create_visit


async def feed(client, tenant, cursor=None, limit=None):
    params = {key: value for key, value in (("cursor", cursor), ("limit", limit)) if value is not None}
    response = await client.get("/visits/changes", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def follow(client, tenant, cursor=None, limit=100):
    """Every change after the cursor, page after page, and the cursor to go on from."""
    changes = []
    while True:
        page = await feed(client, tenant, cursor, limit)
        changes += page["data"]
        cursor = page["meta"]["next_cursor"]
        if not page["meta"]["has_more"]:
            return changes, cursor


async def test_delete_answers_leats_empty_answer_and_the_visit_is_gone(client, tenant):
    visit = (await create_visit(client, tenant, external_id="oops")).json()["data"]
    kept = (await create_visit(client, tenant)).json()["data"]
    response = await client.delete(f"/visits/{visit['uuid']}", headers=tenant.headers)
    assert response.status_code == 200 and response.json() == {"data": [], "meta": []}
    assert (await client.get(f"/visits/{visit['uuid']}", headers=tenant.headers)).json()["code"] == 91001
    again = await client.delete(f"/visits/{visit['uuid']}", headers=tenant.headers)
    assert again.status_code == 404 and again.json()["code"] == 91001
    # The kept counts follow: the list's total and the contact filter's.
    for params in ({}, {"contact_uuid": tenant.contact_uuid}, {"page": 2, "limit": 1}):
        listed = (await client.get("/visits", params=params, headers=tenant.headers)).json()
        assert listed["meta"]["total"] == 1, params
    assert [v["uuid"] for v in (await client.get("/visits", headers=tenant.headers)).json()["data"]] == [kept["uuid"]]


async def test_delete_refuses_other_accounts_unknown_visits_and_read_only_tokens(client, app, tenant):
    other = await make_tenant(app)
    theirs = (await create_visit(client, other)).json()["data"]
    response = await client.delete(f"/visits/{theirs['uuid']}", headers=tenant.headers)
    assert response.status_code == 404 and response.json()["code"] == 91001
    assert (await client.get(f"/visits/{theirs['uuid']}", headers=other.headers)).status_code == 200
    bad = await client.delete("/visits/not-a-uuid", headers=tenant.headers)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["uuid"]


async def test_a_deleted_visits_external_id_makes_a_new_visit(client, tenant):
    old = (await create_visit(client, tenant, external_id="T-1", source="Kiosk")).json()["data"]
    await client.delete(f"/visits/{old['uuid']}", headers=tenant.headers)
    new = await create_visit(client, tenant, external_id="T-1", source="Kiosk")
    assert new.status_code == 201 and new.json()["data"]["uuid"] != old["uuid"]
    changes, _ = await follow(client, tenant)
    assert [(c["uuid"], "deleted_at" in c) for c in changes] == [(old["uuid"], True),
                                                                  (new.json()["data"]["uuid"], False)]


async def test_the_feed_shows_each_visit_once_at_its_latest_change(client, tenant):
    empty = await feed(client, tenant)
    assert empty["data"] == [] and empty["meta"]["has_more"] is False
    start = empty["meta"]["next_cursor"]
    first = (await create_visit(client, tenant, source="a")).json()["data"]
    second = (await create_visit(client, tenant, source="b", external_id="E-2")).json()["data"]
    third = (await create_visit(client, tenant, source="c")).json()["data"]
    updated = (await client.put(f"/visits/{first['uuid']}", json={"source": "a2"}, headers=tenant.headers)).json()
    await client.delete(f"/visits/{second['uuid']}", headers=tenant.headers)

    changes, cursor = await follow(client, tenant, start)
    assert [c["uuid"] for c in changes] == [third["uuid"], first["uuid"], second["uuid"]]
    assert changes[0] == {**third, "updated_at": third["created_at"]}
    assert {k: v for k, v in changes[1].items() if k != "updated_at"} == updated["data"]
    assert changes[1]["updated_at"] >= changes[1]["created_at"]
    tombstone = changes[2]
    assert set(tombstone) == {"uuid", "external_id", "deleted_at"} and tombstone["external_id"] == "E-2"

    # Nothing new: the same cursor back, and no change passed is shown again.
    quiet = await feed(client, tenant, cursor)
    assert quiet["data"] == [] and quiet["meta"]["next_cursor"] == cursor
    await client.put(f"/visits/{third['uuid']}", json={"ends_at": "2030-01-01 10:00"}, headers=tenant.headers)
    later, _ = await follow(client, tenant, cursor)
    assert [c["uuid"] for c in later] == [third["uuid"]] and later[0]["ends_at"] == "2030-01-01T10:00:00+00:00"
    # The Leat routes keep Leat's keys.
    assert "updated_at" not in (await client.get(f"/visits/{third['uuid']}", headers=tenant.headers)).json()["data"]


async def test_the_feed_pages_with_has_more(client, tenant):
    made = [(await create_visit(client, tenant)).json()["data"]["uuid"] for _ in range(5)]
    page = await feed(client, tenant, limit=2)
    assert [c["uuid"] for c in page["data"]] == made[:2] and page["meta"]["has_more"] is True
    rest, _ = await follow(client, tenant, page["meta"]["next_cursor"], limit=2)
    assert [c["uuid"] for c in rest] == made[2:]


async def test_an_account_never_sees_another_accounts_changes_or_cursor(client, app, tenant):
    other = await make_tenant(app)
    await create_visit(client, other)
    assert (await feed(client, tenant))["data"] == []
    their_cursor = (await feed(client, other))["meta"]["next_cursor"]
    response = await client.get("/visits/changes", params={"cursor": their_cursor}, headers=tenant.headers)
    assert response.status_code == 422 and list(response.json()["errors"]) == ["cursor"]


@pytest.mark.parametrize("params", [
    {"cursor": "not a cursor"}, {"cursor": base64.urlsafe_b64encode(b"x:1:2").decode()}, {"cursor": "%%%"},
    {"limit": 1001}, {"limit": -1}, {"limit": "x"},
])
async def test_the_feed_refuses_bad_parameters(client, tenant, params):
    response = await client.get("/visits/changes", params=params, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["code"] == 1003
    assert list(response.json()["errors"]) == list(params)


async def test_a_reader_following_the_feed_under_concurrent_writes_ends_exact(client, tenant):
    """Writers create (alone and in batches, so transactions commit out of start order), update and
    delete while a reader follows the feed into a mirror; afterwards the mirror equals the account,
    and no change was shown twice."""
    rng = random.Random(12)
    live: list[str] = []
    writing = True

    async def writer(n: int) -> None:
        for step in range(25):
            roll = rng.random()
            if roll < 0.4 or len(live) < 5:
                response = await create_visit(client, tenant, source=f"w{n}-{step}")
                live.append(response.json()["data"]["uuid"])
            elif roll < 0.55:
                items = [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid} for _ in range(30)]
                response = await client.post("/visits/batch", json={"visits": items}, headers=tenant.headers)
                live.extend(item["data"]["uuid"] for item in response.json()["data"])
            elif roll < 0.85:
                uuid = rng.choice(live)
                await client.put(f"/visits/{uuid}", json={"source": f"u{n}-{step}"}, headers=tenant.headers)
            else:
                uuid = live.pop(rng.randrange(len(live)))
                await client.delete(f"/visits/{uuid}", headers=tenant.headers)

    mirror: dict[str, dict] = {}
    seen: list[tuple] = []

    async def reader() -> None:
        cursor = None
        while True:
            still_writing = writing
            page = await feed(client, tenant, cursor, limit=7)
            for change in page["data"]:
                seen.append(tuple(sorted((k, str(v)) for k, v in change.items())))
                if "deleted_at" in change:
                    mirror.pop(change["uuid"], None)
                else:
                    mirror[change["uuid"]] = change
            cursor = page["meta"]["next_cursor"]
            if not page["data"]:
                if not still_writing:
                    return
                await asyncio.sleep(0.02)  # within the token's rate limit

    async def writers() -> None:
        nonlocal writing
        await asyncio.gather(*(writer(n) for n in range(6)))
        writing = False

    await asyncio.gather(writers(), reader())
    assert len(seen) == len(set(seen)), "a change was shown twice"
    account = {}
    for page in (1, 2, 3):
        listed = (await client.get("/visits", params={"limit": 500, "page": page}, headers=tenant.headers)).json()
        account.update((visit["uuid"], visit) for visit in listed["data"])
    assert listed["meta"]["total"] == len(live) == len(account) and listed["meta"]["last_page"] <= 3
    assert set(mirror) == set(account) == set(live)
    assert all({k: v for k, v in mirror[uuid].items() if k != "updated_at"} == account[uuid] for uuid in account)


async def test_a_claimed_contacts_visits_come_again_with_its_email(client, tenant):
    anonymous = (await client.post("/contacts/anonymous", headers=tenant.headers)).json()["data"]
    visit = (await client.post("/visits", json={"contact_uuid": anonymous["uuid"], "shop_uuid": tenant.shop_uuid},
                               headers=tenant.headers)).json()["data"]
    changes, cursor = await follow(client, tenant)
    assert [c["contact"]["email"] for c in changes] == [None]
    await client.put(f"/contacts/{anonymous['uuid']}/claim", json={"email": "new@x.sea"}, headers=tenant.headers)
    changes, _ = await follow(client, tenant, cursor)
    assert [(c["uuid"], c["contact"]["email"]) for c in changes] == [(visit["uuid"], "new@x.sea")]


async def test_a_delete_repeated_with_its_idempotency_key_answers_the_first_answer(client, tenant):
    visit = (await create_visit(client, tenant)).json()["data"]
    headers = {**tenant.headers, "Idempotency-Key": "3f1c7a52-delete-once"}
    first = await client.delete(f"/visits/{visit['uuid']}", headers=headers)
    again = await client.delete(f"/visits/{visit['uuid']}", headers=headers)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert (await client.delete(f"/visits/{visit['uuid']}", headers=tenant.headers)).status_code == 404


@pytest.mark.parametrize("position", ["99999999999999999999:0", f"{2**63}:0", f"0:{2**63}", f"{2**63 - 1}:{2**64}"])
async def test_a_cursor_past_any_position_is_refused_as_a_cursor(client, tenant, position):
    cursor = base64.urlsafe_b64encode(f"{tenant.account_uuid}:{position}".encode()).decode().rstrip("=")
    response = await client.get("/visits/changes", params={"cursor": cursor}, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["code"] == 1003
    assert list(response.json()["errors"]) == ["cursor"]


async def test_the_last_position_there_can_be_is_a_cursor(client, tenant):
    cursor = base64.urlsafe_b64encode(f"{tenant.account_uuid}:{2**63 - 1}:{2**63 - 1}".encode()).decode()
    response = await client.get("/visits/changes", params={"cursor": cursor}, headers=tenant.headers)
    assert response.status_code == 200 and response.json()["data"] == []
