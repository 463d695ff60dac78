"""GET /visits/stats: buckets where the caller's days begin, every bucket there (zeros included),
new and returning contacts, the median duration, groups and the list's filters."""

from uuid import UUID

import pytest

from footfall.accounts.service import get_account
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from tests.conftest import make_tenant
from tests.visits.test_routes import create_visit

MAY = {"starts_at[gte]": "2024-05-01", "starts_at[lt]": "2024-05-04"}


async def stats(client, tenant, **params):
    response = await client.get("/visits/stats", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def other_contact(client, tenant, email="plankton@chumbucket.sea"):
    return (await client.post("/contacts", json={"email": email}, headers=tenant.headers)).json()["data"]["uuid"]


async def second_shop(app, tenant) -> str:
    async with app.state.database.transaction(write=True) as tx:
        account = await get_account(tx, UUID(tenant.account_uuid))
        return str((await shops.create(tx, account, ShopCreate(name="Chum Bucket", type="web"))).uuid)


async def visit(client, tenant, starts_at, ends_at=None, **fields):
    response = await create_visit(client, tenant, starts_at=starts_at, ends_at=ends_at, **fields)
    assert response.status_code == 201, response.text


def counts(item):
    return (item["visits"], item["unique_contacts"], item["new_contacts"], item["returning_contacts"],
            item["median_duration_seconds"])


async def test_days_with_new_and_returning_contacts_and_the_median_and_empty_days(client, app, tenant):
    plankton = await other_contact(client, tenant)
    await visit(client, tenant, "2024-05-01T10:00:00Z", "2024-05-01T10:30:00Z")
    await visit(client, tenant, "2024-05-01T12:00:00Z")  # no end: not in the median
    await visit(client, tenant, "2024-05-03T09:00:00Z", "2024-05-03T10:00:00Z")
    await visit(client, tenant, "2024-04-20T09:00:00Z", "2024-04-20T09:10:00Z", contact_uuid=plankton)
    await visit(client, tenant, "2024-05-03T10:00:00Z", "2024-05-03T10:20:00Z", contact_uuid=plankton)
    await visit(client, await make_tenant(app), "2024-05-02T10:00:00Z")  # another account's

    body = await stats(client, tenant, **MAY)
    assert body["meta"] == {"interval": "day", "timezone": "UTC", "group_by": None,
                            "period_start": "2024-05-01T00:00:00+00:00", "period_end": "2024-05-04T00:00:00+00:00"}
    assert [(item["bucket_start"], item["bucket_end"]) for item in body["data"]] == [
        ("2024-05-01T00:00:00+00:00", "2024-05-02T00:00:00+00:00"),
        ("2024-05-02T00:00:00+00:00", "2024-05-03T00:00:00+00:00"),
        ("2024-05-03T00:00:00+00:00", "2024-05-04T00:00:00+00:00"),
    ]
    # Day 1: the first contact's first visits; day 3: both return (plankton's first was in April).
    assert [counts(item) for item in body["data"]] == [(2, 1, 1, 0, 1800), (0, 0, 0, 0, None), (2, 2, 0, 2, 2400)]

    whole = await stats(client, tenant, interval="month")  # no bounds: from the first visit to the last
    assert [(item["bucket_start"][:7], counts(item)) for item in whole["data"]] == [
        ("2024-04", (1, 1, 1, 0, 600)), ("2024-05", (4, 2, 1, 1, 1800))]
    mine = await stats(client, tenant, contact_uuid=plankton, interval="week")
    assert [(item["bucket_start"], item["visits"]) for item in mine["data"]] == [
        ("2024-04-15T00:00:00+00:00", 1), ("2024-04-22T00:00:00+00:00", 0), ("2024-04-29T00:00:00+00:00", 1)]


async def test_a_period_that_begins_inside_a_bucket_counts_only_its_visits_and_their_new_contacts(client, tenant):
    """The day's first visits before the period's first moment: a contact new that day is counted
    only with a visit inside the period, and then as new."""
    before_only = await other_contact(client, tenant, "before@chumbucket.sea")
    before_and_after = await other_contact(client, tenant, "both@chumbucket.sea")
    await visit(client, tenant, "2024-05-01T10:00:00Z", contact_uuid=before_only)
    await visit(client, tenant, "2024-05-01T09:00:00Z", contact_uuid=before_and_after)
    await visit(client, tenant, "2024-05-01T15:00:00Z", "2024-05-01T15:10:00Z", contact_uuid=before_and_after)
    await visit(client, tenant, "2024-05-01T13:00:00Z", "2024-05-01T13:30:00Z")  # the first contact's first
    await visit(client, tenant, "2024-05-02T13:00:00Z", contact_uuid=before_only)  # returning the next day
    body = await stats(client, tenant, **{"starts_at[gte]": "2024-05-01T12:00:00Z", "starts_at[lt]": "2024-05-03"})
    assert [(item["bucket_start"][:10], counts(item)) for item in body["data"]] == [
        ("2024-05-01", (2, 2, 2, 0, 1200)), ("2024-05-02", (1, 1, 0, 1, None))]


async def test_days_begin_where_the_timezone_says_even_when_clocks_change(client, tenant):
    await visit(client, tenant, "2024-05-01T23:30:00Z")  # 01:30 on 2 May in Amsterdam
    body = await stats(client, tenant, timezone="Europe/Amsterdam", **MAY)
    assert body["meta"]["period_start"] == "2024-05-01T00:00:00+02:00"
    assert [(item["bucket_start"], item["visits"]) for item in body["data"]] == [
        ("2024-05-01T00:00:00+02:00", 0), ("2024-05-02T00:00:00+02:00", 1), ("2024-05-03T00:00:00+02:00", 0),
        ("2024-05-04T00:00:00+02:00", 0)]  # 4 May from 00:00 to 02:00 UTC is still before starts_at[lt]

    await visit(client, tenant, "2024-03-31T00:30:00Z")  # 31 March, the day the clocks go forward
    spring = await stats(client, tenant, timezone="Europe/Amsterdam", interval="day",
                         **{"starts_at[gte]": "2024-03-30T23:00:00Z", "starts_at[lt]": "2024-03-31T22:00:00Z"})
    assert [(item["bucket_start"], item["bucket_end"], item["visits"]) for item in spring["data"]] == [
        ("2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00", 1)]  # 23 hours long
    hours = await stats(client, tenant, timezone="Europe/Amsterdam", interval="hour",
                        **{"starts_at[gte]": "2024-03-31T00:00:00Z", "starts_at[lt]": "2024-03-31T03:00:00Z"})
    assert [item["bucket_start"] for item in hours["data"]] == [
        "2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T04:00:00+02:00"]
    assert [item["visits"] for item in hours["data"]] == [1, 0, 0]


async def test_groups_by_shop_and_by_source_each_with_every_bucket(client, app, tenant):
    chum = await second_shop(app, tenant)
    await visit(client, tenant, "2024-05-01T10:00:00Z", source="Kiosk")
    await visit(client, tenant, "2024-05-03T10:00:00Z", shop_uuid=chum)
    await visit(client, tenant, "2024-05-03T11:00:00Z", shop_uuid=chum, source="Kiosk")
    by_shop = await stats(client, tenant, group_by="shop", **MAY)
    assert by_shop["meta"]["group_by"] == "shop"
    rows = {(item["bucket_start"][:10], item["shop_uuid"]): item["visits"] for item in by_shop["data"]}
    assert len(by_shop["data"]) == 6 and all("source" not in item for item in by_shop["data"])
    assert rows[("2024-05-01", tenant.shop_uuid)] == 1 and rows[("2024-05-03", chum)] == 2
    assert rows[("2024-05-02", chum)] == rows[("2024-05-01", chum)] == rows[("2024-05-03", tenant.shop_uuid)] == 0
    # The contact's first visit is on 1 May, at the other shop: on 3 May it returns to this one.
    chum_third = next(item for item in by_shop["data"]
                      if item["shop_uuid"] == chum and item["bucket_start"].startswith("2024-05-03"))
    assert (chum_third["new_contacts"], chum_third["returning_contacts"]) == (0, 1)

    by_source = await stats(client, tenant, group_by="source", **MAY)
    assert [(item["bucket_start"][:10], item["source"], item["visits"]) for item in by_source["data"]] == [
        ("2024-05-01", None, 0), ("2024-05-01", "Kiosk", 1), ("2024-05-02", None, 0), ("2024-05-02", "Kiosk", 0),
        ("2024-05-03", None, 1), ("2024-05-03", "Kiosk", 1)]
    kiosk_at_chum = await stats(client, tenant, shop_uuid=chum, source="Kiosk", **MAY)
    assert [item["visits"] for item in kiosk_at_chum["data"]] == [0, 0, 1]
    created_late = await stats(client, tenant, **{**MAY, "created_at[gte]": "2100-01-01"})
    assert [item["visits"] for item in created_late["data"]] == [0, 0, 0]


async def test_nothing_to_count_answers_no_buckets_or_empty_ones(client, tenant):
    assert (await stats(client, tenant))["data"] == []
    unknown = await stats(client, tenant, shop_uuid="2d3df56b-d10e-465f-a6a7-fd258c536f6b", **MAY)
    assert [counts(item) for item in unknown["data"]] == [(0, 0, 0, 0, None)] * 3
    backwards = await stats(client, tenant, **{"starts_at[gte]": "2024-05-04", "starts_at[lt]": "2024-05-01"})
    assert backwards["data"] == []


@pytest.mark.parametrize("params, field", [
    ({"interval": "fortnight"}, "interval"),
    ({"group_by": "contact"}, "group_by"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"starts_at[gte]": "soon"}, "starts_at[gte]"),
    ({"contact_uuid": "nope"}, "contact_uuid"),
    ({"interval": "hour", "starts_at[gte]": "2024-01-01", "starts_at[lt]": "2025-01-01"}, "interval"),
])
async def test_bad_parameters_are_1003_on_the_parameter(client, tenant, params, field):
    response = await client.get("/visits/stats", params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003 and list(response.json()["errors"]) == [field]


async def test_stats_need_a_token(client):
    response = await client.get("/visits/stats")
    assert response.status_code == 401
