"""Database URLs as users write them: sqlite:///PATH, or postgresql://USER@HOST/DB (postgres:// too) in
libpq's form, which may name several hosts for failover:
postgresql://USER@HOST1:5432,HOST2:5433/DB?target_session_attrs=read-write."""

from urllib.parse import unquote, urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def backend(url: str) -> str:
    """"sqlite" or "postgresql"; ValueError for anything else."""
    scheme = _scheme(url)
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme in POSTGRES_SCHEMES:
        return "postgresql"
    raise ValueError(f"unsupported database URL {scheme + '://...'!r}: use sqlite:/// or postgresql://")


def postgres_dsn(url: str) -> str:
    """The URL as asyncpg reads it (libpq's form, every host kept)."""
    return "postgresql://" + url.split("://", 1)[1]


def hosts(url: str) -> list[str]:
    """A PostgreSQL URL's host:port pairs, without user or password (what logs and /healthz show)."""
    netloc = urlsplit(postgres_dsn(url)).netloc.rpartition("@")[2]
    return [host if ":" in host else f"{host}:5432" for host in netloc.split(",")]


def sqlite_path(url: str) -> str:
    """The file of sqlite:///PATH (relative) or sqlite:////PATH (absolute), as SQLAlchemy reads it."""
    path = unquote(url.split("://", 1)[-1].split("?", 1)[0].removeprefix("/"))
    if not path or path == ":memory:":
        raise ValueError("SQLite needs a file: sqlite:///PATH")
    return path
