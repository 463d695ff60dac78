"""Every test runs against SQLite and, when FOOTFALL_TEST_DATABASE_URL is set, PostgreSQL.

PostgreSQL tests run in a database of their own, created from that URL and dropped at the end.
Tests make their own account (so they never see each other's rows) and talk to the app through
HTTP, as a client would.
"""

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
from footfall.db import migrate
from footfall.testing.receiver import Receiver
from footfall.testing.tenants import Tenant, tenant_in

POSTGRES_URL = os.environ.get("FOOTFALL_TEST_DATABASE_URL")


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request, tmp_path_factory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/footfall.db"
        return
    if not POSTGRES_URL:
        pytest.skip("FOOTFALL_TEST_DATABASE_URL is not set, so the PostgreSQL run is skipped")
    async with postgres_database("footfall_test") as url:
        yield url


@asynccontextmanager
async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """A new database on FOOTFALL_TEST_DATABASE_URL's server, dropped afterwards."""
    name = f"{prefix}_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _asyncpg_dsn(POSTGRES_URL, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    # Webhook receivers in the tests listen on 127.0.0.1; workers are started by the tests that need them.
    app = create_app(
        Settings(database_url=database_url, webhook_allow_private_urls=True, webhook_worker=False,
                 token_cache_seconds=0)
    )
    await migrate(database_url)
    yield app
    await app.state.database.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://footfall.test{API_PREFIX}") as client:
        yield client


async def make_tenant(app: FastAPI) -> Tenant:
    return await tenant_in(app.state.database)


@pytest.fixture
async def tenant(app: FastAPI) -> Tenant:
    return await make_tenant(app)


@pytest.fixture
async def other_tenant(app: FastAPI) -> Tenant:
    return await make_tenant(app)


@pytest.fixture
async def fresh_database_url(database_url, tmp_path) -> AsyncIterator[str]:
    """A database of its own, beside the session's, that nothing has migrated yet."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    async with postgres_database("footfall_fresh") as url:
        yield url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1."""
    with Receiver() as receiver:
        yield receiver
