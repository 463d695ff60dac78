"""How long an admin command takes, start to end: `footfall status` (and `footfall accounts list`) on
a database whose schema is at the newest revision, against the interpreter starting and doing nothing.

    python bench/cli_startup.py [--database-url sqlite:///... | postgresql://...] [--runs 15]
                                [--before-src PATH] [--json PATH]

Each command runs --runs times as a new process (`python -m footfall ...`), in turns with the others
so that a busy moment of the machine falls on all of them alike; the minimum and the median are
reported, each also as a multiple of the bare interpreter's (`python -c pass`, the floor).
`--before-src` runs the same commands with another checkout's `src` first on the path, side by side,
for a before-and-after comparison: `PATH/footfall` is then the footfall imported.

A SQLite database is a new file in a temporary directory; a PostgreSQL URL names the server, on which
a database of the bench's own is created and dropped afterwards. Each is migrated once before the
runs. Local only; bounded by --runs.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

COMMANDS = {"status": ["status"], "accounts list": ["accounts", "list"]}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(database_url: str, runs: int, before_src: str | None) -> dict[str, dict[str, float]]:
    plain = {**os.environ, "FOOTFALL_LOG_FORMAT": "json"}
    plain.pop("PYTHONPATH", None)
    variants: dict[str, tuple[list[str], dict[str, str]]] = {"floor (python -c pass)": ([sys.executable, "-c", "pass"],
                                                                                         plain)}
    checkouts = {"": plain}
    if before_src:
        checkouts = {"before: ": {**plain, "PYTHONPATH": before_src}, "after: ": plain}
    for prefix, env in checkouts.items():
        for name, args in COMMANDS.items():
            variants[f"{prefix}{name}"] = ([sys.executable, "-m", "footfall", *args, "--database-url", database_url],
                                           env)
    subprocess.run([sys.executable, "-m", "footfall", "migrate", "--database-url", database_url], env=plain,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for command, env in variants.values():  # once unmeasured: the files in the page cache, .pyc written
        timed(command, env)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, (command, env) in variants.items():
            times[name].append(timed(command, env))
    floor = min(times["floor (python -c pass)"])
    return {name: {"min_s": round(min(values), 3), "median_s": round(statistics.median(values), 3),
                   "min_over_floor": round(min(values) / floor, 1)}
            for name, values in times.items()}


async def own_database(url: str) -> tuple[str, str]:
    name = f"footfall_cli_startup_{os.getpid()}"
    parsed = make_url(url).set(drivername="postgresql")
    admin = await asyncpg.connect(parsed.render_as_string(hide_password=False))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return parsed.set(database=name).render_as_string(hide_password=False), name


async def drop_database(url: str, name: str) -> None:
    admin = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", action="append", default=None,
                        help="sqlite:///... (a new file is used) or a PostgreSQL server's URL (repeatable)")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--before-src", default=None, help="another checkout's src directory, measured beside")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    before_src = str(Path(args.before_src).resolve()) if args.before_src else None
    report = {}
    with tempfile.TemporaryDirectory() as folder:
        for url in args.database_url or ["sqlite:///"]:
            backend = make_url(url).get_backend_name()
            dropped = None
            database_url = f"sqlite:///{folder}/cli-startup.db"
            if backend != "sqlite":
                database_url, dropped = asyncio.run(own_database(url))
            try:
                report[backend] = measure(database_url, args.runs, before_src)
            finally:
                if dropped:
                    asyncio.run(drop_database(url, dropped))
            print(f"{backend}, {args.runs} runs each:")
            for name, figures in report[backend].items():
                print(f"  {name:32} min {figures['min_s']:6.3f} s  median {figures['median_s']:6.3f} s  "
                      f"min/floor {figures['min_over_floor']:5.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
