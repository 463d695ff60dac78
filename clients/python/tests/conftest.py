"""The client's tests run against a real Footfall: `footfall serve` on loopback over a fresh SQLite
file (`footfall`), or once over SQLite and once over a fresh PostgreSQL database (`footfall_on`), with
a demo account. A flaky proxy in front of it fails chosen requests, for the retry tests."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _footfall(*args: str, database_url: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "footfall", *args, "--database-url", database_url],
                            capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout)


@contextlib.contextmanager
def _served(database_url: str) -> Iterator[tuple[str, dict]]:
    """(base_url, demo) of `footfall serve` over database_url, which `footfall demo` fills first."""
    demo = _footfall("demo", database_url=database_url)
    demo["read_only_token"] = _footfall("tokens", "create", "--account", demo["account_uuid"], "--read-only",
                                        database_url=database_url)["token"]
    port = _free_port()
    # The lapse pass runs every 0.2 s, so that a lapse rule's events come while a test waits.
    env = {**os.environ, "FOOTFALL_RATE_LIMIT": "0", "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1",
           "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1", "FOOTFALL_RULES_INTERVAL": "0.2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "footfall", "serve", "--port", str(port), "--database-url", database_url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("footfall serve did not start")
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {demo['token']}"}
        demo["shops"] = [s["uuid"] for s in
                         httpx.get(f"{base_url}/api/v3/oauth/clients/shops", headers=headers).json()["data"]]
        demo["contacts"] = [c["uuid"] for c in
                            httpx.get(f"{base_url}/api/v3/oauth/clients/contacts", headers=headers).json()["data"]]
        yield base_url, demo
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def footfall(tmp_path_factory):
    """(base_url, demo) of a running Footfall; demo has the account, token, shops and contacts."""
    with _served(f"sqlite:///{tmp_path_factory.mktemp('client')}/footfall.db") as served:
        yield served


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    """A new database on FOOTFALL_TEST_DATABASE_URL's server, dropped afterwards."""
    import asyncpg  # the server's driver, installed beside footfall

    server = os.environ["FOOTFALL_TEST_DATABASE_URL"]
    name = f"footfall_client_{uuid.uuid4().hex[:12]}"

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def footfall_on(request, tmp_path_factory):
    """As footfall, once over SQLite and once over PostgreSQL (FOOTFALL_TEST_DATABASE_URL's server;
    skipped without it)."""
    if request.param == "sqlite":
        with _served(f"sqlite:///{tmp_path_factory.mktemp('client-sqlite')}/footfall.db") as served:
            yield served
        return
    if not os.environ.get("FOOTFALL_TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL: set FOOTFALL_TEST_DATABASE_URL")
    with _postgres_database() as database_url, _served(database_url) as served:
        yield served


class FlakyProxy:
    """Forwards to Footfall, except that it first fails the next requests as told:
    ("status", 503, headers) answers that status itself; ("drop",) forwards the request and then
    closes the connection without answering (the write happened, the client never hears of it)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.plan: list[tuple] = []
        self.seen: list[tuple[str, str, dict]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                proxy.seen.append((self.command, self.path, headers))
                step = proxy.plan.pop(0) if proxy.plan else ("forward",)
                if step[0] == "status":
                    payload = step[3] if len(step) > 3 else b""
                    self.send_response(step[1])
                    for name, value in (step[2] or {}).items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                response = httpx.request(self.command, proxy.upstream + self.path, headers=headers, content=body)
                if step[0] == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(footfall):
    base_url, _ = footfall
    proxy = FlakyProxy(base_url)
    yield proxy
    proxy.close()
