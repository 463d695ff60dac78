"""GET /visits/export and `footfall visits export`: streamed, filtered as the list is, and a file that
`footfall visits import` reads back unchanged."""

import csv
import io
import json

import orjson
import pytest

from footfall.testing.serving import footfall
from footfall.visits.export import CHUNK_ROWS
from tests.conftest import make_tenant
from tests.visits.test_routes import create_visit

COLUMNS = ["uuid", "contact_uuid", "contact_email", "shop_uuid", "external_id", "source", "starts_at", "ends_at",
           "created_at", "updated_at"]


async def exported(client, tenant, **params):
    response = await client.get("/visits/export", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response


async def test_ndjson_and_csv_hold_every_visit_flat_with_its_shop(client, app, tenant):
    made = [(await create_visit(client, tenant, external_id=f"x-{n}", source="Kiosk, \"front\"",
                                starts_at="2024-05-01 19:00", ends_at="2024-05-01 19:30")).json()["data"]
            for n in range(3)]
    await create_visit(client, await make_tenant(app))  # another account's: never exported
    response = await exported(client, tenant)
    assert response.headers["content-type"] == "application/x-ndjson"
    assert 'filename="visits.ndjson"' in response.headers["content-disposition"]
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [row["uuid"] for row in rows] == [visit["uuid"] for visit in made]
    assert list(rows[0]) == COLUMNS
    assert rows[0]["shop_uuid"] == tenant.shop_uuid and rows[0]["contact_email"] == tenant.contact_email
    assert rows[0]["starts_at"] == "2024-05-01T19:00:00+00:00" and rows[0]["source"] == 'Kiosk, "front"'

    response = await exported(client, tenant, format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0]) == COLUMNS and [row["uuid"] for row in table] == [visit["uuid"] for visit in made]
    assert table[0]["source"] == 'Kiosk, "front"' and table[0]["ends_at"] == "2024-05-01T19:30:00+00:00"
    assert table[0]["contact_email"] == tenant.contact_email


TRICKY = ['quote " back\\ slash', "line\nbreak, comma\r\ttab \x01\x7f", "é😀\u2028 ", "year one"]


async def test_every_character_is_written_as_json_and_csv_write_it(client, tenant):
    """The bytes are exactly orjson's line and the csv module's row, on both databases (PostgreSQL
    writes them itself, with COPY)."""
    made = [(await create_visit(client, tenant, external_id=text, source=text[::-1],
                                starts_at="0001-01-01T00:00:01+00:00" if text == "year one"
                                else "2024-05-01T19:00:59.9+02:00")).json()["data"]
            for text in TRICKY]
    listed = {visit["uuid"]: visit for visit in
              (await client.get("/visits/changes", headers=tenant.headers)).json()["data"]}
    expected = [{"uuid": visit["uuid"], "contact_uuid": tenant.contact_uuid, "contact_email": tenant.contact_email,
                 "shop_uuid": tenant.shop_uuid, "external_id": visit["external_id"], "source": visit["source"],
                 "starts_at": visit["starts_at"], "ends_at": None, "created_at": visit["created_at"],
                 "updated_at": listed[visit["uuid"]]["updated_at"]} for visit in made]
    assert expected[0]["starts_at"] == "2024-05-01T17:00:59+00:00" and expected[-1]["starts_at"].startswith("0001-")
    ndjson = (await exported(client, tenant)).content
    assert ndjson == b"".join(orjson.dumps(row) + b"\n" for row in expected)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([COLUMNS] + [list(row.values()) for row in expected])
    assert (await exported(client, tenant, format="csv")).text == text.getvalue()


async def test_the_export_takes_the_lists_filters(client, tenant):
    await create_visit(client, tenant, source="Kiosk", starts_at="2024-05-01")
    await create_visit(client, tenant, source="Web", starts_at="2024-05-02")
    await create_visit(client, tenant, source="Kiosk", starts_at="2024-05-03")
    response = await exported(client, tenant, source="Kiosk", **{"starts_at[gte]": "2024-05-02"})
    assert [json.loads(line)["starts_at"][:10] for line in response.text.splitlines()] == ["2024-05-03"]
    nothing = await exported(client, tenant, format="csv", contact_uuid="6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92")
    assert nothing.text.splitlines() == [",".join(COLUMNS)]


@pytest.mark.parametrize("params, field", [({"format": "xml"}, "format"),
                                           ({"created_at[gte]": "soon"}, "created_at[gte]")])
async def test_the_export_refuses_bad_parameters(client, tenant, params, field):
    response = await client.get("/visits/export", params=params, headers=tenant.headers)
    assert response.status_code == 422 and list(response.json()["errors"]) == [field]


async def test_an_export_of_several_chunks_has_each_visit_once(client, tenant):
    items = [{"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid} for _ in range(1000)]
    for _ in range(CHUNK_ROWS // 1000 + 1):
        assert (await client.post("/visits/batch", json={"visits": items}, headers=tenant.headers)).status_code == 200
    lines = (await exported(client, tenant)).text.splitlines()
    assert len(lines) == len({json.loads(line)["uuid"] for line in lines}) == (CHUNK_ROWS // 1000 + 1) * 1000


async def test_the_cli_exports_a_file_that_imports_back_unchanged(client, tenant, database_url, tmp_path):
    for n in range(4):
        await create_visit(client, tenant, external_id=f"round-{n}", source="Kiosk/é",
                           starts_at=f"2024-05-0{n + 1} 10:00")
    before = (await client.get("/visits", params={"sort": "created_at"}, headers=tenant.headers)).json()["data"]
    for format in ("csv", "ndjson"):
        path = tmp_path / f"visits.{format}"
        result = footfall("visits", "export", "--account", tenant.account_uuid, "--format", format, "--output",
                          str(path), "--filter", "source=Kiosk/é", database_url=database_url, check=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stderr.strip().splitlines()[-1])["exported"] == 4
        for visit in before:  # emptied, then imported back from the file
            assert (await client.delete(f"/visits/{visit['uuid']}", headers=tenant.headers)).status_code == 200
        imported = footfall("visits", "import", str(path), "--account", tenant.account_uuid,
                            database_url=database_url, check=False)
        assert imported.returncode == 0 and json.loads(imported.stdout)["imported"] == 4, imported.stderr
        after = (await client.get("/visits", params={"sort": "created_at"}, headers=tenant.headers)).json()["data"]
        assert [{k: v for k, v in visit.items() if k != "uuid"} for visit in after] == \
               [{k: v for k, v in visit.items() if k != "uuid"} for visit in before]
        before = after


def test_the_cli_refuses_a_bad_filter(tenant, database_url):
    result = footfall("visits", "export", "--account", tenant.account_uuid, "--filter", "starts_at[lt]=never",
                      database_url=database_url, check=False)
    assert result.returncode == 1 and "starts_at[lt]" in result.stderr and result.stdout == ""
