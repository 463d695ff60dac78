"""The Visits API, route by route, as Leat's documentation page describes it."""

import asyncio
import re
from uuid import uuid4

import pytest

from footfall.testing.tenants import Tenant

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
VISIT_KEYS = {"uuid", "contact", "external_id", "source", "starts_at", "ends_at", "created_at"}


async def create_visit(client, tenant: Tenant, **fields):
    body = {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **fields}
    return await client.post("/visits", json=body, headers=tenant.headers)


async def test_create_answers_201_with_the_visit_in_leats_shape(client, tenant):
    response = await create_visit(
        client,
        tenant,
        external_id="ee33d7e5",
        source="Website",
        starts_at="2024-05-01T20:00:00+00:00",
        ends_at="2024-05-01T22:30:00+00:00",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"data", "meta"} and body["meta"] == []
    visit = body["data"]
    assert set(visit) == VISIT_KEYS
    assert visit["contact"] == {"uuid": tenant.contact_uuid, "email": tenant.contact_email}
    assert visit["external_id"] == "ee33d7e5"
    assert visit["source"] == "Website"
    assert visit["starts_at"] == "2024-05-01T20:00:00+00:00"
    assert visit["ends_at"] == "2024-05-01T22:30:00+00:00"
    assert TIME.match(visit["created_at"])


async def test_create_with_only_the_required_fields(client, tenant):
    response = await create_visit(client, tenant)
    assert response.status_code == 201
    visit = response.json()["data"]
    assert visit["external_id"] is None and visit["source"] is None and visit["ends_at"] is None
    # starts_at defaults to the moment of creation
    assert TIME.match(visit["starts_at"]) and visit["starts_at"] == visit["created_at"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2024-05-01T22:00:00+02:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01T15:00:00-05:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01T20:00:00Z", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01T20:00:00", "2024-05-01T20:00:00+00:00"),  # no offset means UTC
        ("2024-05-01T20:00:00.987654+00:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01 20:00:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01", "2024-05-01T00:00:00+00:00"),
        # As Leat's own request collection writes them: a space, no seconds, no offset.
        ("2024-05-01 20:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01T20:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01T22:00+02:00", "2024-05-01T20:00:00+00:00"),
        ("2024-05-01 20:00:00.5Z", "2024-05-01T20:00:00+00:00"),
        ("  2024-05-01 20:00  ", "2024-05-01T20:00:00+00:00"),
    ],
)
async def test_times_in_any_offset_come_back_in_utc_seconds(client, tenant, given, stored):
    response = await create_visit(client, tenant, starts_at=given)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["starts_at"] == stored


@pytest.mark.parametrize("given", ["yesterday", "2024/05/01 20:00", "01-05-2024", "1714593600", "2024-05-01 25:00",
                                   "2024-02-30", "2024-05-01T20:00:00+25:00", "20:00"])
async def test_a_time_in_no_form_footfall_reads_is_1003_on_its_field(client, tenant, given):
    response = await create_visit(client, tenant, starts_at=given)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == 1003 and list(body["errors"]) == ["starts_at"]


async def test_create_accepts_form_encoded_bodies_as_the_php_sdk_sends_them(client, tenant):
    response = await client.post(
        "/visits",
        data={
            "contact_uuid": tenant.contact_uuid,
            "shop_uuid": tenant.shop_uuid,
            "source": "Kiosk",
            "starts_at": "2024-05-01T20:00:00+00:00",
            "ends_at": "",  # an empty form field is an absent value, as in Laravel
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["source"] == "Kiosk"
    assert response.json()["data"]["ends_at"] is None


async def test_show_answers_the_visit(client, tenant):
    created = (await create_visit(client, tenant, source="Kiosk")).json()["data"]
    response = await client.get(f"/visits/{created['uuid']}", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"data": created, "meta": []}


async def test_show_of_a_missing_visit_is_404_with_a_code(client, tenant):
    response = await client.get(f"/visits/{uuid4()}", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": 91001, "message": "Visit not found."}


async def test_show_of_a_malformed_uuid_is_invalid_input(client, tenant):
    response = await client.get("/visits/not-a-uuid", headers=tenant.headers)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 1003 and body["message"] == "Invalid input." and "uuid" in body["errors"]


async def test_create_refuses_unknown_contact_and_shop_with_leats_codes(client, tenant):
    response = await create_visit(client, tenant, contact_uuid=str(uuid4()))
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": 55031, "message": "Contact not found."}
    response = await create_visit(client, tenant, shop_uuid=str(uuid4()))
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": 1008, "message": "Shop not found."}


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"contact_uuid": "nope"}, "contact_uuid"),
        ({"shop_uuid": 12}, "shop_uuid"),
        ({"contact_uuid": None}, "contact_uuid"),
        ({"starts_at": "yesterday"}, "starts_at"),
        ({"starts_at": "2024-13-01T00:00:00"}, "starts_at"),
        ({"starts_at": 1714593600}, "starts_at"),
        ({"ends_at": "2024-05-01T19:59:59+00:00", "starts_at": "2024-05-01T20:00:00+00:00"}, "ends_at"),
        ({"ends_at": "2000-01-01T00:00:00+00:00"}, "ends_at"),  # before the default start, now
        ({"starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at"),  # before year 1 in UTC
        ({"starts_at": "0001-01-01T00:00:00.5"}, "starts_at"),  # the first moment: PostgreSQL's -infinity to asyncpg
        ({"external_id": 12345}, "external_id"),
        ({"external_id": "x" * 256}, "external_id"),
        ({"source": "a\x00b"}, "source"),
        ({"source": ["Kiosk"]}, "source"),
        ({"source": "x" * 1_000_000}, "source"),
    ],
)
async def test_create_refuses_bad_fields_with_1003_per_field(client, tenant, fields, bad):
    response = await create_visit(client, tenant, **fields)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status_code"] == 422 and body["code"] == 1003 and body["message"] == "Invalid input."
    assert list(body["errors"]) == [bad]
    assert all(isinstance(m, str) for m in body["errors"][bad])


