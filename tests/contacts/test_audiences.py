"""Audiences on GET /contacts (bounds on each contact's visit count and first and last visit, of all
its visits or of one shop's, and sorts by them) and GET /contacts/export, which streams an audience."""

import csv
import io
import json
from uuid import UUID, uuid4

import httpx
import pytest

from footfall.accounts.service import get_account
from footfall.app import API_PREFIX
from footfall.contacts import export
from footfall.contacts.schemas import read_audience
from footfall.shops import service as shops_service
from footfall.shops.schemas import ShopCreate
from tests.conftest import make_tenant


async def listed(client, tenant, **params):
    response = await client.get("/contacts", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def people(client, app, tenant):
    """Contacts a..e (created in that order, after the tenant's own, which has no visits and is named
    "t" in the answers) with visits at two shops:
    a: 3 visits, 2024-01-01 .. 2024-03-01, two at the second shop
    b: 1 visit,  2024-02-01
    c: 5 visits, 2023-06-01 .. 2024-06-01
    d: 1 visit,  2024-02-01 (the same as b: a tie)
    e: none"""
    async with app.state.database.transaction(write=True) as tx:  # shops are made by the CLI only
        account = await get_account(tx, UUID(tenant.account_uuid))
        second_shop = str((await shops_service.create(tx, account, ShopCreate(name="Chum Bucket"))).uuid)
    plan = {
        "a": [("2024-01-01", 0), ("2024-02-15", 1), ("2024-03-01", 1)],
        "b": [("2024-02-01", 0)],
        "c": [("2023-06-01", 0), ("2023-09-01", 0), ("2024-01-01", 0), ("2024-04-01", 0), ("2024-06-01", 1)],
        "d": [("2024-02-01", 1)],
        "e": [],
    }
    uuids = {"t": tenant.contact_uuid}
    for name, starts in plan.items():
        made = await client.post("/contacts", json={"email": f"{name}@x.sea"}, headers=tenant.headers)
        uuids[name] = made.json()["data"]["uuid"]
        for starts_at, shop in starts:
            created = await client.post("/visits", headers=tenant.headers, json={
                "contact_uuid": uuids[name], "shop_uuid": [tenant.shop_uuid, second_shop][shop],
                "starts_at": f"{starts_at}T10:00:00Z"})
            assert created.status_code == 201, created.text
    return {"uuids": uuids, "second_shop": second_shop, "tenant_email": tenant.contact_email}


def named(body, people) -> list[str]:
    return ["t" if contact["email"] == people["tenant_email"] else contact["email"].split("@")[0]
            for contact in body["data"]]


async def test_each_bound_alone(client, tenant, people):
    async def names(**params):
        return named(await listed(client, tenant, **params), people)

    assert await names(**{"visit_count[gte]": 2}) == ["c", "a"]
    assert await names(**{"visit_count[gte]": 0}) == ["e", "d", "c", "b", "a", "t"]
    assert await names(**{"visit_count[lte]": 1}) == ["e", "d", "b", "t"]
    assert await names(**{"last_visit_at[gte]": "2024-03-01T10:00:00Z"}) == ["c", "a"]
    assert await names(**{"last_visit_at[lt]": "2024-03-01T10:00:00Z"}) == ["d", "b"]
    assert await names(**{"first_visit_at[gte]": "2024-01-01T10:00:00+00:00"}) == ["d", "b", "a"]
    assert await names(**{"first_visit_at[lt]": "2024-01-01 10:00:01"}) == ["c", "a"]


async def test_a_contact_without_visits_has_0_and_null_dates_and_lte_0_finds_it(client, tenant, people):
    body = await listed(client, tenant, **{"visit_count[lte]": 0})
    assert named(body, people) == ["e", "t"]
    assert body["data"][0] == {"uuid": people["uuids"]["e"], "email": "e@x.sea", "visit_count": 0,
                               "first_visit_at": None, "last_visit_at": None}
    # No date bound ever matches a contact without visits.
    assert "e" not in named(await listed(client, tenant, **{"last_visit_at[lt]": "2999-01-01"}), people)


async def test_bounds_combine_and_page_with_leats_meta(client, tenant, people):
    params = {"visit_count[gte]": 1, "visit_count[lte]": 3, "last_visit_at[lt]": "2024-06-01",
              "first_visit_at[gte]": "2024-01-01"}
    body = await listed(client, tenant, **params)
    assert named(body, people) == ["d", "b", "a"]
    assert body["meta"] == {"current_page": 1, "last_page": 1, "per_page": 30, "total": 3}
    first = await listed(client, tenant, **params, limit=2)
    second = await listed(client, tenant, **params, limit=2, page=2)
    assert named(first, people) + named(second, people) == ["d", "b", "a"]
    assert first["meta"] == {"current_page": 1, "last_page": 2, "per_page": 2, "total": 3}
    past = await listed(client, tenant, **params, limit=2, page=3_000_000_000)
    assert past["data"] == [] and past["meta"]["total"] == 3
    assert (await listed(client, tenant, **params, limit=0))["data"] == []


async def test_each_contact_keeps_every_key_and_shows_its_span(client, tenant, people):
    body = await listed(client, tenant, **{"visit_count[gte]": 5})
    assert body["data"] == [{"uuid": people["uuids"]["c"], "email": "c@x.sea", "visit_count": 5,
                             "first_visit_at": "2023-06-01T10:00:00+00:00",
                             "last_visit_at": "2024-06-01T10:00:00+00:00"}]


async def test_a_shop_counts_and_dates_only_its_own_visits(client, tenant, people):
    shop = people["second_shop"]
    body = await listed(client, tenant, shop_uuid=shop, **{"visit_count[gte]": 1})
    assert named(body, people) == ["d", "c", "a"]
    by_name = dict(zip(named(body, people), body["data"], strict=True))
    assert by_name["a"]["visit_count"] == 2 and by_name["a"]["first_visit_at"] == "2024-02-15T10:00:00+00:00"
    assert by_name["c"] == {"uuid": people["uuids"]["c"], "email": "c@x.sea", "visit_count": 1,
                            "first_visit_at": "2024-06-01T10:00:00+00:00",
                            "last_visit_at": "2024-06-01T10:00:00+00:00"}
    # Every contact, with this shop's counts: those who never came there have 0.
    everyone = await listed(client, tenant, shop_uuid=shop)
    assert everyone["meta"]["total"] == 6
    assert named(await listed(client, tenant, shop_uuid=shop, **{"visit_count[lte]": 0}), people) == ["e", "b", "t"]
    assert named(await listed(client, tenant, shop_uuid=tenant.shop_uuid, sort="-visit_count"),
                 people) == ["c", "b", "a", "e", "d", "t"]
    assert named(await listed(client, tenant, shop_uuid=shop, **{"last_visit_at[lt]": "2024-03-01"}),
                 people) == ["d"]


async def test_an_unknown_shop_matches_nothing_as_in_get_visits(client, app, tenant, people):
    other = await make_tenant(app)
    for shop in (str(uuid4()), other.shop_uuid):
        for params in ({}, {"visit_count[lte]": 0}, {"visit_count[gte]": 1}):
            body = await listed(client, tenant, shop_uuid=shop, **params)
            assert body["data"] == [] and body["meta"]["total"] == 0, params
            visits = await client.get("/visits", params={"shop_uuid": shop}, headers=tenant.headers)
            assert visits.json()["meta"]["total"] == 0


@pytest.mark.parametrize("sort, expected", [
    ("visit_count", ["t", "e", "b", "d", "a", "c"]),  # t and e both 0: the id breaks the tie (t is older)
    ("-visit_count", ["c", "a", "d", "b", "e", "t"]),
    ("last_visit_at", ["b", "d", "a", "c", "t", "e"]),  # contacts without visits last, either way
    ("-last_visit_at", ["c", "a", "d", "b", "e", "t"]),
    ("first_visit_at", ["c", "a", "b", "d", "t", "e"]),
    ("-first_visit_at", ["d", "b", "a", "c", "e", "t"]),
    ("-created_at", ["e", "d", "c", "b", "a", "t"]),
])
async def test_every_sort_with_a_stable_tie_break(client, tenant, people, sort, expected):
    assert named(await listed(client, tenant, sort=sort), people) == expected
    pages = [named(await listed(client, tenant, sort=sort, limit=4, page=page), people) for page in (1, 2)]
    assert pages[0] + pages[1] == expected
    # Within an audience of visited contacts too (read along the spans' own index).
    visited = [name for name in expected if name not in ("e", "t")]
    assert named(await listed(client, tenant, sort=sort, **{"visit_count[gte]": 1}), people) == visited


@pytest.mark.parametrize("params, field", [
    ({"visit_count[gte]": "many"}, "visit_count[gte]"),
    ({"visit_count[lte]": "-1"}, "visit_count[lte]"),
    ({"visit_count[gte]": str(2**63)}, "visit_count[gte]"),
    ({"last_visit_at[gte]": "01-05-2024"}, "last_visit_at[gte]"),
    ({"last_visit_at[lt]": ""}, "last_visit_at[lt]"),
    ({"first_visit_at[gte]": "yesterday"}, "first_visit_at[gte]"),
    ({"first_visit_at[lt]": "2024-13-01"}, "first_visit_at[lt]"),
    ({"shop_uuid": "nope"}, "shop_uuid"),
    ({"sort": "email"}, "sort"),
    ({"sort": "-visit_count", "visit_count[gte]": "x", "last_visit_at[lt]": "y"}, ("last_visit_at[lt]",
                                                                                  "visit_count[gte]")),
])
async def test_a_malformed_value_is_1003_on_that_parameter(client, tenant, params, field):
    for path in ("/contacts", "/contacts/export"):
        response = await client.get(path, params=params, headers=tenant.headers)
        assert response.status_code == 422 and response.json()["code"] == 1003, (path, response.text)
        assert sorted(response.json()["errors"]) == sorted((field,) if isinstance(field, str) else field), path
    # GET /visits answers its own in the same shape.
    visits = await client.get("/visits", params={"sort": "email"}, headers=tenant.headers)
    assert visits.status_code == 422 and list(visits.json()["errors"]) == ["sort"]


async def test_the_plain_list_and_unknown_parameters_are_as_before(client, tenant, people):
    plain = await listed(client, tenant, limit=3)
    assert named(plain, people) == ["e", "d", "c"] and plain["meta"]["total"] == 6
    assert await listed(client, tenant, limit=3, unknown="x") == plain
    assert await listed(client, tenant, limit=3, sort="-created_at") == plain


async def exported(client, tenant, **params):
    response = await client.get("/contacts/export", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response


async def test_the_export_streams_the_audience_as_ndjson_and_csv(client, app, tenant, people):
    await client.post("/contacts", json={"email": "z@x.sea"}, headers=(await make_tenant(app)).headers)  # another's
    response = await exported(client, tenant)
    assert response.headers["content-type"] == "application/x-ndjson"
    assert 'filename="contacts.ndjson"' in response.headers["content-disposition"]
    rows = [json.loads(line) for line in response.text.splitlines()]
    # In the order stored (the tenant's own contact first), every contact of the account.
    assert [row["uuid"] for row in rows] == [people["uuids"][name] for name in "tabcde"]
    assert list(rows[3]) == ["uuid", "email", "visit_count", "first_visit_at", "last_visit_at"]
    assert rows[3] == {"uuid": people["uuids"]["c"], "email": "c@x.sea", "visit_count": 5,
                       "first_visit_at": "2023-06-01T10:00:00+00:00", "last_visit_at": "2024-06-01T10:00:00+00:00"}
    assert rows[5] == {"uuid": people["uuids"]["e"], "email": "e@x.sea", "visit_count": 0,
                       "first_visit_at": None, "last_visit_at": None}

    response = await exported(client, tenant, format="csv", sort="-visit_count",
                              **{"visit_count[gte]": 1, "last_visit_at[lt]": "2024-05-01"})
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="contacts.csv"' in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["email"] for row in table] == ["a@x.sea", "b@x.sea", "d@x.sea"]  # in the order stored
    assert table[0] == {"uuid": people["uuids"]["a"], "email": "a@x.sea", "visit_count": "3",
                        "first_visit_at": "2024-01-01T10:00:00+00:00", "last_visit_at": "2024-03-01T10:00:00+00:00"}
    lonely = list(csv.DictReader(io.StringIO((await exported(client, tenant, format="csv",
                                                             **{"visit_count[lte]": 0})).text)))
    assert [row["email"] for row in lonely] == [people["tenant_email"], "e@x.sea"]
    assert lonely[1] == {"uuid": people["uuids"]["e"], "email": "e@x.sea", "visit_count": "0", "first_visit_at": "",
                         "last_visit_at": ""}


async def test_the_export_by_shop_and_an_unknown_shop(client, tenant, people):
    rows = [json.loads(line) for line in (await exported(client, tenant, shop_uuid=people["second_shop"],
                                                         **{"visit_count[gte]": 1})).text.splitlines()]
    assert [(row["email"], row["visit_count"]) for row in rows] == [("a@x.sea", 2), ("c@x.sea", 1), ("d@x.sea", 1)]
    assert (await exported(client, tenant, shop_uuid=str(uuid4()))).text == ""
    assert (await exported(client, tenant, shop_uuid=str(uuid4()), format="csv")).text == (
        "uuid,email,visit_count,first_visit_at,last_visit_at\n")
    bad = await client.get("/contacts/export", params={"format": "xml"}, headers=tenant.headers)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["format"]


@pytest.mark.parametrize("query", [{}, {"visit_count[gte]": "1"}, {"shop_uuid": "?"}])
async def test_the_export_reads_chunk_after_chunk_in_id_order(app, tenant, people, query):
    """Chunk edges neither repeat nor skip a contact: the same rows as one chunk, for any chunk size."""
    account_id = None
    async with app.state.database.transaction(write=False) as tx:
        account_id = (await get_account(tx, UUID(tenant.account_uuid))).id
    audience = read_audience({name: people["second_shop"] if value == "?" else value for name, value in query.items()})
    whole = b"".join([chunk async for chunk in export.export(app.state.database, account_id, audience, "ndjson")])
    for size in (1, 2, 5, 6):
        chunks = [chunk async for chunk in export.export(app.state.database, account_id, audience, "ndjson", size)]
        assert b"".join(chunks) == whole, size
        assert all(chunk.count(b"\n") == size for chunk in chunks[:-1])


async def test_the_routes_are_documented(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        schema = (await client.get("/openapi.json")).json()
    listed_ = schema["paths"][f"{API_PREFIX}/contacts"]["get"]
    exported_ = schema["paths"][f"{API_PREFIX}/contacts/export"]["get"]
    assert exported_["operationId"] == "exportContacts" and listed_["operationId"] == "listContacts"
    bounds = {"visit_count[gte]", "visit_count[lte]", "last_visit_at[gte]", "last_visit_at[lt]",
              "first_visit_at[gte]", "first_visit_at[lt]", "shop_uuid"}
    assert bounds | {"sort", "limit", "page"} == {parameter["name"] for parameter in listed_["parameters"]}
    assert bounds | {"format"} == {parameter["name"] for parameter in exported_["parameters"]}
    for parameter in listed_["parameters"] + exported_["parameters"]:
        assert parameter["description"], parameter["name"]
    assert exported_["responses"]["200"]["content"] == {"application/x-ndjson": {"schema": {"type": "string"}},
                                                        "text/csv": {"schema": {"type": "string"}}}


async def test_the_export_writes_any_email_as_the_api_renders_it(client, app):
    """On PostgreSQL the database writes the lines (COPY); on SQLite Python does: byte for byte alike."""
    tenant = await make_tenant(app)
    email = 'o"b\\ü,x\'y@x.sea'
    made = (await client.post("/contacts", json={"email": email}, headers=tenant.headers)).json()["data"]
    await client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": made["uuid"], "shop_uuid": tenant.shop_uuid, "starts_at": "2024-05-01T20:00:00.123456+02:00"})
    lines = (await exported(client, tenant, **{"visit_count[gte]": 1})).content
    expected = {"uuid": made["uuid"], "email": email, "visit_count": 1,
                "first_visit_at": "2024-05-01T18:00:00+00:00", "last_visit_at": "2024-05-01T18:00:00+00:00"}
    assert lines == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(expected.values())
    table = (await exported(client, tenant, format="csv", **{"visit_count[gte]": 1})).text
    assert table == "uuid,email,visit_count,first_visit_at,last_visit_at\n" + text.getvalue()
