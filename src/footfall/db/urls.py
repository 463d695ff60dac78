"""Database URLs as users write them: sqlite:///PATH or postgresql://USER@HOST/DB (postgres:// too)."""

from sqlalchemy.engine import make_url


def backend(url: str) -> str:
    """"sqlite" or "postgresql"; ValueError for anything else."""
    name = make_url(url).get_backend_name()
    if name == "sqlite":
        return "sqlite"
    if name in ("postgresql", "postgres"):
        return "postgresql"
    raise ValueError(f"unsupported database URL {make_url(url).render_as_string()!r}: use sqlite:/// or postgresql://")


def sqlite_path(url: str) -> str:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise ValueError("SQLite needs a file: sqlite:///PATH")
    return path
