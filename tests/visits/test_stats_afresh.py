"""GET /visits/stats against counting afresh in Python: random visits of several contacts at two
shops from three sources, asked for by every interval, in zones whole and half an hour from UTC,
grouped and filtered, each bucket's visits, contacts, new contacts and median exactly those of the
visits in it (a contact new in the bucket of its first visit of all, at any shop and from any source)."""

import random
import statistics
from datetime import UTC, datetime, timedelta

from tests.visits.test_stats import other_contact, second_shop
from tests.visits.test_stats_edges import half_up, moment

START = datetime(2024, 3, 28, tzinfo=UTC)  # clocks change in Europe on the 31st
SOURCES = [None, "Kiosk", "Web"]


async def random_visits(client, tenant, shops: list[str], rng: random.Random) -> list[dict]:
    contacts = [tenant.contact_uuid] + [await other_contact(client, tenant, f"c{n}@stats.sea") for n in range(5)]
    items = []
    for _ in range(80):
        starts = START + timedelta(minutes=rng.randrange(0, 12 * 24 * 60))
        ends = starts + timedelta(seconds=rng.randrange(0, 7200)) if rng.random() < 0.7 else None
        items.append({"contact_uuid": rng.choice(contacts), "shop_uuid": rng.choice(shops),
                      "source": rng.choice(SOURCES), "starts_at": starts.isoformat(),
                      "ends_at": ends and ends.isoformat()})
    response = await client.post("/visits/batch", json={"visits": items}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert all(outcome["status"] == 201 for outcome in response.json()["data"])
    return items


def expected(item: dict, visits: list[dict], params: dict, group_key: str | None) -> tuple:
    start, end = moment(item["bucket_start"]), moment(item["bucket_end"])
    firsts: dict[str, datetime] = {}
    for visit in visits:
        at = moment(visit["starts_at"])
        firsts[visit["contact_uuid"]] = min(at, firsts.get(visit["contact_uuid"], at))
    # The period's first and last buckets may begin before it and end after it: only its visits
    # count, and a contact among them is new where its first visit is anywhere in the bucket.
    begin, until = max(start, moment(params["starts_at[gte]"])), min(end, moment(params["starts_at[lt]"]))
    inside = [visit for visit in visits
              if begin <= moment(visit["starts_at"]) < until
              and all(visit[key] == params[key] for key in ("shop_uuid", "source", "contact_uuid") if key in params)
              and (group_key is None or visit[group_key] == item[group_key])]
    contacts = {visit["contact_uuid"] for visit in inside}
    new = {contact for contact in contacts if start <= firsts[contact] < end}
    durations = [(moment(visit["ends_at"]) - moment(visit["starts_at"])).total_seconds()
                 for visit in inside if visit["ends_at"]]
    return (len(inside), len(contacts), len(new), len(contacts) - len(new),
            half_up(statistics.median(durations)) if durations else None)


async def test_every_bucket_equals_counting_its_visits_afresh(client, app, tenant):
    rng = random.Random(7)
    shops = [tenant.shop_uuid, await second_shop(app, tenant)]
    visits = await random_visits(client, tenant, shops, rng)
    period = {"starts_at[gte]": (START + timedelta(days=1)).isoformat(),
              "starts_at[lt]": (START + timedelta(days=9)).isoformat()}
    begin, end = moment(period["starts_at[gte]"]), moment(period["starts_at[lt]"])
    asked = 0
    for interval in ("hour", "day", "week"):
        for zone in ("UTC", "Europe/Amsterdam", "Asia/Kolkata"):
            for group_by, group_key in ((None, None), ("shop", "shop_uuid"), ("source", "source")):
                for filters in ({}, {"shop_uuid": shops[1]}, {"source": "Kiosk"},
                                {"contact_uuid": tenant.contact_uuid}):
                    params = {"interval": interval, "timezone": zone, **period, **filters}
                    if group_by:
                        params["group_by"] = group_by
                    response = await client.get("/visits/stats", params=params, headers=tenant.headers)
                    assert response.status_code == 200, (params, response.text)
                    data = response.json()["data"]
                    for item in data:
                        assert (item["visits"], item["unique_contacts"], item["new_contacts"],
                                item["returning_contacts"], item["median_duration_seconds"]) == expected(
                            item, visits, params, group_key), (params, item)
                    # Every visit of the period that passes the filters is in some bucket.
                    assert sum(item["visits"] for item in data) == sum(
                        1 for visit in visits if begin <= moment(visit["starts_at"]) < end
                        and all(visit[key] == value for key, value in filters.items())), params
                    asked += 1
    assert asked == 3 * 3 * 3 * 4
