"""Audiences on PostgreSQL: a page of GET /contacts with audience bounds, and GET /contacts/export.

    python bench/audiences.py [--database-url postgresql://postgres@127.0.0.1/test]
                              [--visits 1000000] [--contacts 100000] [--requests 200]

Makes a fresh database beside the one named (dropped at the end), fills one account with --contacts
contacts, 20 shops and --visits visits through `footfall visits import` (bench/dataset.py: a visit
every 30 s, each to a contact drawn at random), runs VACUUM ANALYZE, starts a real `footfall serve`
and, from one client, measures the p50 and p95 of --requests pages of an audience
(`visit_count[gte]=5&last_visit_at[lt]=...`, the bound placed so about half the contacts with five
visits pass; pages 1 to 5 in turn), of the same audience sorted by -last_visit_at, and of one shop's
audience; then the export of every contact and of the audience, read to the end, in contacts a second.
Prints JSON. Targets at 1,000,000 visits and 100,000 contacts: the page under 50 ms p50, the export at
100,000 contacts a second or more. Loopback only; bounded by --requests; stops by itself.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dataset import HISTORY_START, SECONDS_APART, import_file, make_account, write_visits_csv  # noqa: E402
from bench.run import analyze, drop_database, fresh_database  # noqa: E402
from footfall.app import API_PREFIX  # noqa: E402
from footfall.testing.serving import running_server  # noqa: E402


def timed_pages(base: str, headers: dict, params: list[dict]) -> dict:
    """Each request's time (ms) from one client, after a warm-up of five: p50, p95, and the total."""
    with httpx.Client(base_url=f"{base}{API_PREFIX}", headers=headers, timeout=60) as client:
        for query in params[:5]:
            client.get("/contacts", params=query).raise_for_status()
        times, total = [], None
        for query in params:
            started = time.perf_counter()
            response = client.get("/contacts", params=query)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            total = response.json()["meta"]["total"]
    times.sort()
    return {"requests": len(times), "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2), "total": total}


def timed_export(base: str, headers: dict, params: dict) -> dict:
    """The export read to the end by one client: contacts a second."""
    started, lines = time.monotonic(), 0
    with httpx.stream("GET", f"{base}{API_PREFIX}/contacts/export", params=params, headers=headers,
                      timeout=600) as response:
        response.raise_for_status()
        for data in response.iter_raw():
            lines += data.count(b"\n")
    seconds = time.monotonic() - started
    contacts = lines - (params.get("format") == "csv")  # CSV has a header; the bench's emails hold no line breaks
    return {"contacts": contacts, "seconds": round(seconds, 3), "contacts_per_second": round(contacts / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("FOOTFALL_TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    database_url, name = asyncio.run(fresh_database(args.database_url, args.visits, Path(tempfile.gettempdir())))
    try:
        started = time.monotonic()
        made = asyncio.run(make_account(database_url, contacts=args.contacts, shops=20))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "visits.csv"
            write_visits_csv(path, args.visits, made["contacts"], made["shops"])
            imported = import_file(database_url, made["account_uuid"], path)
        asyncio.run(analyze(database_url))
        loaded = time.monotonic() - started
        print(f"loaded {args.visits} visits over {args.contacts} contacts in {loaded:.1f} s", file=sys.stderr)

        # Starts spread evenly over the history: a bound at 90% of it leaves about half of the
        # contacts with five visits or more (those whose last visit came before it).
        history = timedelta(seconds=args.visits * SECONDS_APART)
        lapsed = (HISTORY_START + history * 0.9).isoformat()
        audience = {"visit_count[gte]": 5, "last_visit_at[lt]": lapsed}
        headers = {"Authorization": f"Bearer {made['token']}", "Accept": "application/json"}
        pages = [{**audience, "page": 1 + n % 5} for n in range(args.requests)]
        report: dict = {"visits": args.visits, "contacts": args.contacts, "import": imported,
                        "load_seconds": round(loaded, 1), "audience": audience}
        # No rate limit: the bench sends more than a token's minute of requests.
        with running_server(database_url, env={"FOOTFALL_RATE_LIMIT": "0"}) as base:
            report["audience_page"] = timed_pages(base, headers, pages)
            report["audience_page_sorted"] = timed_pages(
                base, headers, [{**page, "sort": "-last_visit_at"} for page in pages])
            report["shop_audience_page"] = timed_pages(
                base, headers, [{"shop_uuid": made["shops"][0], "visit_count[gte]": 1, "page": 1 + n % 5}
                                for n in range(max(20, args.requests // 10))])
            report["plain_page"] = timed_pages(base, headers, [{"page": 1 + n % 5} for n in range(args.requests)])
            report["export_all_ndjson"] = timed_export(base, headers, {"format": "ndjson"})
            report["export_all_csv"] = timed_export(base, headers, {"format": "csv"})
            report["export_audience_ndjson"] = timed_export(base, headers, {"format": "ndjson", **audience})
        print(json.dumps(report, indent=2))
    finally:
        if name is not None:
            asyncio.run(drop_database(args.database_url, name))


if __name__ == "__main__":
    main()
