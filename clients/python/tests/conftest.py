"""The client's tests run against a real Footfall: `footfall serve` on loopback over a fresh SQLite
file, with a demo account. A flaky proxy in front of it fails chosen requests, for the retry tests."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
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


@pytest.fixture(scope="session")
def footfall(tmp_path_factory):
    """(base_url, demo) of a running Footfall; demo has the account, token, shops and contacts."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('client')}/footfall.db"
    demo = _footfall("demo", database_url=database_url)
    demo["read_only_token"] = _footfall("tokens", "create", "--account", demo["account_uuid"], "--read-only",
                                        database_url=database_url)["token"]
    port = _free_port()
    env = {**os.environ, "FOOTFALL_RATE_LIMIT": "0", "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1",
           "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "footfall", "serve", "--port", str(port), "--database-url", database_url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
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
    process.terminate()
    process.wait(timeout=30)


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
