"""GET /visits/stats holds at most MAX_ITEMS items (buckets times groups): a bigger answer is refused
with 1003 on group_by before anything is counted, by the period's own groups (not the account's)."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from footfall.accounts.service import get_account
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from footfall.stats.service import MAX_BUCKETS, MAX_ITEMS

T0 = datetime(2024, 1, 1, tzinfo=UTC)
GROUPS = MAX_ITEMS // MAX_BUCKETS + 1  # so many groups overflow at MAX_BUCKETS buckets
FITS = MAX_ITEMS // GROUPS  # the most buckets of GROUPS groups: one more bucket overflows


def hours(count: int) -> dict[str, str]:
    end = T0 + timedelta(hours=count)
    return {"interval": "hour", "starts_at[gte]": T0.isoformat(), "starts_at[lt]": end.isoformat()}


async def batch(client, tenant, visits):
    items = [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **visit} for visit in visits]
    response = await client.post("/visits/batch", json={"visits": items}, headers=tenant.headers)
    assert response.status_code == 200 and response.json()["meta"]["failed"] == 0, response.text


async def account_id(app, tenant) -> int:
    async with app.state.database.transaction(write=False) as tx:
        return (await get_account(tx, UUID(tenant.account_uuid))).id


def refused_on_group_by(response):
    assert response.status_code == 422, response.text[:300]
    body = response.json()
    assert (body["code"], list(body["errors"])) == (1003, ["group_by"])
    assert str(MAX_ITEMS) in body["errors"]["group_by"][0]


async def test_sources_times_buckets_past_the_limit_are_refused_before_counting(client, app, tenant):
    # GROUPS sources in the period, one more only before it: the account has more sources than fit.
    await batch(client, tenant, [{"source": f"s{n:02d}", "starts_at": (T0 + timedelta(hours=n)).isoformat()}
                                 for n in range(GROUPS)] + [{"source": "older", "starts_at": "2020-01-01T00:00:00Z"}])
    mine = await account_id(app, tenant)

    fits = await client.get("/visits/stats", params={**hours(FITS), "group_by": "source"}, headers=tenant.headers)
    assert fits.status_code == 200
    data = fits.json()["data"]
    assert len(data) == GROUPS * FITS <= MAX_ITEMS and sum(item["visits"] for item in data) == GROUPS
    assert "older" not in {item["source"] for item in data}

    over = hours(FITS + 1)
    kept = [key for key in app.state.stats_cache.entries if key[0] == mine]
    refused_on_group_by(await client.get("/visits/stats", params={**over, "group_by": "source"},
                                         headers=tenant.headers))
    # Refused before counting: nothing was counted into the cache for the refused query.
    assert [key for key in app.state.stats_cache.entries if key[0] == mine] == kept
    # One group, or none: the same buckets fit.
    one = await client.get("/visits/stats", params={**over, "group_by": "source", "source": "s00"},
                           headers=tenant.headers)
    assert one.status_code == 200 and len(one.json()["data"]) == FITS + 1
    whole = await client.get("/visits/stats", params=over, headers=tenant.headers)
    assert whole.status_code == 200 and len(whole.json()["data"]) == FITS + 1

    # Visits without a source are a group of their own.
    await batch(client, tenant, [{"starts_at": (T0 + timedelta(hours=FITS - 1)).isoformat()}])
    refused_on_group_by(await client.get("/visits/stats", params={**hours(FITS), "group_by": "source"},
                                         headers=tenant.headers))


async def test_shops_times_buckets_past_the_limit_are_refused(client, app, tenant):
    async with app.state.database.transaction(write=True) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
        # GROUPS shops with a visit each, and one more without: more shops than fit.
        made = [str((await shops.create(tx, account, ShopCreate(name=f"Shop {n}", type="web"))).uuid)
                for n in range(GROUPS)]
    visited = [tenant.shop_uuid, *made[:-1]]
    await batch(client, tenant, [{"shop_uuid": shop, "starts_at": (T0 + timedelta(hours=n)).isoformat()}
                                 for n, shop in enumerate(visited)])

    fits = await client.get("/visits/stats", params={**hours(FITS), "group_by": "shop"}, headers=tenant.headers)
    assert fits.status_code == 200
    assert {item["shop_uuid"] for item in fits.json()["data"]} == set(visited)
    refused_on_group_by(await client.get("/visits/stats", params={**hours(FITS + 1), "group_by": "shop"},
                                         headers=tenant.headers))
    one = await client.get("/visits/stats", params={**hours(FITS + 1), "group_by": "shop", "shop_uuid": made[0]},
                           headers=tenant.headers)
    assert one.status_code == 200 and sum(item["visits"] for item in one.json()["data"]) == 1

