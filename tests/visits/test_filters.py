"""GET /visits filters and sort beyond Leat's contact_uuid: each alone, combined, and refused."""

from uuid import UUID, uuid4

import pytest

from footfall.accounts.service import get_account
from footfall.shops import service as shops_service
from footfall.shops.schemas import ShopCreate
from footfall.testing.tenants import Tenant
from tests.conftest import make_tenant


async def listed(client, tenant: Tenant, **params):
    response = await client.get("/visits", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def external_ids(body) -> list[str]:
    return [visit["external_id"] for visit in body["data"]]


@pytest.fixture
async def visits(client, app, tenant):
    """Six visits over two shops and two contacts; starts_at in a known order, created in another."""
    async with app.state.database.transaction(write=True) as tx:  # shops are made by the CLI only
        account = await get_account(tx, UUID(tenant.account_uuid))
        second_shop = await shops_service.create(tx, account, ShopCreate(name="Chum Bucket"))
    other_contact = (await client.post("/contacts", json={"email": "f@x.sea"}, headers=tenant.headers)).json()["data"]
    shops = [tenant.shop_uuid, str(second_shop.uuid)]
    plan = [  # external_id, shop, contact, source, starts_at
        ("v0", 0, tenant.contact_uuid, "Kiosk", "2024-05-03 10:00"),
        ("v1", 1, tenant.contact_uuid, "Web", "2024-05-01 10:00"),
        ("v2", 0, other_contact["uuid"], "Kiosk", "2024-05-02 10:00"),
        ("v3", 1, other_contact["uuid"], "Kiosk", "2024-05-02 10:00"),  # the same start as v2: a tie
        ("v4", 0, tenant.contact_uuid, None, "2024-05-05 10:00"),
        ("v5", 0, other_contact["uuid"], "Web", "2024-05-04 10:00"),
    ]
    made = {}
    for external_id, shop, contact, source, starts_at in plan:
        body = {"contact_uuid": contact, "shop_uuid": shops[shop], "external_id": external_id, "starts_at": starts_at}
        if source:
            body["source"] = source
        response = await client.post("/visits", json=body, headers=tenant.headers)
        assert response.status_code == 201
        made[external_id] = response.json()["data"]
    return {"shops": shops, "other_contact": other_contact["uuid"], "made": made}


async def test_each_filter_alone(client, tenant, visits):
    assert external_ids(await listed(client, tenant, shop_uuid=visits["shops"][1])) == ["v3", "v1"]
    assert external_ids(await listed(client, tenant, source="Kiosk")) == ["v3", "v2", "v0"]
    body = await listed(client, tenant, external_id="v4")
    assert external_ids(body) == ["v4"] and body["meta"]["total"] == 1
    assert external_ids(await listed(client, tenant, **{"starts_at[gte]": "2024-05-04"})) == ["v5", "v4"]
    assert external_ids(await listed(client, tenant, **{"starts_at[gt]": "2024-05-02T10:00:00Z",
                                                        "starts_at[lt]": "2024-05-05 10:00"})) == ["v5", "v0"]
    assert external_ids(await listed(client, tenant,
                                     **{"starts_at[lte]": "2024-05-02T12:00:00+02:00"})) == ["v3", "v2", "v1"]


async def test_filters_combine_with_each_other_and_with_contact_uuid(client, tenant, visits):
    body = await listed(client, tenant, shop_uuid=visits["shops"][0], source="Kiosk",
                        contact_uuid=visits["other_contact"])
    assert external_ids(body) == ["v2"] and body["meta"] == {"current_page": 1, "last_page": 1, "per_page": 30,
                                                             "total": 1}
    body = await listed(client, tenant, shop_uuid=visits["shops"][0], **{"starts_at[gte]": "2024-05-02"}, limit=2)
    assert external_ids(body) == ["v5", "v4"] and body["meta"]["total"] == 4 and body["meta"]["last_page"] == 2
    body = await listed(client, tenant, shop_uuid=visits["shops"][0], **{"starts_at[gte]": "2024-05-02"}, limit=2,
                        page=2)
    assert external_ids(body) == ["v2", "v0"]


async def test_created_and_updated_ranges(client, tenant, visits):
    made = visits["made"]
    # Times out are to the second, stored ones finer: v0's shown created_at is at or before them all.
    assert len(external_ids(await listed(client, tenant, **{"created_at[gte]": made["v0"]["created_at"]}))) == 6
    assert external_ids(await listed(client, tenant, **{"created_at[lt]": made["v0"]["created_at"]})) == []
    assert external_ids(await listed(client, tenant, shop_uuid=visits["shops"][1],
                                     **{"created_at[gt]": "2000-01-01",
                                        "created_at[lte]": "2999-12-31"})) == ["v3", "v1"]
    updated = await client.put(f"/visits/{made['v1']['uuid']}", json={"source": "Kiosk"}, headers=tenant.headers)
    assert updated.status_code == 200
    changes = (await client.get("/visits/changes", headers=tenant.headers)).json()["data"]
    v1_updated_at = next(c["updated_at"] for c in changes if c["uuid"] == made["v1"]["uuid"])
    body = await listed(client, tenant, sort="-updated_at", **{"updated_at[gte]": v1_updated_at})
    assert external_ids(body)[0] == "v1"
    assert "v1" in external_ids(await listed(client, tenant, source="Kiosk", **{"updated_at[gte]": v1_updated_at}))
    assert external_ids(await listed(client, tenant, **{"updated_at[gt]": "2999-01-01"})) == []


@pytest.mark.parametrize("sort, expected", [
    ("starts_at", ["v1", "v2", "v3", "v0", "v5", "v4"]),  # v2 and v3 start together: id breaks the tie
    ("-starts_at", ["v4", "v5", "v0", "v3", "v2", "v1"]),
    ("created_at", ["v0", "v1", "v2", "v3", "v4", "v5"]),
    ("-created_at", ["v5", "v4", "v3", "v2", "v1", "v0"]),
    ("updated_at", ["v0", "v1", "v2", "v3", "v4", "v5"]),
    ("-updated_at", ["v5", "v4", "v3", "v2", "v1", "v0"]),
])
async def test_every_sort_with_a_stable_tie_break(client, tenant, visits, sort, expected):
    assert external_ids(await listed(client, tenant, sort=sort)) == expected
    # Page by page, the same order: nothing shown twice or skipped at a page edge.
    pages = [external_ids(await listed(client, tenant, sort=sort, limit=4, page=page)) for page in (1, 2)]
    assert pages[0] + pages[1] == expected


async def test_an_unknown_shop_or_contact_matches_nothing(client, app, tenant, visits):
    other = await make_tenant(app)
    for params in ({"shop_uuid": str(uuid4())}, {"shop_uuid": other.shop_uuid},
                   {"contact_uuid": str(uuid4()), "source": "Kiosk"}, {"source": "Nowhere"}):
        body = await listed(client, tenant, **params)
        assert body["data"] == [] and body["meta"]["total"] == 0, params


@pytest.mark.parametrize("params, field", [
    ({"shop_uuid": "nope"}, "shop_uuid"),
    ({"created_at[gte]": "01-05-2024"}, "created_at[gte]"),
    ({"starts_at[lt]": "yesterday"}, "starts_at[lt]"),
    ({"updated_at[gt]": ""}, "updated_at[gt]"),
    ({"sort": "uuid"}, "sort"),
    ({"source": "x" * 256}, "source"),
])
async def test_a_malformed_filter_is_1003_on_that_parameter(client, tenant, params, field):
    response = await client.get("/visits", params=params, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["code"] == 1003
    assert list(response.json()["errors"]) == [field]


async def test_a_filtered_page_past_any_offset_is_empty_never_a_500(client, tenant):
    """The filtered page's statement runs first; an offset past an INTEGER's range answers no rows."""
    response = await client.get("/visits", params={"shop_uuid": tenant.shop_uuid, "limit": 100,
                                                   "page": 3_000_000_000}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == [] and response.json()["meta"]["total"] == 0
