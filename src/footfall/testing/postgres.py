"""PostgreSQL servers of a test's own, on loopback ports: a primary and its streaming standbys, made
with the server's own tools (initdb, pg_basebackup, pg_ctl), for the replica and failover tests and
bench/cluster.py. The server refuses to run as root, so as root they run as the `postgres` user."""

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from footfall.testing.serving import free_port, stop


def server_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (Debian's /usr/lib/postgresql/N/bin), or None."""
    found = shutil.which("pg_config")
    if found:
        bindir = Path(subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


class LocalServer:
    """One PostgreSQL server in a directory of its own."""

    def __init__(self, bindir: Path, directory: Path, port: int) -> None:
        self.bindir, self.directory, self.port = bindir, directory, port

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_server_user(), str(self.bindir / program), *args], capture_output=True,
                              text=True, timeout=120, check=check)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory), "-l", str(self.directory / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.directory}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.directory), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory), "-w", "-t", "60", "promote")

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.directory), "status", check=False).returncode == 0


class LocalCluster:
    """A primary and `standbys` streaming standbys, synchronous (a commit waits for the first
    standby) when `synchronous`; everything under one temporary directory, removed by close()."""

    def __init__(self, standbys: int = 1, synchronous: bool = False, host: str = "127.0.0.1",
                 network: str | None = None) -> None:
        """`host`: the address the servers listen on besides 127.0.0.1; `network` (a CIDR): clients
        trusted from there too (bench/cluster.py's network namespaces)."""
        self.host, self.network = host, network
        bindir = server_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL's server programs (initdb) are not installed")
        self.root = Path(tempfile.mkdtemp(prefix="footfall-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o700)
        self.primary = LocalServer(bindir, self.root / "primary", free_port())
        self.standbys = [LocalServer(bindir, self.root / f"standby{n}", free_port()) for n in range(standbys)]
        try:
            self._make(synchronous)
        except BaseException:
            self.close()
            raise

    def _make(self, synchronous: bool) -> None:
        primary = self.primary
        primary._run("initdb", "-D", str(primary.directory), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                     "--no-sync")
        settings = [
            f"listen_addresses = '{','.join(dict.fromkeys(['127.0.0.1', self.host]))}'",
            "wal_level = replica", "max_wal_senders = 10", "hot_standby = on",
            "fsync = off", "full_page_writes = off", "wal_keep_size = '256MB'", "max_connections = 200",
            "hot_standby_feedback = on",
        ]
        if synchronous and self.standbys:
            settings.append("synchronous_standby_names = 'standby0'")
        with open(primary.directory / "postgresql.auto.conf", "a") as conf:
            conf.write("\n".join(settings) + "\n")
        with open(primary.directory / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n")
            if self.network:
                hba.write(f"host all all {self.network} trust\n")
        primary.start()
        for n, standby in enumerate(self.standbys):
            standby._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                         "-D", str(standby.directory), "-R", "-X", "stream", "--no-sync",
                         "-d", f"host=127.0.0.1 port={primary.port} user=postgres application_name=standby{n}")
            # A promoted standby has no standby of its own to wait for: it keeps the primary's other settings.
            auto = standby.directory / "postgresql.auto.conf"
            kept = [line for line in auto.read_text().splitlines() if not line.startswith("synchronous_standby_names")]
            auto.write_text("\n".join(kept) + "\n")
            standby.start()

    def database_url(self, *servers: LocalServer, database: str = "postgres", **query: str) -> str:
        """A libpq URL naming several hosts: `postgresql://postgres@h1:p1,h2:p2/db?...`."""
        hosts = ",".join(f"127.0.0.1:{server.port}" for server in servers)
        extra = "&".join(f"{name}={value}" for name, value in query.items())
        return f"postgresql://postgres@{hosts}/{database}" + (f"?{extra}" if extra else "")

    async def wait_streaming(self, seconds: float = 30) -> None:
        """Until every standby streams from the primary."""
        deadline = time.monotonic() + seconds
        connection = await asyncpg.connect(self.primary.url)
        try:
            while time.monotonic() < deadline:
                streaming = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                if streaming >= len(self.standbys):
                    return
                await asyncio.sleep(0.1)
        finally:
            await connection.close()
        raise TimeoutError("the standbys do not stream")

    def close(self) -> None:
        for server in [*self.standbys, self.primary]:
            if (server.directory / "postmaster.pid").exists():
                server.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


NEEDS = "PostgreSQL's server programs (initdb, pg_ctl; Debian's postgresql package) and its postgres user are needed"


def can_make_servers() -> bool:
    """Whether LocalCluster can run here: the server programs, and the user to run them as when root."""
    if server_bin() is None:
        return False
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return os.geteuid() != 0


class LocalPgBouncer:
    """Debian's PgBouncer in transaction pooling, in front of one server, on a loopback port: clients
    share `server_connections` connections to it, a transaction at a time."""

    def __init__(self, server: LocalServer, root: Path, server_connections: int = 3, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, free_port()
        self.directory = root / f"pgbouncer-{self.port}"
        self.directory.mkdir()
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        (self.directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={server.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {host}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {server_connections}\nmax_client_conn = 500\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\npidfile = {self.directory / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self.process = subprocess.Popen([*_as_server_user(), shutil.which("pgbouncer") or "pgbouncer",
                                         str(self.directory / "pgbouncer.ini")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError(f"pgbouncer did not start: {self.log()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        import socket

        with socket.socket() as probe:
            return probe.connect_ex((self.host, self.port)) == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        stop(self.process)
