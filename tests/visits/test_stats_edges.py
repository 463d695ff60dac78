"""GET /visits/stats at the edges of time: visits at the first and last moments the API takes, every
interval, with and without groups, in time zones as far east and west as they go (then and now),
counted afresh and from the cache after a write. Each answer is exact, or, where a bucket would begin
or end outside the years 1 to 9999, 1003 on the starts_at parameter that sets that end."""

import statistics
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from footfall.stats.service import INTERVALS
from tests.conftest import make_tenant
from tests.visits.test_routes import create_visit

# The widest offsets: now (+14 and -12), and in the year 1, when each place kept its own time
# (Asia/Manila -15:56, America/Metlakatla +15:13, Pacific/Kiritimati -10:29).
ZONES = ["UTC", "Europe/Amsterdam", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT-14", "Etc/GMT+12",
         "Asia/Manila", "America/Metlakatla"]
FIRST, LAST = "0001-01-01T00:00:01Z", "9999-12-31T23:59:59Z"  # the first and last starts the API takes

EARLY = [dict(starts_at=FIRST, ends_at=LAST), dict(starts_at="0001-01-01T12:00:00Z", source="Kiosk"),
         dict(starts_at="0001-01-02T00:00:00Z", ends_at="0001-01-02T00:30:00Z")]
EARLY_RANGES = [{}, {"starts_at[gte]": FIRST, "starts_at[lt]": "0001-01-03T00:00:00Z"},
                {"starts_at[gt]": "0001-01-01T12:00:00Z"}]
LATE = [dict(starts_at=LAST), dict(starts_at="9999-12-31T20:00:00Z", source="Kiosk"),
        dict(starts_at="9999-12-30T09:00:00Z", ends_at=LAST)]
LATE_RANGES = [{}, {"starts_at[gte]": "9999-12-30T00:00:00Z", "starts_at[lte]": LAST},
               {"starts_at[lt]": "9999-12-31T00:00:00Z"}]
GROUP_KEYS = {None: None, "shop": "shop_uuid", "source": "source"}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_range(visit: dict, params: dict) -> bool:
    at = moment(visit["starts_at"])
    tests = {"gte": at.__ge__, "gt": at.__gt__, "lte": at.__le__, "lt": at.__lt__}
    return all(tests[op](moment(params[f"starts_at[{op}]"])) for op in tests if f"starts_at[{op}]" in params)


def half_up(seconds: float) -> int:
    return int(Decimal(seconds).to_integral_value(ROUND_HALF_UP))


def check_exact(body: dict, visits: list[dict], params: dict) -> None:
    """Every bucket a time an ISO 8601 parser reads, the buckets end to end, and each one's counts
    those of the visits in it (one contact, new in the bucket of its first visit of all)."""
    group_key = GROUP_KEYS[params.get("group_by")]
    data, meta = body["data"], body["meta"]
    edges = [(moment(item["bucket_start"]), moment(item["bucket_end"])) for item in data]
    assert all(start < end for start, end in edges)
    starts = sorted({start for start, _ in edges})
    ends = sorted({end for _, end in edges})
    assert starts[1:] == ends[:-1] if data else meta["period_start"] is None or meta["period_end"] is None
    if data:
        assert (moment(meta["period_start"]), moment(meta["period_end"])) == (starts[0], ends[-1])
    counted = [visit for visit in visits if in_range(visit, params)]
    first_of_all = min(moment(visit["starts_at"]) for visit in visits)
    for item, (start, end) in zip(data, edges, strict=True):
        inside = [visit for visit in counted if start <= moment(visit["starts_at"]) < end
                  and (group_key is None or visit[group_key] == item[group_key])]
        durations = [(moment(visit["ends_at"]) - moment(visit["starts_at"])).total_seconds()
                     for visit in inside if visit["ends_at"]]
        new = int(bool(inside) and start <= first_of_all < end)
        assert (item["visits"], item["unique_contacts"], item["new_contacts"], item["returning_contacts"],
                item["median_duration_seconds"]) == (
            len(inside), min(len(inside), 1), new, min(len(inside), 1) - new,
            half_up(statistics.median(durations)) if durations else None), (params, item)
    assert sum(item["visits"] for item in data) == len(counted), params


def check_refused(body: dict, params: dict) -> str:
    """1003 in Leat's shape, on the starts_at parameter sent for that end (or the one to send)."""
    assert set(body) == {"status_code", "code", "message", "errors"}
    assert (body["status_code"], body["code"], body["message"]) == (422, 1003, "Invalid input.")
    [(field, [message])] = body["errors"].items()
    begins = [name for name in ("starts_at[gte]", "starts_at[gt]") if name in params] or ["starts_at[gte]"]
    ends = [name for name in ("starts_at[lt]", "starts_at[lte]") if name in params] or ["starts_at[lt]"]
    assert field in begins + ends and ("year 1," if field in begins else "year 9999") in message, body
    return field


