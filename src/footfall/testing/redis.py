"""A Redis server of a test run's own, on a loopback port, keeping nothing on disk: for the shared rate
limit and replica positions when no FOOTFALL_TEST_REDIS_URL is given."""

import shutil
import socket
import subprocess
import tempfile
import time

from footfall.testing.serving import free_port, stop

NEEDS = "Redis's server program (redis-server; Debian's redis-server package) is needed"


def can_make_servers() -> bool:
    return shutil.which("redis-server") is not None


class LocalRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="footfall-redis-")
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", self.directory, "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)
