"""Fairness: one account's long read against another account's short requests, on one server.

    apt-get install wrk
    python bench/fairness.py [--database-url sqlite:///fairness.db] [--visits 300000]
                             [--heavy stats-hour|stats-day|export] [--clients 32] [--seconds 4]
                             [--rounds 3] [--json PATH]

Account A holds --visits visits (made once through `footfall visits import` and kept, with A's and
B's tokens in a file beside the database, for the next run); account B has a shop. One `footfall
serve` (no webhook worker, no rate limit) serves both. wrk sends B's `GET /shops` from --clients
connections for --seconds, first alone, then while A's long read runs: A's stats of 89 days by hour
(`stats-hour`, the most buckets a request may ask for) or of its whole history by day (`stats-day`),
each round in a time zone not asked for before so that the server's stats cache has nothing kept,
or A's whole export as NDJSON (`export`). Each round reports B's requests, median, p99 and max
latency alone and during, and how long A's read took, which must outlast the measurement (the
round says so when it did not).

Before and after a change, side by side: `PYTHONPATH=/path/to/before/src python bench/fairness.py ...`
serves with that checkout's footfall (the server inherits the environment), then the same without.

Loopback only; bounded in time (wrk runs --seconds a phase); stops by itself.
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dataset import HISTORY_START, import_file, make_account, write_visits_csv  # noqa: E402
from footfall.app import API_PREFIX  # noqa: E402
from footfall.testing.serving import running_server  # noqa: E402
from footfall.testing.tenants import make_tenant_at  # noqa: E402

SERVER_ENV = {"FOOTFALL_RATE_LIMIT": "0", "FOOTFALL_LOG_LEVEL": "warning"}
# A new zone each round: the stats cache keys on it, so every round counts in full.
ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Europe/London",
         "America/Chicago", "Asia/Kolkata", "Africa/Cairo", "America/Sao_Paulo"]


STATS = {
    # The whole history by day.
    "stats-day": {"interval": "day"},
    # 89 days by hour: 2,136 buckets, the most the stats allow (service.MAX_BUCKETS).
    "stats-hour": {"interval": "hour", "starts_at[gte]": HISTORY_START.isoformat(),
                   "starts_at[lt]": (HISTORY_START + timedelta(days=89)).isoformat()},
}


def state_path(database_url: str) -> Path:
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        return Path(f"{parsed.database}.fairness.json")
    return Path(tempfile.gettempdir()) / f"footfall-fairness-{parsed.database}.json"


def prepare(database_url: str, visits: int) -> dict:
    """A's token (with its visits) and B's, made at the first run and read back after."""
    path = state_path(database_url)
    if path.exists():
        state = json.loads(path.read_text())
        if state["visits"] == visits:
            return state
        sys.exit(f"{path} describes {state['visits']} visits; use another database for {visits}")
    made = asyncio.run(make_account(database_url, contacts=max(10, visits // 100), shops=20))
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "visits.csv"
        write_visits_csv(csv_path, visits, made["contacts"], made["shops"])
        imported = import_file(database_url, made["account_uuid"], csv_path)
        print(f"imported {visits} visits: {imported}", file=sys.stderr)
    other = asyncio.run(make_tenant_at(database_url))
    state = {"visits": visits, "heavy_token": made["token"], "short_token": other.token}
    path.write_text(json.dumps(state))
    return state


# wrk's own figures (its latencies are in microseconds), printed as a JSON line at the end of its run.
WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'FAIRNESS {"requests": %d, "errors": %d, "median_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\\n',
    summary.requests, errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def short_requests(base: str, token: str, args) -> dict:
    """B's GET /shops from --clients connections for --seconds (wrk): requests, errors, median, p99, max."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_REPORT)
        script.flush()
        output = subprocess.run(
            ["wrk", "-t1", f"-c{args.clients}", f"-d{args.seconds}s", "--timeout", "30s", "-s", script.name,
             "-H", f"Authorization: Bearer {token}", f"{base}{API_PREFIX}/shops"],
            capture_output=True, text=True, check=True, timeout=args.seconds + 60).stdout
    return json.loads(output.split("FAIRNESS ", 1)[1].splitlines()[0])


def heavy_read(base: str, token: str, kind: str, zone: str) -> float:
    """A's long read, to the end of its answer; its seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    if kind.startswith("stats"):
        httpx.get(f"{base}{API_PREFIX}/visits/stats", params=STATS[kind] | {"timezone": zone},
                  headers=headers, timeout=600).raise_for_status()
    else:
        with httpx.stream("GET", f"{base}{API_PREFIX}/visits/export", params={"format": "ndjson"},
                          headers=headers, timeout=600) as response:
            response.raise_for_status()
            for _ in response.iter_raw():
                pass
    return time.perf_counter() - started


def run_round(base: str, state: dict, args, zone: str) -> dict:
    alone = short_requests(base, state["short_token"], args)
    done, seconds = threading.Event(), []

    def heavy() -> None:
        try:
            seconds.append(heavy_read(base, state["heavy_token"], args.heavy, zone))
        finally:
            done.set()

    thread = threading.Thread(target=heavy)
    thread.start()
    time.sleep(0.3)  # the long read under way
    during = short_requests(base, state["short_token"], args)
    outlasted = not done.is_set()
    thread.join()
    result = {"zone": zone, "heavy_seconds": round(seconds[0], 2), "alone": alone, "during": during,
              "heavy_outlasted_measurement": outlasted}
    print(f"  {args.heavy} {result['heavy_seconds']} s; GET /shops alone {alone}; during {during}"
          + ("" if outlasted else " (the long read ended before the measurement did: give it more visits)"),
          file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="sqlite:///fairness.db")
    parser.add_argument("--visits", type=int, default=300_000)
    parser.add_argument("--heavy", choices=(*STATS, "export"), default="stats-hour")
    parser.add_argument("--clients", type=int, default=32, help="B's connections (wrk)")
    parser.add_argument("--seconds", type=int, default=4, help="how long B's requests are measured, alone and during")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if args.rounds > len(ZONES):
        parser.error(f"--rounds: at most {len(ZONES)}")
    state = prepare(args.database_url, args.visits)
    with tempfile.TemporaryDirectory() as folder, running_server(
            args.database_url, "--no-worker", env=SERVER_ENV, log_path=Path(folder) / "serve.log") as base:
        rounds = [run_round(base, state, args, zone) for zone in ZONES[:args.rounds]]
    summary = {"database": make_url(args.database_url).get_backend_name(), "visits": args.visits,
               "heavy": args.heavy, "clients": args.clients, "rounds": rounds}
    for phase in ("alone", "during"):  # the rounds' median of medians, and the worst of all
        summary[f"{phase}_median_ms"] = statistics.median(r[phase]["median_ms"] for r in rounds)
        summary[f"{phase}_p99_ms"] = statistics.median(r[phase]["p99_ms"] for r in rounds)
        summary[f"{phase}_max_ms"] = max(r[phase]["max_ms"] for r in rounds)
        summary[f"{phase}_rps"] = round(statistics.median(r[phase]["requests"] for r in rounds) / args.seconds)
    print(json.dumps(summary if args.json is None else {k: v for k, v in summary.items() if k != "rounds"}))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