async def answers(client, tenant, visits, ranges) -> dict[tuple, tuple[int, str | None]]:
    """Every interval, zone, grouping and range: each answer checked; by case, its status and field."""
    outcomes = {}
    for zone in ZONES:
        for interval in INTERVALS:
            for group_by in GROUP_KEYS:
                for number, period in enumerate(ranges):
                    params = {"interval": interval, "timezone": zone, **period}
                    if group_by:
                        params["group_by"] = group_by
                    response = await client.get("/visits/stats", params=params, headers=tenant.headers)
                    assert response.status_code in (200, 422), (params, response.text)
                    if response.status_code == 200:
                        check_exact(response.json(), visits, params)
                        outcomes[zone, interval, group_by, number] = (200, None)
                    else:
                        outcomes[zone, interval, group_by, number] = (422, check_refused(response.json(), params))
    return outcomes


async def made(client, tenant, **fields) -> dict:
    response = await create_visit(client, tenant, **fields)
    assert response.status_code == 201, response.text
    return {**response.json()["data"], "shop_uuid": tenant.shop_uuid}


@pytest.mark.parametrize("visits, ranges, then", [
    (EARLY, EARLY_RANGES, dict(starts_at="0001-01-01T06:00:00Z", ends_at="0001-01-01T06:10:00Z", source="Kiosk")),
    (LATE, LATE_RANGES, dict(starts_at="9999-12-31T23:00:00Z", ends_at=LAST)),
], ids=["first", "last"])
async def test_stats_at_the_edges_of_time_are_exact_or_refused_never_a_server_error(client, app, visits, ranges, then):
    tenant = await make_tenant(app)
    stored = [await made(client, tenant, **visit) for visit in visits]
    before = await answers(client, tenant, stored, ranges)
    assert (200, None) in before.values() and any(status == 422 for status, _ in before.values())

    # From the cache after writes: a new visit, and a changed end (each brings its bucket up to date).
    stored.append(await made(client, tenant, **then))
    changed = await client.put(f"/visits/{stored[0]['uuid']}", json={"ends_at": then["ends_at"]},
                               headers=tenant.headers)
    assert changed.status_code == 200, changed.text
    stored[0] = {**changed.json()["data"], "shop_uuid": tenant.shop_uuid}
    assert await answers(client, tenant, stored, ranges) == before


async def test_the_edges_named_in_the_review(client, app):
    async def stats(visit_at, **params):
        tenant = await make_tenant(app)
        await made(client, tenant, starts_at=visit_at)
        return await client.get("/visits/stats", params=params, headers=tenant.headers)

    def refused_on(response, field):
        assert response.status_code == 422 and list(response.json()["errors"]) == [field], response.text

    # Buckets that would end in the year 10000 (in UTC, or on Tokyo's clock), or begin in the year 0
    # (Amsterdam kept +00:17:30 then): the end or start parameter, sent or not, is named.
    refused_on(await stats(LAST), "starts_at[lt]")
    refused_on(await stats("9999-12-31T20:00:00Z", timezone="Asia/Tokyo"), "starts_at[lt]")
    refused_on(await stats(FIRST, timezone="Europe/Amsterdam"), "starts_at[gte]")
    refused_on(await stats("2024-05-01T00:00:00Z", interval="month", **{
        "starts_at[gte]": "9999-11-01T00:00:00Z", "starts_at[lte]": "9999-12-31T00:00:00Z"}), "starts_at[lte]")
    refused_on(await stats(LAST, **{"starts_at[gt]": "9999-12-31T23:00:00Z", "starts_at[lt]": "9999-12-31T23:00:00Z"},
                           timezone="Asia/Tokyo"), "starts_at[lt]")  # backwards, its one edge past 9999 in Tokyo

    # What can be written is answered: the first hour in +14, the last full day, a visit of 9,999 years.
    east = await stats(FIRST, interval="hour", timezone="Etc/GMT-14")
    assert [(item["bucket_start"], item["visits"]) for item in east.json()["data"]] == [
        ("0001-01-01T14:00:00+14:00", 1)]
    tenant = await make_tenant(app)
    await made(client, tenant, starts_at=FIRST, ends_at=LAST)
    whole = await client.get("/visits/stats", params={"interval": "month", "starts_at[lt]": "0001-02-01T00:00:00Z"},
                             headers=tenant.headers)
    assert [(item["bucket_end"], item["median_duration_seconds"]) for item in whole.json()["data"]] == [
        ("0001-02-01T00:00:00+00:00", 315537897598)]
    last_day = await stats("9999-12-30T23:59:59Z", **{"starts_at[lt]": "9999-12-31T00:00:00Z"})
    assert [(item["bucket_end"], item["visits"]) for item in last_day.json()["data"]] == [
        ("9999-12-31T00:00:00+00:00", 1)]
