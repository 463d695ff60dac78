"""Request limits and rate limiting, answered in Leat's shape."""

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager

import httpx
import pytest

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
from footfall.db import migrate
from tests.conftest import make_tenant

REDIS_URL = os.environ.get("FOOTFALL_TEST_REDIS_URL")


async def fresh_window() -> None:
    """Waits out the end of a minute, so a few requests all fall in one fixed window."""
    if 60 - time.time() % 60 < 3:
        await asyncio.sleep(60 - time.time() % 60 + 0.1)


@asynccontextmanager
async def app_client(database_url, **settings):
    app = create_app(Settings(database_url=database_url, webhook_worker=False, **settings))
    await migrate(app.state.settings.database_url)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://footfall.test{API_PREFIX}") as client:
        yield app, client
    await app.state.database.close()


async def test_a_body_over_the_limit_is_413_before_it_is_read_whole(database_url):
    async with app_client(database_url, max_body_bytes=1000) as (app, client):
        tenant = await make_tenant(app)
        body = {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "source": "x" * 2000}
        response = await client.post("/visits", json=body, headers=tenant.headers)
        assert response.status_code == 413
        assert response.json() == {"status_code": 413, "code": 90413, "message": "The body is larger than 1000 bytes."}

        chunks_read = []

        async def stream():  # no Content-Length: chunked, and refused after the limit
            for n in range(100):
                chunks_read.append(n)
                yield b"x" * 500

        response = await client.post("/visits", content=stream(),
                                     headers={**tenant.headers, "Content-Type": "application/json"})
        assert response.status_code == 413 and len(chunks_read) < 100
        small = await client.post("/visits", json={**body, "source": "x"}, headers=tenant.headers)
        assert small.status_code == 201


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/mixed; boundary=x", "application/xml"])
async def test_a_body_neither_json_nor_form_is_415(client, tenant, content_type):
    response = await client.post(
        "/visits", content=b'{"a": 1}', headers={**tenant.headers, "Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["code"] == 90415 and response.json()["status_code"] == 415


async def test_json_with_a_charset_and_plus_json_types_are_accepted(client, tenant):
    body = f'{{"contact_uuid": "{tenant.contact_uuid}", "shop_uuid": "{tenant.shop_uuid}"}}'.encode()
    for content_type in ("application/json; charset=utf-8", "application/vnd.footfall+json"):
        response = await client.post("/visits", content=body, headers={**tenant.headers, "Content-Type": content_type})
        assert response.status_code == 201, response.text


async def test_rate_limit_per_token_with_headers_on_every_answer(database_url):
    async with app_client(database_url, rate_limit=3) as (app, client):
        tenant = await make_tenant(app)
        other = await make_tenant(app)
        await fresh_window()
        for remaining, path in zip((2, 1, 0), ("/visits", "/nothing-here", "/shops"), strict=True):
            response = await client.get(path, headers=tenant.headers)
            assert response.status_code != 429
            assert response.headers["ratelimit-limit"] == response.headers["x-ratelimit-limit"] == "3"
            assert (response.headers["ratelimit-remaining"] == response.headers["x-ratelimit-remaining"]
                    == str(remaining))
            assert 1 <= int(response.headers["ratelimit-reset"]) <= 60
            assert "retry-after" not in response.headers and "x-ratelimit-reset" not in response.headers
        refused = await client.get("/visits", headers=tenant.headers)
        assert refused.status_code == 429
        assert refused.json() == {"status_code": 429, "code": 90429, "message": "Too many requests."}
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60 and refused.headers["ratelimit-reset"] == str(retry_after)
        assert refused.headers["ratelimit-remaining"] == refused.headers["x-ratelimit-remaining"] == "0"
        # Laravel's X-RateLimit-Reset: the Unix time the window ends, retry_after seconds from now.
        assert abs(int(refused.headers["x-ratelimit-reset"]) - (time.time() + retry_after)) <= 2
        assert int(refused.headers["x-ratelimit-reset"]) % 60 == 0
        assert (await client.get("/visits", headers=other.headers)).status_code == 200


async def test_rate_limit_off_with_zero(database_url):
    async with app_client(database_url, rate_limit=0) as (app, client):
        tenant = await make_tenant(app)
        response = await client.get("/visits", headers=tenant.headers)
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers and "x-ratelimit-limit" not in response.headers


@pytest.mark.skipif(not REDIS_URL, reason="FOOTFALL_TEST_REDIS_URL is not set, so the Redis rate limit is not tested")
async def test_the_redis_limit_is_shared_by_every_process(database_url):
    async with app_client(database_url, rate_limit=4, redis_url=REDIS_URL) as (app, first):
        async with app_client(database_url, rate_limit=4, redis_url=REDIS_URL) as (_, second):
            tenant = await make_tenant(app)
            await fresh_window()
            statuses = [(await client.get("/visits", headers=tenant.headers)).status_code
                        for client in (first, second, first, second, first)]
            assert statuses == [200, 200, 200, 200, 429]


async def test_an_unreachable_redis_fails_open_and_is_logged_once(database_url, caplog):
    async with app_client(database_url, rate_limit=1, redis_url="redis://127.0.0.1:1/0") as (app, client):
        tenant = await make_tenant(app)
        with caplog.at_level(logging.WARNING, logger="footfall"):
            for _ in range(5):
                assert (await client.get("/shops", headers=tenant.headers)).status_code == 200
        warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(warnings) == 1
