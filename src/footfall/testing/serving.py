"""Runs the real `footfall` command, as a user would, for CLI and end-to-end tests."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def footfall(*args: str, database_url: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "footfall", *args, "--database-url", database_url],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"footfall {' '.join(args)} failed: {result.stderr}")
    return result


def footfall_json(*args: str, database_url: str) -> dict:
    return json.loads(footfall(*args, database_url=database_url).stdout)


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Asks the process to end (SIGTERM), and kills it when it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(
    database_url: str, *extra: str, env: dict | None = None, log_path: Path | None = None
) -> Iterator[str]:
    """`footfall serve` on a free loopback port; yields its base URL and stops it afterwards. Its
    output is kept at log_path when given."""
    port = free_port()
    # Its output (a log line a request) goes to a file: a pipe nobody reads fills up, and the
    # server then blocks writing its log.
    log = open(log_path, "w+") if log_path is not None else tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "footfall", "serve", "--port", str(port), "--database-url", database_url, *extra],
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"footfall serve exited: {log.read()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("footfall serve did not answer within 60 s")
            time.sleep(0.1)
        yield base_url
    finally:
        stop(process, timeout=30)
        log.close()


def start_worker(database_url: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """`footfall worker` in the background (the caller stops it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "footfall", "worker", "--database-url", database_url, *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
