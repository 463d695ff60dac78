"""Errors the framework raises (unknown routes, wrong methods, crashes) leave in Leat's shape too."""

import json

import httpx
import pytest

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings


async def test_an_unknown_route_is_404_in_leats_shape(client, tenant):
    response = await client.get("/nothing-here", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": 90404, "message": "Not found."}


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/visits"), ("PATCH", "/visits/x"), ("POST", "/shops")])
async def test_a_wrong_method_is_405_in_leats_shape(client, tenant, method, path):
    response = await client.request(method, path, headers=tenant.headers)
    assert response.status_code == 405
    assert response.json() == {"status_code": 405, "code": 90405, "message": "Method not allowed."}


async def test_an_unexpected_error_is_500_in_leats_shape_without_a_traceback(database_url):
    app = create_app(Settings(database_url=database_url))

    @app.get(f"{API_PREFIX}/explode")
    async def explode() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        response = await client.get(f"{API_PREFIX}/explode")
    await app.state.database.close()
    assert response.status_code == 500
    assert response.json() == {"status_code": 500, "code": 90500, "message": "Server error."}
    assert "secret" not in response.text and "Traceback" not in response.text


async def test_health_is_200_when_the_database_answers(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "database_url",
    ["sqlite:////nonexistent-directory/footfall.db", "postgresql://postgres@127.0.0.1:1/footfall"],
    ids=["sqlite", "postgresql"],
)
async def test_health_is_503_when_the_database_does_not_answer(database_url):
    app = create_app(Settings(database_url=database_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        response = await client.get("/healthz")
    await app.state.database.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status_code"] == 503 and body["code"] == 90503 and "database" in body["errors"]


@pytest.mark.parametrize(("path", "params", "field", "message"), [
    ("/visits/6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d9", {}, "uuid",
     "Must be a UUID, e.g. 6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92."),
    ("/visits", {"limit": 501}, "limit", "Must be at most 500."),
    ("/visits", {"page": 0}, "page", "Must be at least 1."),
    ("/visits", {"limit": "many"}, "limit", "Must be a whole number."),
    ("/visits/export", {"format": "xml"}, "format", "Must be one of 'ndjson' or 'csv'."),
])
async def test_error_messages_are_in_footfalls_words(client, tenant, path, params, field, message):
    response = await client.get(path, params=params, headers=tenant.headers)
    assert response.status_code == 422 and response.json()["errors"] == {field: [message]}


async def test_a_missing_field_and_a_wrong_type_say_so_plainly(client, tenant):
    response = await client.post("/visits", json={"shop_uuid": 12}, headers=tenant.headers)
    assert response.json()["errors"] == {"contact_uuid": ["Required."],
                                         "shop_uuid": ["Must be a UUID, e.g. 6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92."]}


async def test_json_sent_as_a_form_is_told_to_name_its_content_type(client, tenant):
    # What `curl -d '{...}'` sends without -H 'Content-Type: application/json'.
    response = await client.post("/visits", content=f'{{"contact_uuid": "{tenant.contact_uuid}"}}',
                                 headers={**tenant.headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "body": ["This body is JSON sent as a form: send it with Content-Type: application/json."]}
    assert response.content == json.dumps(response.json(), separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("path", ["/visits/", "/shops/", "/visits/stats/", "/contacts//"])
async def test_a_trailing_slash_answers_as_without_one(client, tenant, path):
    with_slash = await client.get(path, headers=tenant.headers)
    without = await client.get(path.rstrip("/"), headers=tenant.headers)
    assert with_slash.status_code == without.status_code == 200 and with_slash.json() == without.json()
