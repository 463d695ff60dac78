"""Log lines, as an operator's log shipper reads them from the real `footfall` command: every line a
JSON object with a time, a level and a request id; one line a request with its route template,
status, duration and account, and never a token, a secret, a body or a query string."""

import json
import os
import pty
import signal
import subprocess
import sys

import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.serving import footfall, running_server, start_worker
from footfall.testing.tenants import Tenant

FAST = {"FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1"}
SHOW = f"{API_PREFIX}/visits/{{uuid}}"


def json_lines(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "event", "request_id"} <= line.keys(), line
    return lines


def create_visit(client: httpx.Client, tenant: Tenant, request_id: str) -> dict:
    response = client.post("/visits", json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
                           headers={"X-Request-Id": request_id})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_every_line_of_serve_is_json_and_a_request_is_one_line(database_url, tenant, receiver, tmp_path):
    log_path = tmp_path / "serve.log"
    with running_server(database_url, env=FAST, log_path=log_path) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers
    ) as client:
        subscription = client.post("/webhook-subscriptions", json={
            "name": "logs", "event_type": "visit_created", "url": receiver.url("/logs")})
        assert subscription.status_code == 201
        secret = subscription.json()["data"]["secret"]
        visit = create_visit(client, tenant, "logs-create-1")
        assert client.get(f"/visits/{visit['uuid']}", headers={"X-Request-Id": "logs-show-1"}).status_code == 200
        assert client.get("/visits", params={"contact_uuid": tenant.contact_uuid},
                          headers={"X-Request-Id": "logs-list-1"}).status_code == 200
        console = httpx.get(f"{base_url}/visits", cookies={"footfall_session": tenant.token},
                            headers={"X-Request-Id": "logs-console"})
        assert console.status_code == 200
        assert httpx.get(f"{base_url}/no/such/path", headers={"X-Request-Id": "logs-404"}).status_code == 404
        assert httpx.get(f"{base_url}{API_PREFIX}/visits", headers={"X-Request-Id": "logs-401"}).status_code == 401
        receiver.wait_for("/logs", 1)
    text = log_path.read_text()
    lines = json_lines(text)
    by_id = {line["request_id"]: line for line in lines if line["event"] == "request"}

    show = by_id["logs-show-1"]
    assert show["level"] == "info" and show["logger"] == "footfall.request"
    assert (show["method"], show["route"], show["status"]) == ("GET", SHOW, 200)
    assert show["account_uuid"] == tenant.account_uuid and show["duration_ms"] >= 0
    assert (by_id["logs-create-1"]["method"], by_id["logs-create-1"]["route"]) == ("POST", f"{API_PREFIX}/visits")
    assert by_id["logs-list-1"]["route"] == f"{API_PREFIX}/visits"
    assert (by_id["logs-404"]["route"], by_id["logs-404"]["status"]) == ("unmatched", 404)
    assert (by_id["logs-console"]["route"], by_id["logs-console"]["account_uuid"]) == ("/visits", tenant.account_uuid)
    assert (by_id["logs-401"]["status"], by_id["logs-401"]["account_uuid"]) == (401, None)
    # The delivery the create caused is logged with the create's request id.
    # (The worker delivers every account's pending events of the shared test database: this test's by its id.)
    [attempt] = [line for line in lines if line["event"] == "webhook delivery attempt"
                 and line["request_id"] == "logs-create-1"]
    assert (attempt["outcome"], attempt["status"]) == ("succeeded", 200)
    # Start and stop are lines too.
    events = [line["event"] for line in lines]
    assert any(event.startswith("Started server process") for event in events)
    assert any(event.startswith("Finished server process") for event in events)
    # Never a token, a secret, a body or a query string.
    for kept_out in (tenant.token, secret, tenant.contact_email, "contact_uuid="):
        assert kept_out not in text


def test_text_format_for_a_person(database_url, tmp_path):
    log_path = tmp_path / "serve.log"
    with running_server(database_url, env={"FOOTFALL_LOG_FORMAT": "text"}, log_path=log_path) as base_url:
        httpx.get(f"{base_url}/healthz", headers={"X-Request-Id": "text-1"})
    text = log_path.read_text()
    [line] = [line for line in text.splitlines() if "text-1" in line]
    assert "request" in line and "route=/healthz" in line and "status=200" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_log_level_warning_leaves_request_lines_out(database_url, tmp_path):
    log_path = tmp_path / "serve.log"
    with running_server(database_url, env={"FOOTFALL_LOG_LEVEL": "WARNING"}, log_path=log_path) as base_url:
        assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert all(line["level"] != "info" for line in json_lines(log_path.read_text()))


def test_a_bad_log_setting_is_named(database_url):
    result = footfall("migrate", database_url=database_url, check=False, env={"FOOTFALL_LOG_FORMAT": "xml"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: FOOTFALL_LOG_FORMAT: ")


def test_a_migration_is_one_json_line(fresh_database_url):
    first = footfall("migrate", database_url=fresh_database_url)
    [line] = json_lines(first.stderr)
    assert (line["event"], line["logger"], line["from_revision"]) == ("schema migrated", "footfall.migrations", None)
    assert line["to_revision"]
    again = footfall("migrate", database_url=fresh_database_url)
    assert again.stderr == ""  # nothing to migrate, nothing said


def test_the_worker_logs_json_with_the_causing_request_id(database_url, tenant, receiver):
    with running_server(database_url, "--no-worker", env=FAST) as base_url, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers
    ) as client:
        assert client.post("/webhook-subscriptions", json={
            "name": "w", "event_type": "visit_created", "url": receiver.url("/worker-logs")}).status_code == 201
        worker = start_worker(database_url, env=FAST)
        try:
            create_visit(client, tenant, "worker-logs-1")
            receiver.wait_for("/worker-logs", 1)
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=30)
    lines = json_lines(output)
    events = [line["event"] for line in lines]
    assert events[0] == "footfall worker: delivering webhooks" and events[-1] == "footfall worker: stopped"
    [attempt] = [line for line in lines if line["event"] == "webhook delivery attempt"
                 and line["request_id"] == "worker-logs-1"]
    assert (attempt["outcome"], attempt["attempt"]) == ("succeeded", 1)


def test_text_is_the_default_on_a_terminal(tmp_path):
    """On a terminal the lines are for a person; anywhere else they are JSON."""
    script = ("import sys, logging; from footfall.kit import logs; "
              "logs.configure(None, 'info'); logging.getLogger('footfall').info('hello'); "
              "print(logs.chosen_format(None), file=sys.stdout)")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execv(sys.executable, [sys.executable, "-c", script])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    assert b"text" in output and b"hello" in output and b'"event"' not in output
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert piped.stdout.strip() == "json"
    assert json.loads(piped.stderr)["event"] == "hello"
