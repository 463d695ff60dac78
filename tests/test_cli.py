"""The footfall command: admin commands print one JSON object; bad input is one line on stderr."""

import json
import re
from datetime import timedelta

import click
import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.db.urls import postgres_dsn
from footfall.kit.time import utcnow
from footfall.testing.serving import footfall, footfall_json, running_server

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def account(database_url):
    return footfall_json("accounts", "create", "--name", "Bikini Bottom", database_url=database_url)


def test_accounts_create(account):
    assert UUID.match(account["uuid"]) and account["name"] == "Bikini Bottom"


def test_tokens_create_and_revoke(database_url, account):
    expires = (utcnow() + timedelta(days=30)).isoformat()
    token = footfall_json(
        "tokens", "create", "--account", account["uuid"], "--name", "till 7", "--expires-at", expires,
        database_url=database_url,
    )
    assert set(token) == {
        "uuid", "name", "token", "expires_at", "account_uuid", "read_only", "revoked_at", "last_used_at", "created_at"
    }
    assert token["read_only"] is False and token["revoked_at"] is None
    assert token["name"] == "till 7" and token["token"].startswith("ffpat_") and len(token["token"]) > 40
    assert token["expires_at"].endswith("+00:00")
    revoked = footfall_json("tokens", "revoke", token["uuid"], database_url=database_url)
    assert revoked["uuid"] == token["uuid"] and revoked["revoked_at"].endswith("+00:00")
    read_only = footfall_json("tokens", "create", "--account", account["uuid"], "--read-only",
                              database_url=database_url)
    assert read_only["read_only"] is True
    listed = footfall_json("tokens", "list", "--account", account["uuid"], database_url=database_url)
    assert [t["uuid"] for t in listed["data"]][-2:] == [token["uuid"], read_only["uuid"]]
    assert all("token" not in t for t in listed["data"])
    assert listed["data"][-2]["revoked_at"] == revoked["revoked_at"]


