from uuid import UUID, uuid4

import pytest
from sqlalchemy import String, bindparam, cast, literal_column, select

from footfall.db import Statement
from footfall.tables import contacts
from tests.conftest import make_tenant
from tests.visits.test_routes import create_visit


async def test_create_answers_201_and_then_the_same_contact(client, tenant):
    first = await client.post("/contacts", json={"email": "Sandy@Treedome.sea"}, headers=tenant.headers)
    assert first.status_code == 201
    contact = first.json()["data"]
    assert contact["email"] == "sandy@treedome.sea"
    assert first.json()["meta"] == []
    again = await client.post("/contacts", data={"email": " sandy@treedome.sea"}, headers=tenant.headers)
    assert again.status_code == 200 and again.json()["data"] == contact


async def test_one_email_in_two_accounts_is_two_contacts(client, app, tenant):
    other = await make_tenant(app)
    mine = await client.post("/contacts", json={"email": "gary@snail.sea"}, headers=tenant.headers)
    theirs = await client.post("/contacts", json={"email": "gary@snail.sea"}, headers=other.headers)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["data"]["uuid"] != theirs.json()["data"]["uuid"]


@pytest.mark.parametrize("email", ["", "no-at-sign", "two@@x.sea", "a b@x.sea", None, 42, "x@" + "y" * 300 + ".sea",
                                   "a\x00@x.sea"])
async def test_create_refuses_a_bad_email(client, tenant, email):
    response = await client.post("/contacts", json={"email": email}, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == ["email"]


async def test_show_answers_the_contact_and_55031_when_missing(client, app, tenant):
    response = await client.get(f"/contacts/{tenant.contact_uuid}", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"uuid": tenant.contact_uuid, "email": tenant.contact_email, "visit_count": 0,
                                        "first_visit_at": None, "last_visit_at": None}, "meta": []}
    other = await make_tenant(app)
    for uuid in (str(uuid4()), other.contact_uuid):
        response = await client.get(f"/contacts/{uuid}", headers=tenant.headers)
        assert response.status_code == 404
        assert response.json() == {"status_code": 404, "code": 55031, "message": "Contact not found."}


async def test_a_contact_shows_its_visit_count_and_first_and_last_visit(client, tenant):
    async def contact():
        shown = (await client.get(f"/contacts/{tenant.contact_uuid}", headers=tenant.headers)).json()["data"]
        listed = (await client.get("/contacts", headers=tenant.headers)).json()["data"]
        assert [c for c in listed if c["uuid"] == tenant.contact_uuid] == [shown]
        return shown["visit_count"], shown["first_visit_at"], shown["last_visit_at"]

    made = []
    for starts_at in ("2024-05-02T10:00:00Z", "2024-05-01T09:00:00+02:00", "2024-05-03T10:00:00Z"):
        made.append((await create_visit(client, tenant, starts_at=starts_at)).json()["data"]["uuid"])
    assert await contact() == (3, "2024-05-01T07:00:00+00:00", "2024-05-03T10:00:00+00:00")
    moved = await client.put(f"/visits/{made[2]}", json={"starts_at": "2024-04-30T10:00:00Z"}, headers=tenant.headers)
    assert moved.status_code == 200
    assert await contact() == (3, "2024-04-30T10:00:00+00:00", "2024-05-02T10:00:00+00:00")
    for uuid in made[:2]:
        assert (await client.delete(f"/visits/{uuid}", headers=tenant.headers)).status_code == 200
    assert await contact() == (1, "2024-04-30T10:00:00+00:00", "2024-04-30T10:00:00+00:00")
    batch = [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "starts_at": "2025-01-01"}]
    assert (await client.post("/visits/batch", json={"visits": batch}, headers=tenant.headers)).status_code == 200
    assert await contact() == (2, "2024-04-30T10:00:00+00:00", "2025-01-01T00:00:00+00:00")


