"""Crash test: K clients create visits (unique external_ids, Idempotency-Keys) and retry every failure,
while `footfall serve` is SIGKILLed and restarted R times at random moments. Then it counts: every
accepted visit stored once, and its webhook event received.

    python bench/crash.py [--database-url URL] [--clients 16] [--visits 250] [--kills 10] [--seconds 600]

Loopback only; bounded in requests (clients x visits) and in time (--seconds); stops by itself.
Exits 1 when anything was lost, duplicated or missing.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from uuid import uuid4

import httpx

from footfall.app import API_PREFIX
from footfall.testing.receiver import Receiver
from footfall.testing.serving import free_port
from footfall.testing.tenants import Tenant, make_tenant_at

SERVER_ENV = {
    "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1",
    "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
    "FOOTFALL_WEBHOOK_TIMEOUT": "2",  # a killed worker's lease lapses after 7 s
    "FOOTFALL_WEBHOOK_RETRY_SCHEDULE": ",".join(["0"] + ["1"] * 30),
    "FOOTFALL_IDEMPOTENCY_LOCK_SECONDS": "2",  # a killed request's key is free again after 2 s
    "FOOTFALL_RATE_LIMIT": "0",
}


@dataclass
class Report:
    database: str
    clients: int
    visits_per_client: int
    requests_sent: int = 0
    retries: int = 0
    kills: int = 0
    visits_expected: int = 0
    visits_stored: int = 0
    lost: int = 0
    duplicated: int = 0
    events_missing: int = 0
    seconds: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)

    def tally(self, expected: set[str], stored: dict[str, int], received: set[str], started: float) -> "Report":
        """What was stored (external_id -> how many) and delivered, against what clients were told."""
        self.visits_stored = sum(stored.values())
        self.lost = len(expected - set(stored))
        self.duplicated = sum(count - 1 for count in stored.values() if count > 1)
        self.events_missing = len(expected - received)
        self.seconds = round(time.monotonic() - started, 1)
        return self

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.events_missing == 0


class Server:
    """`footfall serve` on loopback, killed and started again on demand."""

    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"serve-{self.starts}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "footfall", "serve", "--port", str(self.port), "--database-url", self.database_url],
            env={**os.environ, **SERVER_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, deadline: float) -> None:
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.base_url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError("footfall serve did not come up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def stored_per_external_id(api: httpx.AsyncClient) -> dict[str, int]:
    """external_id -> how many visits the account holds with it, read page by page as a client would."""
    stored: dict[str, int] = {}
    page = 1
    while True:
        response = await api.get("/visits", params={"limit": 500, "page": page})
        response.raise_for_status()
        body = response.json()
        for visit in body["data"]:
            stored[visit["external_id"]] = stored.get(visit["external_id"], 0) + 1
        if page >= body["meta"]["last_page"]:
            return stored
        page += 1


def external_id(n: int, v: int) -> str:
    """Client n's visit v: unique, so the tally can tell a lost visit from a duplicated one."""
    return f"crash-{n}-{v}"


def external_ids(clients: int, visits: int) -> set[str]:
    """Every visit the clients send."""
    return {external_id(n, v) for n in range(clients) for v in range(visits)}


async def delivered(receiver: Receiver, path: str, expected: set[str], deadline: float) -> set[str]:
    """The external_ids of the events `path` has received, once every expected one is in or the deadline
    passes: the worker delivers what is left, including what a killed worker had in flight."""
    received: set[str] = set()
    while time.monotonic() < deadline:
        received = {json.loads(r.body)["data"]["external_id"] for r in receiver.on(path)}
        if expected <= received:
            break
        await asyncio.sleep(0.25)
    return received


async def retrying_client(n: int, visits: int, base_url: str, tenant: Tenant, report: Report, deadline: float) -> None:
    """Client n: sends its visits one by one, each with an Idempotency-Key, retrying every failure
    (a refused connection, a 5xx) with the same key until it is answered 200 or 201."""
    async with httpx.AsyncClient(base_url=f"{base_url}{API_PREFIX}", headers=tenant.headers, timeout=10) as client:
        for v in range(visits):
            body = {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid,
                    "external_id": external_id(n, v)}
            key = str(uuid4())
            first = True
            while time.monotonic() < deadline:
                report.requests_sent += 1
                if not first:
                    report.retries += 1
                first = False
                try:
                    response = await client.post("/visits", json=body, headers={"Idempotency-Key": key})
                    answer = str(response.status_code)
                except httpx.TransportError as error:
                    answer = type(error).__name__
                    response = None
                report.answers[answer] = report.answers.get(answer, 0) + 1
                # A till pauses between visits, and before it retries.
                await asyncio.sleep(0.05 + random.random() * 0.1)
                if response is not None and response.status_code in (200, 201):
                    break
            else:
                raise TimeoutError(f"client {n} ran out of time")


async def run_crash(
    database_url: str, clients: int, visits: int, kills: int, seconds: float, *, seed: int | None = None
) -> Report:
    rng = random.Random(seed)
    report = Report(database_url.split(":", 1)[0], clients, visits, visits_expected=clients * visits)
    started = time.monotonic()
    deadline = started + seconds
    tenant = await make_tenant_at(database_url)
    with tempfile.TemporaryDirectory() as logs, Receiver() as receiver:
        server = Server(database_url, Path(logs))
        server.start()
        try:
            await server.wait_ready(deadline)
            async with httpx.AsyncClient(base_url=f"{server.base_url}{API_PREFIX}", headers=tenant.headers) as api:
                subscribed = await api.post(
                    "/webhook-subscriptions",
                    json={"name": "crash", "event_type": "visit_created", "url": receiver.url("/crash")},
                )
                subscribed.raise_for_status()
            writers = asyncio.gather(
                *(retrying_client(n, visits, server.base_url, tenant, report, deadline) for n in range(clients))
            )
            while not writers.done() and report.kills < kills:
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                if writers.done():
                    break
                server.kill()
                report.kills += 1
                await asyncio.sleep(rng.uniform(0, 0.5))
                server.start()
                await server.wait_ready(deadline)
            await writers
            expected = external_ids(clients, visits)
            received = await delivered(receiver, "/crash", expected, deadline)
            async with httpx.AsyncClient(base_url=f"{server.base_url}{API_PREFIX}", headers=tenant.headers) as api:
                stored = await stored_per_external_id(api)
        finally:
            server.stop()
    return report.tally(expected, stored, received, started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file in a temporary folder")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--visits", type=int, default=250, help="per client")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=600, help="the whole run's time limit")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/crash.db"
        report = asyncio.run(run_crash(url, args.clients, args.visits, args.kills, args.seconds, seed=args.seed))
    for key, value in asdict(report).items():
        print(f"{key:>18}: {value}")
    print("OK: nothing lost, duplicated or missing" if report.ok else "FAILED")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
