from uuid import uuid4

from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from tests.conftest import make_tenant


async def test_list_answers_every_shop_by_name(client, app, tenant):
    from uuid import UUID

    from footfall.accounts.service import get_account

    async with app.state.database.transaction(write=True) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
        await shops.create(tx, account, ShopCreate(name="Chum Bucket", type="web"))
    response = await client.get("/shops", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == []
    assert [(s["name"], s["type"], s["reference"]) for s in body["data"]] == [
        ("Chum Bucket", "web", None),
        ("Krusty Krab", "physical", "KK-1"),
    ]
    assert all(set(s) == {"uuid", "name", "type", "reference"} for s in body["data"])


async def test_show_answers_the_shop(client, tenant):
    response = await client.get(f"/shops/{tenant.shop_uuid}", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {
        "data": {"uuid": tenant.shop_uuid, "name": "Krusty Krab", "type": "physical", "reference": "KK-1"},
        "meta": [],
    }


async def test_a_missing_or_foreign_shop_is_1008(client, app, tenant):
    other = await make_tenant(app)
    for uuid in (str(uuid4()), other.shop_uuid):
        response = await client.get(f"/shops/{uuid}", headers=tenant.headers)
        assert response.status_code == 404
        assert response.json() == {"status_code": 404, "code": 1008, "message": "Shop not found."}


async def test_a_malformed_shop_uuid_is_1003(client, tenant):
    response = await client.get("/shops/123", headers=tenant.headers)
    assert response.status_code == 422 and response.json()["code"] == 1003