async def test_list_pages_newest_first(client, tenant):
    emails = [f"c{n}@bikinibottom.sea" for n in range(3)]
    for email in emails:
        await client.post("/contacts", json={"email": email}, headers=tenant.headers)
    body = (await client.get("/contacts", params={"limit": 2}, headers=tenant.headers)).json()
    assert body["meta"] == {"current_page": 1, "last_page": 2, "per_page": 2, "total": 4}
    assert [c["email"] for c in body["data"]] == ["c2@bikinibottom.sea", "c1@bikinibottom.sea"]
    body = (await client.get("/contacts", params={"limit": 2, "page": 2}, headers=tenant.headers)).json()
    assert [c["email"] for c in body["data"]] == ["c0@bikinibottom.sea", tenant.contact_email]


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": -1}, {"page": 0}, {"page": "x"}])
async def test_list_refuses_bad_parameters(client, tenant, params):
    response = await client.get("/contacts", params=params, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["code"] == 1003


async def test_find_one_by_email_answers_the_contact_or_55031(client, tenant):
    found = await client.get("/contacts/find-one-by", params={"email": tenant.contact_email.upper()},
                             headers=tenant.headers)
    assert found.status_code == 200
    assert found.json() == {"data": {"uuid": tenant.contact_uuid, "email": tenant.contact_email, "visit_count": 0,
                                     "first_visit_at": None, "last_visit_at": None}, "meta": []}
    missing = await client.get("/contacts/find-one-by", params={"email": "nobody@bikinibottom.sea"},
                               headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["code"] == 55031
    bad = await client.get("/contacts/find-one-by", params={"email": "not an email"}, headers=tenant.headers)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["email"]


async def test_find_or_create_answers_the_contact_creating_it_once(client, tenant):
    email = "Plankton@Chumbucket.sea"
    first = await client.get("/contacts/find-or-create", params={"email": email}, headers=tenant.headers)
    again = await client.get("/contacts/find-or-create", params={"email": email.lower()}, headers=tenant.headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["data"] == again.json()["data"] and first.json()["data"]["email"] == email.lower()
    assert (await client.get("/contacts", headers=tenant.headers)).json()["meta"]["total"] == 2
    assert (await client.get("/contacts/find-one-by", params={"email": email},
                             headers=tenant.headers)).json()["data"] == first.json()["data"]


async def test_the_async_routes_answer_at_once_as_their_plain_twins(client, tenant):
    created = await client.post("/contacts/async", data={"email": "Pearl@Krabs.sea"}, headers=tenant.headers)
    assert created.status_code == 201 and created.json()["data"]["email"] == "pearl@krabs.sea"
    again = await client.post("/contacts/async", json={"email": "pearl@krabs.sea"}, headers=tenant.headers)
    assert again.status_code == 200 and again.json() == created.json()
    found = await client.get("/contacts/find-or-create/async", params={"email": "PEARL@krabs.sea"},
                             headers=tenant.headers)
    assert found.status_code == 200 and found.json() == created.json()
    made = await client.get("/contacts/find-or-create/async", params={"email": "karen@chumbucket.sea"},
                            headers=tenant.headers)
    assert made.status_code == 200 and made.json()["data"]["email"] == "karen@chumbucket.sea"
    bad = await client.post("/contacts/async", json={"email": "nope"}, headers=tenant.headers)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["email"]


async def test_an_anonymous_contact_records_visits_and_is_claimed_with_an_email(client, tenant):
    created = await client.post("/contacts/anonymous", data={}, headers=tenant.headers)
    assert created.status_code == 201
    contact = created.json()["data"]
    assert contact["email"] is None and created.json()["meta"] == []
    visit = await client.post("/visits", json={"contact_uuid": contact["uuid"], "shop_uuid": tenant.shop_uuid},
                              headers=tenant.headers)
    # A visit shows its contact in Leat's shape: the uuid and the email only.
    assert visit.status_code == 201 and visit.json()["data"]["contact"] == {"uuid": contact["uuid"], "email": None}
    # Two anonymous contacts are two contacts: their missing emails never collide.
    other = await client.post("/contacts/anonymous", headers=tenant.headers)
    assert other.status_code == 201 and other.json()["data"]["uuid"] != contact["uuid"]

    claimed = await client.put(f"/contacts/{contact['uuid']}/claim", data={"email": "Squidward@Tentacles.sea"},
                               headers=tenant.headers)
    assert claimed.status_code == 200
    assert claimed.json()["data"] == {**contact, "email": "squidward@tentacles.sea", "visit_count": 1,
                                      "first_visit_at": visit.json()["data"]["starts_at"],
                                      "last_visit_at": visit.json()["data"]["starts_at"]}
    again = await client.put(f"/contacts/{contact['uuid']}/claim", json={"email": "squidward@tentacles.sea"},
                             headers=tenant.headers)
    assert again.status_code == 200 and again.json() == claimed.json()
    shown = await client.get(f"/visits/{visit.json()['data']['uuid']}", headers=tenant.headers)
    assert shown.json()["data"]["contact"] == {"uuid": contact["uuid"], "email": "squidward@tentacles.sea"}
    found = await client.get("/contacts/find-one-by", params={"email": "squidward@tentacles.sea"},
                             headers=tenant.headers)
    assert found.json()["data"]["uuid"] == contact["uuid"]


async def test_a_claim_is_refused_an_email_taken_or_a_contact_not_anonymous(client, app, tenant):
    anonymous = (await client.post("/contacts/anonymous", headers=tenant.headers)).json()["data"]
    taken = await client.put(f"/contacts/{anonymous['uuid']}/claim", json={"email": tenant.contact_email},
                             headers=tenant.headers)
    assert taken.status_code == 422 and taken.json()["errors"] == {
        "email": ["Another contact of the account has this email."]}
    not_anonymous = await client.put(f"/contacts/{tenant.contact_uuid}/claim", json={"email": "new@x.sea"},
                                     headers=tenant.headers)
    assert not_anonymous.status_code == 422 and not_anonymous.json()["errors"] == {
        "email": ["This contact is not anonymous: it has an email already."]}
    other = await make_tenant(app)
    for uuid in (str(uuid4()), other.contact_uuid):
        missing = await client.put(f"/contacts/{uuid}/claim", json={"email": "new@x.sea"}, headers=tenant.headers)
        assert missing.status_code == 404 and missing.json()["code"] == 55031
    bad = await client.put(f"/contacts/{anonymous['uuid']}/claim", json={}, headers=tenant.headers)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["email"]


async def test_an_anonymous_contact_refuses_an_identifier_footfall_does_not_keep(client, tenant):
    response = await client.post("/contacts/anonymous", data={"contact_identifier_value": "CARD-1"},
                                 headers=tenant.headers)
    assert response.status_code == 422 and list(response.json()["errors"]) == ["contact_identifier_value"]
    empty = await client.post("/contacts/anonymous", data={"contact_identifier_value": ""}, headers=tenant.headers)
    assert empty.status_code == 201


async def test_visit_writes_leave_the_contact_row_alone(client, app, tenant):
    """The contact's count is kept off its row: every visit read joins that row, and old versions of
    it, one a visit write, were what reads walked (docs/scaling.md). PostgreSQL shows a row's
    version (xmin); SQLite keeps none to compare."""
    database = app.state.database
    if database.dialect != "postgresql":
        pytest.skip("SQLite keeps no row version to compare; the PostgreSQL run checks it")
    version = Statement(select(cast(literal_column("xmin"), String).label("version"))
                        .where(contacts.c.uuid == bindparam("uuid", type_=contacts.c.uuid.type)), dialect="postgresql")

    async def contact_version() -> str:
        async with database.transaction(write=False) as tx:
            return await tx.fetchval(version, {"uuid": UUID(tenant.contact_uuid)})

    before = await contact_version()
    for _ in range(3):
        await create_visit(client, tenant)
    shown = await client.get(f"/contacts/{tenant.contact_uuid}", headers=tenant.headers)
    assert shown.json()["data"]["visit_count"] == 3
    assert await contact_version() == before
