"""The production topology on one machine, measured: a PostgreSQL primary and its synchronous streaming
standby, Redis, two app hosts and a worker host (each in a network namespace of its own, joined by a
bridge), and HAProxy in front of the app hosts. Then:

1. scale: show, list and create through HAProxy with one app host and with two (wrk), and with one
   whose connections to PostgreSQL go through PgBouncer in transaction pooling; with the CPU
   each request cost in the app processes and in PostgreSQL, the standby's replay lag under the
   creates, and the share of reads the replica served;
2. failover: clients create visits (unique external_ids, Idempotency-Keys, retrying every failure)
   while the primary is killed and the standby promoted; requests, retries, acknowledged, stored,
   lost, duplicated and webhook events missing (the last three must be 0).

    python bench/cluster.py [--seconds 5] [--concurrency 16] [--history 20000] [--clients 8] [--visits 60]
                            [--markdown FILE]

Needs root (ip netns), Debian's postgresql, haproxy, redis-server and wrk. Everything it starts it
stops, namespaces and bridge included; loopback and its own 10.77.0.0/24 network only; every load is
bounded in time or requests. Exits 1 when the failover lost, duplicated or missed anything, or a
load met errors.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.crash import Report, delivered, external_ids, retrying_client, stored_per_external_id  # noqa: E402
from bench.run import lua, lua_rotating, wrk  # noqa: E402
from footfall.app import API_PREFIX  # noqa: E402
from footfall.testing.postgres import LocalCluster, LocalPgBouncer  # noqa: E402
from footfall.testing.receiver import Receiver  # noqa: E402
from footfall.testing.serving import free_port  # noqa: E402
from footfall.testing.tenants import make_tenant_at  # noqa: E402

BRIDGE, BRIDGE_IP, NETWORK = "ffbr0", "10.77.0.1", "10.77.0.0/24"
HOSTS = {"ff-app1": "10.77.0.11", "ff-app2": "10.77.0.12", "ff-worker": "10.77.0.13"}
APP_PORT = 8000
BOUNCED_PORT = 8001  # the app process behind PgBouncer
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)


class Network:
    """A bridge in this namespace and a namespace per host, each joined to it by a veth pair."""

    def __init__(self) -> None:
        self.down()  # what an interrupted run left
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for n, (name, address) in enumerate(HOSTS.items()):
            outside, inside = f"ffv{n}", f"ffv{n}p"
            sh("ip", "netns", "add", name)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", inside, "netns", name)
            sh("ip", "link", "set", outside, "master", BRIDGE)
            sh("ip", "link", "set", outside, "up")
            sh("ip", "-n", name, "addr", "add", f"{address}/24", "dev", inside)
            sh("ip", "-n", name, "link", "set", inside, "up")
            sh("ip", "-n", name, "link", "set", "lo", "up")

    @staticmethod
    def down() -> None:
        for name in HOSTS:
            sh("ip", "netns", "del", name, check=False)
        sh("ip", "link", "del", BRIDGE, check=False)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Each process's user and system CPU so far, its threads included."""
    seconds = {}
    for pid in pids:
        # A backend may end between being listed and being read; it is left out of this reading.
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        total = 0.0
        for task in tasks:
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        seconds[pid] = total
    return seconds


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings; a process that began meanwhile (a new backend) counts whole."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def server_pids(server) -> list[int]:
    """A PostgreSQL server's processes: its postmaster and every process it started."""
    try:
        postmaster = int((server.directory / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return []
    return [postmaster, *(int(pid) for pid in children)]


class Topology:
    def __init__(self, folder: Path, args) -> None:
        self.folder, self.args = folder, args
        self.processes: list[subprocess.Popen] = []
        self.network = Network()
        self.cluster = LocalCluster(standbys=1, synchronous=True, host=BRIDGE_IP, network=NETWORK)
        self.redis_port = free_port()
        self.start(["redis-server", "--bind", BRIDGE_IP, "--port", str(self.redis_port), "--save", "",
                    "--appendonly", "no", "--protected-mode", "no"], "redis")
        primary, standby = self.cluster.primary, self.cluster.standbys[0]
        self.database_url = (f"postgresql://postgres@{BRIDGE_IP}:{primary.port},{BRIDGE_IP}:{standby.port}/postgres"
                             "?target_session_attrs=read-write")
        self.env = {
            **os.environ, "FOOTFALL_DATABASE_URL": self.database_url,
            "FOOTFALL_DATABASE_REPLICA_URLS": f"postgresql://postgres@{BRIDGE_IP}:{standby.port}/postgres",
            "FOOTFALL_REDIS_URL": f"redis://{BRIDGE_IP}:{self.redis_port}/0", "FOOTFALL_RATE_LIMIT": "0",
            "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
            "FOOTFALL_WEBHOOK_RETRY_SCHEDULE": ",".join(["0"] + ["1"] * 30),
            "FOOTFALL_IDEMPOTENCY_LOCK_SECONDS": "2", "FOOTFALL_DATABASE_POOL_SIZE": "10",
        }
        asyncio.run(self.cluster.wait_streaming())
        self.tenant = asyncio.run(make_tenant_at(self.database_url))
        self.apps = {name: self.start(["ip", "netns", "exec", name, sys.executable, "-m", "footfall", "serve",
                                       "--host", HOSTS[name], "--port", str(APP_PORT), "--no-worker"], name)
                     for name in ("ff-app1", "ff-app2")}
        self.worker = self.start(["ip", "netns", "exec", "ff-worker", sys.executable, "-m", "footfall", "worker"],
                                 "ff-worker")
        # A third app process, on the first app host, reaching the primary through PgBouncer's
        # transaction pooling (8 server connections for its 10).
        self.bouncer = LocalPgBouncer(primary, self.cluster.root, server_connections=8, host=BRIDGE_IP)
        self.bounced = self.start(["ip", "netns", "exec", "ff-app1", sys.executable, "-m", "footfall", "serve",
                                   "--host", HOSTS["ff-app1"], "--port", str(BOUNCED_PORT), "--no-worker"],
                                  "ff-app1-pgbouncer",
                                  FOOTFALL_DATABASE_URL=self.bouncer.url(), FOOTFALL_DATABASE_STATEMENT_CACHE_SIZE="0",
                                  FOOTFALL_DATABASE_REPLICA_URLS="")
        for name in self.apps:
            self.wait(f"http://{HOSTS[name]}:{APP_PORT}/healthz")
        self.wait(f"http://{HOSTS['ff-app1']}:{BOUNCED_PORT}/healthz")
        self.haproxy_one, self.haproxy_two, self.haproxy_bouncer = free_port(), free_port(), free_port()
        config = folder / "haproxy.cfg"
        config.write_text(
            "global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n"
            "  timeout server 30s\n  option redispatch\n  retries 2\n"
            f"frontend one\n  bind 127.0.0.1:{self.haproxy_one}\n  default_backend one\n"
            f"frontend two\n  bind 127.0.0.1:{self.haproxy_two}\n  default_backend two\n"
            f"frontend bouncer\n  bind 127.0.0.1:{self.haproxy_bouncer}\n  default_backend bouncer\n"
            f"backend bouncer\n  option httpchk GET /healthz\n"
            f"  server app1 {HOSTS['ff-app1']}:{BOUNCED_PORT} check inter 1s\n"
            f"backend one\n  option httpchk GET /healthz\n  server app1 {HOSTS['ff-app1']}:{APP_PORT} check inter 1s\n"
            f"backend two\n  balance roundrobin\n  option httpchk GET /healthz\n"
            f"  server app1 {HOSTS['ff-app1']}:{APP_PORT} check inter 1s\n"
            f"  server app2 {HOSTS['ff-app2']}:{APP_PORT} check inter 1s\n")
        self.start(["haproxy", "-db", "-f", str(config)], "haproxy")
        self.wait(f"http://127.0.0.1:{self.haproxy_two}/healthz")

    def start(self, command: list[str], name: str, **env: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "a")
        process = subprocess.Popen(command, env={**getattr(self, "env", os.environ), **env}, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    @staticmethod
    def wait(url: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not answer")

    def app_pids(self) -> list[int]:
        """The footfall serve processes in the app namespaces (`ip netns exec` runs them in its place)."""
        pids = []
        for process in [*self.apps.values(), self.bounced]:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            pids += [process.pid, *(int(pid) for pid in children.read_text().split())] if children.exists() else []
        return pids

    def close(self) -> None:
        if getattr(self, "bouncer", None) is not None:
            self.bouncer.close()
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.cluster.close()
        Network.down()


async def standby_commits(topology: Topology) -> int:
    connection = await asyncpg.connect(topology.cluster.standbys[0].url)
    try:
        return int(await connection.fetchval("SELECT sum(xact_commit) FROM pg_stat_database"))
    finally:
        await connection.close()


async def wal_position(topology: Topology) -> int:
    connection = await asyncpg.connect(topology.cluster.primary.url)
    try:
        return int(await connection.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
    finally:
        await connection.close()


async def replay_lag(topology: Topology, seconds: float) -> dict:
    """The standby's replay lag, sampled every 0.1 s for `seconds`, as the primary reports it."""
    connection = await asyncpg.connect(topology.cluster.primary.url)
    samples_ms, behind = [], []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            row = await connection.fetchrow(
                "SELECT extract(epoch FROM replay_lag) * 1000 AS lag_ms, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS behind FROM pg_stat_replication")
            if row is not None:
                samples_ms.append(row["lag_ms"] or 0.0)
                behind.append(int(row["behind"] or 0))
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    ordered = sorted(samples_ms) or [0.0]
    return {"p50_ms": round(float(ordered[len(ordered) // 2]), 2), "max_ms": round(float(ordered[-1]), 2),
            "max_bytes_behind": max(behind, default=0)}


async def analyze(topology: Topology) -> None:
    """Fresh planner statistics on the primary (replayed to the standby), as autovacuum keeps them."""
    connection = await asyncpg.connect(topology.cluster.primary.url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def fill(topology: Topology, visits: int) -> list[str]:
    """The account's history before measuring: `visits` visits through POST /visits/batch, spread over
    visits/100 contacts as real traffic is (all on one contact, show slowed down after the creates:
    docs/scaling.md). The contacts' uuids."""
    tenant = topology.tenant
    contacts = max(10, visits // 100)
    with httpx.Client(base_url=f"http://127.0.0.1:{topology.haproxy_two}{API_PREFIX}", headers=tenant.headers,
                      timeout=60) as client:
        for start in range(0, visits, 1000):
            batch = [{"contact_email": f"c{n % contacts}@cluster.example", "shop_uuid": tenant.shop_uuid,
                      "source": "Kiosk", "external_id": f"fill-{n}"} for n in range(start, min(visits, start + 1000))]
            client.post("/visits/batch", json={"visits": batch}).raise_for_status()
        made = client.get("/contacts", params={"limit": 100}).json()["data"]
    asyncio.run(analyze(topology))
    return [contact["uuid"] for contact in made]


def database_pids(topology: Topology) -> list[int]:
    return server_pids(topology.cluster.primary) + server_pids(topology.cluster.standbys[0])


def measure_scale(topology: Topology, args) -> dict:
    tenant = topology.tenant
    contacts = fill(topology, args.history)
    # Reads by a token that writes nothing, as a dashboard's: a writer's own reads go to the primary
    # until the replica has its writes.
    reader = subprocess.run([sys.executable, "-m", "footfall", "tokens", "create", "--account", tenant.account_uuid,
                             "--read-only", "--database-url", topology.database_url], capture_output=True, text=True,
                            check=True)
    read_headers = {"Authorization": f"Bearer {json.loads(reader.stdout)['token']}"}
    visit = httpx.get(f"http://127.0.0.1:{topology.haproxy_two}{API_PREFIX}/visits", headers=tenant.headers,
                      params={"limit": 1}).json()["data"][0]["uuid"]
    results: dict = {}
    bodies = [{"contact_uuid": contact, "shop_uuid": tenant.shop_uuid, "source": "Kiosk"} for contact in contacts]
    # Reads on both setups first, then writes, then show again: what a burst of writes leaves behind.
    setups = (("1 app host", topology.haproxy_one), ("2 app hosts", topology.haproxy_two),
              ("1 app host, PgBouncer", topology.haproxy_bouncer))
    runs = [(hosts, port, endpoint) for endpoint in ("show", "list", "create") for hosts, port in setups]
    runs.append(("2 app hosts", topology.haproxy_two, "show after the creates"))
    for hosts, port, endpoint in runs:
        base = f"http://127.0.0.1:{port}{API_PREFIX}"
        url, script, headers = {
            "show": (f"{base}/visits/{visit}", lua("GET"), read_headers),
            "list": (f"{base}/visits", lua("GET"), read_headers),
            "create": (f"{base}/visits", lua_rotating("POST", [f"{API_PREFIX}/visits"], bodies), tenant.headers),
            "show after the creates": (f"{base}/visits/{visit}", lua("GET"), read_headers),
        }[endpoint]
        before_app, before_db = cpu_seconds(topology.app_pids()), cpu_seconds(database_pids(topology))
        commits_before = asyncio.run(standby_commits(topology))
        lag: dict = {}
        # Bind this run's dict: the thread is started and joined within the iteration.
        sampler = threading.Thread(target=lambda lag=lag: lag.update(asyncio.run(replay_lag(topology, args.seconds))))
        wal_before = asyncio.run(wal_position(topology))
        if endpoint == "create":
            sampler.start()
        result = wrk(url, script, args.concurrency, args.seconds, headers)
        wal_written = asyncio.run(wal_position(topology)) - wal_before
        requests = max(1, result["rps"] * args.seconds)
        result["app_cpu_ms_per_request"] = round(
            cpu_since(before_app, cpu_seconds(topology.app_pids())) * 1000 / requests, 3)
        after_db = cpu_seconds(database_pids(topology))
        result["db_cpu_ms_per_request"] = round(cpu_since(before_db, after_db) * 1000 / requests, 3)
        if endpoint == "create":
            sampler.join()
            result["replay_lag"] = lag
            result["wal_bytes_per_request"] = round(wal_written / requests)
            asyncio.run(analyze(topology))
        else:
            served = asyncio.run(standby_commits(topology)) - commits_before
            result["replica_share"] = round(min(1.0, served / requests), 2)
        results.setdefault(hosts, {})[endpoint] = result
        print(f"  {hosts:11} {endpoint:6} {result}", file=sys.stderr)
    return results


def acknowledged(report: Report) -> int:
    return report.answers.get("200", 0) + report.answers.get("201", 0)


async def measure_failover(topology: Topology, args) -> Report:
    """The crash test's clients through HAProxy; the primary killed and its standby promoted."""
    report = Report("postgresql (primary + synchronous standby)", args.clients, args.visits,
                    visits_expected=args.clients * args.visits)
    started = time.monotonic()
    deadline = started + 300
    base = f"http://127.0.0.1:{topology.haproxy_two}"
    with Receiver(host=BRIDGE_IP) as receiver:
        async with httpx.AsyncClient(base_url=f"{base}{API_PREFIX}", headers=topology.tenant.headers) as api:
            (await api.post("/webhook-subscriptions", json={
                "name": "cluster", "event_type": "visit_created", "url": receiver.url("/cluster")})).raise_for_status()
        writers = asyncio.gather(*(retrying_client(n, args.visits, base, topology.tenant, report, deadline)
                                   for n in range(args.clients)))
        # The primary dies once a third of the visits are acknowledged, with requests in flight; the
        # clients go on meanwhile (the servers are stopped and promoted from threads).
        while acknowledged(report) < report.visits_expected / 3 and not writers.done():
            await asyncio.sleep(0.05)
        await asyncio.to_thread(topology.cluster.primary.stop, "immediate")
        report.kills = 1
        await asyncio.sleep(1)
        await asyncio.to_thread(topology.cluster.standbys[0].promote)
        await writers
        expected = external_ids(args.clients, args.visits)
        received = await delivered(receiver, "/cluster", expected, deadline)
        async with httpx.AsyncClient(base_url=f"{base}{API_PREFIX}", headers=topology.tenant.headers) as api:
            stored = await stored_per_external_id(api)
    stored = {key: count for key, count in stored.items() if key and key.startswith("crash-")}
    return report.tally(expected, stored, received, started)


def markdown(scale: dict, failover: Report, args) -> str:
    lines = [f"Each run {args.seconds:g} s at {args.concurrency} connections through HAProxy, after {args.history:,} "
             "visits; reads by a token that writes nothing.", "",
             "| app hosts | endpoint | rps | p50 ms | p99 ms | errors | app CPU ms/request | "
             "PostgreSQL CPU ms/request | reads served by the replica |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for hosts, endpoints in scale.items():
        for endpoint, r in endpoints.items():
            share = f"{r['replica_share']:.0%}" if "replica_share" in r else "-"
            lines.append(f"| {hosts} | {endpoint} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                         f"{r['errors']} | {r['app_cpu_ms_per_request']} | {r['db_cpu_ms_per_request']} | {share} |")
    for hosts, endpoints in scale.items():
        lag = endpoints["create"]["replay_lag"]
        lines.append(f"\nStandby replay lag under the creates ({hosts}): p50 {lag['p50_ms']} ms, "
                     f"max {lag['max_ms']} ms, at most {lag['max_bytes_behind']:,} bytes of WAL behind; "
                     f"{endpoints['create']['wal_bytes_per_request']:,} bytes of WAL a create.")
    lines += ["", "| failover | |", "|---|---:|"]
    for name in ("clients", "visits_per_client", "requests_sent", "retries", "visits_expected", "visits_stored",
                 "lost", "duplicated", "events_missing", "seconds"):
        lines.append(f"| {name.replace('_', ' ')} | {getattr(failover, name)} |")
    lines.append(f"| answers | {', '.join(f'{k}: {v}' for k, v in sorted(failover.answers.items()))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5, help="each wrk run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--history", type=int, default=20000, help="visits made before measuring")
    parser.add_argument("--clients", type=int, default=8, help="failover: clients creating visits")
    parser.add_argument("--visits", type=int, default=60, help="failover: visits per client")
    parser.add_argument("--markdown", default=None, help="write the figures as Markdown here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/cluster.py needs root: it makes network namespaces")
    for program in ("ip", "haproxy", "redis-server", "wrk"):
        if not shutil.which(program):
            sys.exit(f"bench/cluster.py needs {program} (apt-get install iproute2 haproxy redis-server wrk)")
    with tempfile.TemporaryDirectory() as folder:
        topology = Topology(Path(folder), args)
        try:
            scale = measure_scale(topology, args)
            failover = asyncio.run(measure_failover(topology, args))
        finally:
            topology.close()
    text = markdown(scale, failover, args)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    errors = sum(r["errors"] for endpoints in scale.values() for r in endpoints.values())
    print("OK: nothing lost, duplicated or missing" if failover.ok else "FAILED", f"({errors} errors under load)")
    sys.exit(0 if failover.ok and errors == 0 else 1)


if __name__ == "__main__":
    main()
