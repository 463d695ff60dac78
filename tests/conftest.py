"""Every test runs against SQLite and PostgreSQL.

PostgreSQL is FOOTFALL_TEST_DATABASE_URL's server or, when that is unset, a throwaway server the run
starts with PostgreSQL's own programs; Redis likewise (FOOTFALL_TEST_REDIS_URL). The run's last lines
say which backends ran and, for one that did not, why. PostgreSQL tests run in a database of their
own, created from that URL and dropped at the end.
Tests make their own account (so they never see each other's rows) and talk to the app through
HTTP, as a client would.
"""

import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
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
from footfall.testing import postgres, redis
from footfall.testing.receiver import Receiver
from footfall.testing.tenants import Tenant, tenant_in

DATABASE_VARIABLE, REDIS_VARIABLE = "FOOTFALL_TEST_DATABASE_URL", "FOOTFALL_TEST_REDIS_URL"
# Why each backend runs where it does, or why it does not run: for the fixtures' skips and the summary.
BACKEND_ORIGINS: dict[str, str] = {}
_throwaway_servers: list[postgres.LocalCluster | redis.LocalRedis] = []
_outcomes: dict[str, Counter[str]] = {"sqlite": Counter(), "postgresql": Counter()}


def _provide(name: str, variable: str, can_make: Callable[[], bool], needs: str,
             make: Callable[[], tuple[postgres.LocalCluster | redis.LocalRedis, str]]) -> None:
    """The backend at `variable` when it is set (empty: not run), else a throwaway server when this
    machine can make one; the variable then names it, for the fixtures and the modules that read it."""
    given = os.environ.get(variable)
    if given:
        BACKEND_ORIGINS[name] = f"{variable} ({given})"
    elif given is not None:
        BACKEND_ORIGINS[name] = f"not run: {variable} is set empty"
    elif not can_make():
        BACKEND_ORIGINS[name] = f"not run: {variable} is not set and {needs[0].lower()}{needs[1:]}"
    else:
        server, url = make()
        _throwaway_servers.append(server)
        os.environ[variable] = url
        BACKEND_ORIGINS[name] = f"a throwaway server this run started ({url}), as {variable} is not set"


def _throwaway_postgres() -> tuple[postgres.LocalCluster, str]:
    cluster = postgres.LocalCluster(standbys=0)
    return cluster, cluster.database_url(cluster.primary)


def _throwaway_redis() -> tuple[redis.LocalRedis, str]:
    server = redis.LocalRedis()
    return server, server.url


def pytest_configure(config: pytest.Config) -> None:
    _provide("PostgreSQL", DATABASE_VARIABLE, postgres.can_make_servers, postgres.NEEDS, _throwaway_postgres)
    _provide("Redis", REDIS_VARIABLE, redis.can_make_servers, redis.NEEDS, _throwaway_redis)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _throwaway_servers:
        _throwaway_servers.pop().close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        for backend, outcomes in _outcomes.items():
            if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid or f"-{backend}-" in report.nodeid:
                outcomes[report.outcome] += 1


def pytest_terminal_summary(terminalreporter) -> None:
    lines = ["backends: SQLite, an embedded file per run"]
    for name, origin in BACKEND_ORIGINS.items():
        lines.append(f"{name}: {origin}")
    for backend, outcomes in _outcomes.items():
        if outcomes:
            counted = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
            lines.append(f"tests on {backend}: {counted}")
    terminalreporter.write_sep("=", "backends")
    for line in lines:
        terminalreporter.write_line(line)


def postgres_url() -> str | None:
    return os.environ.get(DATABASE_VARIABLE) or None


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
    if not postgres_url():
        pytest.skip(f"PostgreSQL {BACKEND_ORIGINS['PostgreSQL']}")
    async with postgres_database("footfall_test") as url:
        yield url


@asynccontextmanager
async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """A new database on FOOTFALL_TEST_DATABASE_URL's server, dropped afterwards."""
    server = postgres_url()
    assert server is not None
    name = f"{prefix}_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _asyncpg_dsn(server, name)
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
