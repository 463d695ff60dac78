"""Errors the framework raises (unknown routes, wrong methods, crashes) leave in Leat's shape too."""

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