async def test_create_names_every_bad_field(client, tenant):
    response = await client.post(
        "/visits", json={"shop_uuid": "x", "starts_at": "never"}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"contact_uuid", "shop_uuid", "starts_at"}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"12", "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"limit": 1' + b"0" * 5000 + b"}", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"", "application/json"),
    ],
)
async def test_a_bad_body_is_invalid_input_never_a_500(client, tenant, content, content_type):
    response = await client.post(
        "/visits", content=content, headers={**tenant.headers, "Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003


async def test_external_id_retry_with_the_same_fields_answers_the_stored_visit(client, tenant):
    fields = {"external_id": "till-7-0001", "source": "Kiosk", "starts_at": "2024-05-01T20:00:00+02:00"}
    first = await create_visit(client, tenant, **fields)
    again = await create_visit(client, tenant, **fields)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    # A retry giving fewer fields, all equal, is still the same visit.
    fewer = await create_visit(client, tenant, external_id="till-7-0001")
    assert fewer.status_code == 200 and fewer.json() == first.json()
    listing = await client.get("/visits", headers=tenant.headers)
    assert listing.json()["meta"]["total"] == 1


@pytest.mark.parametrize(
    "different",
    [{"source": "Website"}, {"starts_at": "2024-05-01T20:00:01+02:00"}, {"ends_at": "2024-05-02T00:00:00Z"}],
)
async def test_external_id_reused_with_other_fields_is_409(client, tenant, different):
    fields = {"external_id": "till-7-0002", "source": "Kiosk", "starts_at": "2024-05-01T20:00:00+02:00"}
    assert (await create_visit(client, tenant, **fields)).status_code == 201
    response = await create_visit(client, tenant, **{**fields, **different})
    assert response.status_code == 409
    assert response.json()["code"] == 91002


async def test_external_id_reused_for_another_shop_is_409(client, app, tenant):
    from tests.conftest import make_tenant

    assert (await create_visit(client, tenant, external_id="x-1")).status_code == 201
    # Same account, another contact: a different visit.
    other_contact = (await client.post("/contacts", json={"email": "other@x.sea"}, headers=tenant.headers)).json()
    response = await create_visit(client, tenant, external_id="x-1", contact_uuid=other_contact["data"]["uuid"])
    assert response.status_code == 409
    # The same external_id in another account is another account's business.
    other = await make_tenant(app)
    assert (await create_visit(client, other, external_id="x-1")).status_code == 201


async def test_concurrent_creates_with_one_external_id_store_one_visit(client, tenant):
    responses = await asyncio.gather(*(create_visit(client, tenant, external_id="race-1") for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201], [r.text for r in responses]
    assert len({r.json()["data"]["uuid"] for r in responses}) == 1
    listing = await client.get("/visits", headers=tenant.headers)
    assert listing.json()["meta"]["total"] == 1


async def test_update_changes_only_the_fields_sent(client, tenant):
    created = (
        await create_visit(client, tenant, external_id="u-1", source="Kiosk", starts_at="2024-05-01T20:00:00Z")
    ).json()["data"]
    response = await client.put(
        f"/visits/{created['uuid']}", json={"ends_at": "2024-05-01T22:30:00+00:00"}, headers=tenant.headers
    )
    assert response.status_code == 200
    updated = response.json()["data"]
    assert updated == {**created, "ends_at": "2024-05-01T22:30:00+00:00"}
    response = await client.put(
        f"/visits/{created['uuid']}",
        data={"source": "Website", "external_id": "u-2", "starts_at": "2024-05-01T21:00:00+01:00"},
        headers=tenant.headers,
    )
    assert response.status_code == 200
    assert response.json()["data"] == {
        **updated,
        "source": "Website",
        "external_id": "u-2",
        "starts_at": "2024-05-01T20:00:00+00:00",
    }
    shown = await client.get(f"/visits/{created['uuid']}", headers=tenant.headers)
    assert shown.json()["data"] == response.json()["data"]


async def test_update_can_clear_optional_fields(client, tenant):
    created = (await create_visit(client, tenant, source="Kiosk", ends_at="2099-01-01T00:00:00Z")).json()["data"]
    response = await client.put(
        f"/visits/{created['uuid']}", json={"source": None, "ends_at": None}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert response.json()["data"]["source"] is None and response.json()["data"]["ends_at"] is None


async def test_update_with_an_empty_body_changes_nothing(client, tenant):
    created = (await create_visit(client, tenant, source="Kiosk")).json()["data"]
    response = await client.put(f"/visits/{created['uuid']}", json={}, headers=tenant.headers)
    assert response.status_code == 200 and response.json()["data"] == created


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"contact_uuid": "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"}, "contact_uuid"),
        ({"shop_uuid": "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"}, "shop_uuid"),
        ({"starts_at": None}, "starts_at"),
        ({"starts_at": "soon"}, "starts_at"),
        ({"ends_at": "2024-05-01T19:00:00Z"}, "ends_at"),  # before the stored start
        ({"external_id": "\x00"}, "external_id"),
    ],
)
async def test_update_refuses_bad_fields_with_1003(client, tenant, fields, bad):
    created = (await create_visit(client, tenant, starts_at="2024-05-01T20:00:00Z")).json()["data"]
    response = await client.put(f"/visits/{created['uuid']}", json=fields, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == [bad]
    unchanged = await client.get(f"/visits/{created['uuid']}", headers=tenant.headers)
    assert unchanged.json()["data"] == created


async def test_update_to_an_external_id_in_use_is_409_and_changes_nothing(client, tenant):
    await create_visit(client, tenant, external_id="taken")
    created = (await create_visit(client, tenant, external_id="mine", source="Kiosk")).json()["data"]
    response = await client.put(
        f"/visits/{created['uuid']}", json={"external_id": "taken", "source": "Web"}, headers=tenant.headers
    )
    assert response.status_code == 409 and response.json()["code"] == 91002
    unchanged = await client.get(f"/visits/{created['uuid']}", headers=tenant.headers)
    assert unchanged.json()["data"] == created


async def test_update_of_a_missing_visit_is_404(client, tenant):
    response = await client.put(f"/visits/{uuid4()}", json={"source": "x"}, headers=tenant.headers)
    assert response.status_code == 404 and response.json()["code"] == 91001


async def test_list_is_newest_first_with_laravel_meta(client, tenant):
    created = [(await create_visit(client, tenant, external_id=f"l-{n}")).json()["data"] for n in range(5)]
    response = await client.get("/visits", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == {"current_page": 1, "last_page": 1, "per_page": 30, "total": 5}
    assert body["data"] == list(reversed(created))


async def test_list_pages(client, tenant):
    created = [(await create_visit(client, tenant, external_id=f"p-{n}")).json()["data"] for n in range(5)]
    newest_first = [v["uuid"] for v in reversed(created)]
    seen = []
    for page in (1, 2, 3):
        body = (await client.get("/visits", params={"limit": 2, "page": page}, headers=tenant.headers)).json()
        assert body["meta"] == {"current_page": page, "last_page": 3, "per_page": 2, "total": 5}
        seen += [v["uuid"] for v in body["data"]]
    assert seen == newest_first
    past = (await client.get("/visits", params={"limit": 2, "page": 9}, headers=tenant.headers)).json()
    assert past == {"data": [], "meta": {"current_page": 9, "last_page": 3, "per_page": 2, "total": 5}}
    huge = (await client.get("/visits", params={"page": 10**30}, headers=tenant.headers)).json()
    assert huge["data"] == [] and huge["meta"]["current_page"] == 10**30


async def test_list_with_limit_zero_answers_the_total_only(client, tenant):
    for _n in range(3):
        await create_visit(client, tenant)
    body = (await client.get("/visits", params={"limit": 0}, headers=tenant.headers)).json()
    assert body == {"data": [], "meta": {"current_page": 1, "last_page": 1, "per_page": 0, "total": 3}}


async def test_an_empty_list(client, tenant):
    body = (await client.get("/visits", headers=tenant.headers)).json()
    assert body == {"data": [], "meta": {"current_page": 1, "last_page": 1, "per_page": 30, "total": 0}}


async def test_list_limit_500_is_allowed(client, tenant):
    response = await client.get("/visits", params={"limit": 500}, headers=tenant.headers)
    assert response.status_code == 200 and response.json()["meta"]["per_page"] == 500


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"limit": 501}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": "9" * 5000}, "limit"),
        ({"page": 0}, "page"),
        ({"page": "two"}, "page"),
        ({"contact_uuid": "not-a-uuid"}, "contact_uuid"),
        ({"contact_uuid": "\x00"}, "contact_uuid"),
    ],
)
async def test_list_refuses_bad_parameters_with_1003(client, tenant, params, bad):
    response = await client.get("/visits", params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == [bad]


async def test_list_filters_by_contact(client, tenant):
    other = (await client.post("/contacts", json={"email": "patrick@bikinibottom.sea"}, headers=tenant.headers)).json()
    mine = (await create_visit(client, tenant)).json()["data"]
    theirs = (await create_visit(client, tenant, contact_uuid=other["data"]["uuid"])).json()["data"]
    body = (await client.get("/visits", params={"contact_uuid": tenant.contact_uuid}, headers=tenant.headers)).json()
    assert body["data"] == [mine] and body["meta"]["total"] == 1
    body = (
        await client.get("/visits", params={"contact_uuid": other["data"]["uuid"]}, headers=tenant.headers)
    ).json()
    assert body["data"] == [theirs] and body["meta"]["total"] == 1
    body = (await client.get("/visits", params={"contact_uuid": str(uuid4())}, headers=tenant.headers)).json()
    assert body == {"data": [], "meta": {"current_page": 1, "last_page": 1, "per_page": 30, "total": 0}}


async def test_text_fields_are_stored_and_returned_intact(client, tenant):
    source = "O'Brien \"quoted\" <b>bold</b> '; DROP TABLE visits; -- 🎉 ß"
    created = await create_visit(client, tenant, source=source, external_id="ext ' \" 🎉")
    assert created.status_code == 201
    shown = await client.get(f"/visits/{created.json()['data']['uuid']}", headers=tenant.headers)
    assert shown.json()["data"]["source"] == source
    assert shown.json()["data"]["external_id"] == "ext ' \" 🎉"


async def test_every_page_of_every_size_is_the_right_slice(client, tenant):
    # Pages in the older half are read from the oldest end; each must still be the right slice.
    created = [(await create_visit(client, tenant, external_id=f"s-{n}")).json()["data"]["uuid"] for n in range(11)]
    newest_first = created[::-1]
    for limit in range(1, 13):
        last_page = max(1, -(-11 // limit))
        for page in range(1, last_page + 2):
            body = (await client.get("/visits", params={"limit": limit, "page": page}, headers=tenant.headers)).json()
            assert [v["uuid"] for v in body["data"]] == newest_first[(page - 1) * limit : page * limit], (limit, page)
            assert body["meta"] == {"current_page": page, "last_page": last_page, "per_page": limit, "total": 11}
        by_contact = (
            await client.get(
                "/visits", params={"limit": limit, "page": last_page, "contact_uuid": tenant.contact_uuid},
                headers=tenant.headers,
            )
        ).json()
        assert [v["uuid"] for v in by_contact["data"]] == newest_first[(last_page - 1) * limit : last_page * limit]


async def test_a_visit_deleted_while_its_contact_is_deleted_waits_and_answers_404(client, app, tenant):
    """A visit's delete holds its contact before it touches the visit, as every write to a contact's
    visits does: it waits for the contact's delete instead of deadlocking with it (the delete holds
    the contact and then deletes its visits; the visit's counts then read the contact)."""
    from uuid import UUID

    from footfall.accounts.service import get_account
    from footfall.contacts.repository import ContactRepository
    from footfall.kit.time import utcnow
    from footfall.visits.repository import VisitRepository

    visit = (await create_visit(client, tenant)).json()["data"]
    async with app.state.database.transaction(write=False) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
        contact = await ContactRepository(tx).get(account.id, UUID(tenant.contact_uuid))
    async with app.state.database.transaction(write=True) as tx:
        assert await ContactRepository(tx).lock(contact.id)
        deleting = asyncio.create_task(client.delete(f"/visits/{visit['uuid']}", headers=tenant.headers))
        await asyncio.sleep(0.3)
        assert [row.uuid for row in await VisitRepository(tx).delete_contact_visits(
            account.id, contact.id, utcnow())] == [UUID(visit["uuid"])]
        assert await ContactRepository(tx).delete(contact.id)
    response = await deleting
    assert response.status_code == 404, response.text