def test_shops_and_contacts_create(database_url, account):
    shop = footfall_json(
        "shops", "create", "--account", account["uuid"], "--name", "Krusty Krab", "--type", "web",
        "--reference", "KK-9", database_url=database_url,
    )
    assert set(shop) == {"uuid", "name", "type", "reference"}
    assert (shop["name"], shop["type"], shop["reference"]) == ("Krusty Krab", "web", "KK-9")
    contact = footfall_json(
        "contacts", "create", "--account", account["uuid"], "--email", "Pearl@Krabs.sea", database_url=database_url
    )
    assert UUID.match(contact["uuid"]) and contact["email"] == "pearl@krabs.sea"
    again = footfall_json(
        "contacts", "create", "--account", account["uuid"], "--email", "pearl@krabs.sea", database_url=database_url
    )
    assert again == contact


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shops", "create", "--account", "{account}", "--name", "X", "--type", "boat"], "--type"),
        (["shops", "create", "--account", "{account}", "--name", ""], "--name"),
        (["shops", "create", "--account", "nope", "--name", "X"], "--account"),
        (["shops", "create", "--account", "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92", "--name", "X"], "account"),
        (["contacts", "create", "--account", "{account}", "--email", "not-an-email"], "--email"),
        (["tokens", "create", "--account", "{account}", "--expires-at", "tomorrow"], "--expires-at"),
        (["tokens", "create", "--account", "{account}", "--expires-at", "2001-01-01T00:00:00Z"], "--expires-at"),
        (["tokens", "revoke", "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"], "token"),
        (["tokens", "revoke", "x"], "TOKEN_UUID"),
        (["accounts", "create", "--name", ""], "--name"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_a_failure(database_url, account, args, message):
    args = [arg.replace("{account}", account["uuid"]) for arg in args]
    result = footfall(*args, database_url=database_url, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_bad_input_writes_nothing(database_url):
    demo = footfall_json("demo", database_url=database_url)
    footfall("shops", "create", "--account", demo["account_uuid"], "--name", "X", "--type", "boat",
             database_url=database_url, check=False)
    with running_server(database_url) as base_url:
        shops = httpx.get(f"{base_url}{API_PREFIX}/shops", headers={"Authorization": f"Bearer {demo['token']}"})
    assert "X" not in [shop["name"] for shop in shops.json()["data"]]


def test_an_unsupported_database_url_is_a_clear_error():
    result = footfall("migrate", database_url="mysql://root@127.0.0.1/test", check=False)
    assert result.returncode != 0 and "unsupported database URL" in result.stderr


def test_demo_is_made_once_and_served(database_url):
    first = footfall_json("demo", database_url=database_url)
    second = footfall_json("demo", database_url=database_url)
    assert first["account_uuid"] == second["account_uuid"] and first["token"] != second["token"]
    assert second["curl"].startswith("curl ") and second["token"] in second["curl"]
    assert all(first[name] == second[name] for name in ("contact_uuid", "shop_uuid", "visit_uuid", "subscription_uuid"))
    exported = footfall("demo", "--env", database_url=database_url).stdout.splitlines()
    assert [line.split("=", 1)[0] for line in exported] == [
        f"export {name}" for name in ("B", "H", "C", "S", "V", "W", "L", "ACCOUNT", "FROM", "TO")]
    assert f"export C={first['contact_uuid']}" in exported and f"export W={first['subscription_uuid']}" in exported
    assert f"export ACCOUNT={first['account_uuid']}" in exported
    assert "export B=http://127.0.0.1:8000/api/v3/oauth/clients" in exported
    with running_server(database_url) as base_url:
        for token in (first["token"], second["token"]):
            response = httpx.get(f"{base_url}{API_PREFIX}/visits", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            body = response.json()
            assert body["meta"]["total"] > 200 and len(body["data"]) == 30  # 90 days of visits
        shops = httpx.get(f"{base_url}{API_PREFIX}/shops", headers={"Authorization": f"Bearer {first['token']}"})
        assert len(shops.json()["data"]) == 3


def test_demo_makes_again_what_the_readme_examples_deleted(fresh_database_url):
    """The README deletes the demo's visit, subscription and (in some runs) its contact; the next
    `footfall demo` names ones that exist, so the examples run again as printed."""
    first = footfall_json("demo", database_url=fresh_database_url)
    with running_server(fresh_database_url) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers={"Authorization": f"Bearer {first['token']}"}
    ) as client:
        for path in (f"/visits/{first['visit_uuid']}", f"/webhook-subscriptions/{first['subscription_uuid']}",
                     f"/contacts/{first['contact_uuid']}"):
            assert client.delete(path).status_code == 200, path
        again = footfall_json("demo", database_url=fresh_database_url)
        client.headers["Authorization"] = f"Bearer {again['token']}"
        for path in (f"/visits/{again['visit_uuid']}", f"/webhook-subscriptions/{again['subscription_uuid']}",
                     f"/contacts/{again['contact_uuid']}", f"/shops/{again['shop_uuid']}"):
            assert client.get(path).status_code == 200, path
        assert again["visit_uuid"] != first["visit_uuid"]


def test_serve_with_several_workers(database_url):
    demo = footfall_json("demo", database_url=database_url)
    with running_server(database_url, "--workers", "2") as base_url:
        headers = {"Authorization": f"Bearer {demo['token']}"}
        for _ in range(10):
            assert httpx.get(f"{base_url}{API_PREFIX}/visits", headers=headers).status_code == 200


def test_migrate_is_idempotent(database_url):
    for _ in range(2):
        assert footfall_json("migrate", database_url=database_url) == {"migrated": True}


def test_a_service_waits_for_a_database_that_is_down_then_says_why_it_gave_up():
    result = footfall(
        "worker", database_url="postgresql://postgres@127.0.0.1:1/footfall", check=False,
        env={"FOOTFALL_DATABASE_START_TIMEOUT": "3"},
    )
    assert result.returncode == 1
    assert result.stderr.count("database not reachable") >= 2 and "retrying in 2 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: database:")


async def test_a_service_whose_migration_fails_says_why_at_once(database_url, fresh_database_url):
    """A database that answers but refuses a migration is no database to wait for."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only a PostgreSQL server is waited for")
    import asyncpg

    connection = await asyncpg.connect(postgres_dsn(fresh_database_url))
    try:
        await connection.execute("CREATE TABLE accounts (id text)")  # what the first migration creates
    finally:
        await connection.close()
    result = footfall("worker", database_url=fresh_database_url, check=False,
                      env={"FOOTFALL_DATABASE_START_TIMEOUT": "60"})
    assert result.returncode == 1
    assert "database not reachable" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: database:")
    assert "already exists" in result.stderr


def test_a_service_stopped_while_it_waits_for_its_database_exits_cleanly():
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "footfall", "worker", "--database-url", "postgresql://postgres@127.0.0.1:1/footfall"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        seen = ""
        while "database not reachable" not in seen and time.monotonic() < deadline:
            seen += process.stdout.readline()
        assert "database not reachable" in seen, seen
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopped while waiting for the database" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_stops_cleanly_on_sigterm(database_url):
    import signal
    import subprocess
    import sys
    import time

    from footfall.testing.serving import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "footfall", "serve", "--port", str(port), "--database-url", database_url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # uvicorn re-raises the SIGTERM it handled once shut down, so the exit status says "terminated".
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output and "Traceback" not in output


def test_accounts_and_shops_are_listed(database_url):
    made = footfall_json("accounts", "create", "--name", "Listed Lagoon", database_url=database_url)
    listed = footfall_json("accounts", "list", database_url=database_url)["data"]
    assert made in listed and listed == sorted(listed, key=lambda account: account["created_at"])
    footfall("shops", "create", "--account", made["uuid"], "--name", "Weenie Hut", database_url=database_url)
    footfall("shops", "create", "--account", made["uuid"], "--name", "Goo Lagoon", "--type", "web",
             database_url=database_url)
    shops = footfall_json("shops", "list", "--account", made["uuid"], database_url=database_url)["data"]
    assert [(shop["name"], shop["type"]) for shop in shops] == [("Goo Lagoon", "web"), ("Weenie Hut", "physical")]
    missing = footfall("shops", "list", "--account", "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92", database_url=database_url,
                       check=False)
    assert missing.returncode == 1 and missing.stderr.strip()


def test_status_says_what_an_operator_checks(database_url, tmp_path):
    footfall("migrate", database_url=database_url)
    status = footfall_json("status", database_url=database_url)
    assert status["database"] == "reachable" and status["schema"]["at_newest"] is True
    assert status["schema"]["revision"] == status["schema"]["newest"]
    assert set(status["deliveries"]) == {"pending", "failed", "oldest_pending_seconds"}
    behind = footfall("status", database_url=f"sqlite:///{tmp_path}/empty.db", check=False)
    assert behind.returncode == 1 and json.loads(behind.stdout)["schema"]["revision"] is None
    down = footfall("status", database_url="postgresql://postgres@127.0.0.1:1/nothing", check=False)
    assert down.returncode == 1 and json.loads(down.stdout)["database"].startswith("unreachable")


def test_every_command_and_option_says_what_it_is():
    from footfall.cli import main

    def walk(command, path):
        yield path, command
        if isinstance(command, click.Group):
            with click.Context(command) as context:
                for name in command.list_commands(context):
                    yield from walk(command.get_command(context, name), f"{path} {name}")

    for path, command in walk(main, "footfall"):
        assert command.help, f"{path} has no help text"
        for parameter in command.params:
            if isinstance(parameter, click.Option) and parameter.name not in ("help", "version"):
                assert parameter.help, f"{path} {parameter.opts[0]} has no help text"


def test_status_of_a_database_at_the_newest_revision_loads_the_drivers_alone(database_url):
    """What keeps `footfall status` quick to start (bench/cli_startup.py measures it): its own module
    and the drivers, no SQLAlchemy, pydantic or settings, and no migration machinery for a schema that
    is up to date."""
    import subprocess
    import sys

    footfall("migrate", database_url=database_url)
    run_status = ("import json, sys\nfrom footfall.cli import main\n"
                  f"main(['status', '--database-url', {database_url!r}], standalone_mode=False)\n"
                  "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", run_status], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["schema"]["at_newest"] is True, result.stderr
    loaded = json.loads(result.stderr.strip().splitlines()[-1])
    assert {"footfall.cli.status", "footfall.webhooks.outbox_sql"} <= set(loaded)
    assert not [name for name in loaded if name.split(".")[0] in (
        "fastapi", "starlette", "alembic", "uvicorn", "sqlalchemy", "pydantic", "pydantic_settings")]
    assert not [name for name in loaded if name in ("footfall.config", "footfall.cli.common", "footfall.db.tx")]
    assert not [name for name in loaded if name.startswith(("footfall.visits", "footfall.contacts", "footfall.app"))]


def test_the_newest_revision_read_from_the_files_is_alembics():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from footfall.db.migrate import MIGRATIONS_DIR, newest_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert newest_revision() == ScriptDirectory.from_config(config).get_current_head()
