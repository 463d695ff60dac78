"""The one way into the database: open_database() gives a Database, whose transactions (Tx) run the
prebuilt Statements of every repository; migrate() brings the schema up to date.

Its names are imported from their modules when first used (PEP 562): `footfall status` reads the
schema's revision and the outbox with the drivers alone, and pays for none of SQLAlchemy."""

import importlib
from typing import TYPE_CHECKING, Any

from footfall.db.urls import backend, sqlite_path

if TYPE_CHECKING:
    from footfall.db.failures import DATABASE_ERRORS, UNAVAILABLE_ERRORS, unreachable
    from footfall.db.migrate import migrate
    from footfall.db.statement import (
        KeyedRows,
        Statement,
        StatementError,
        binds,
        contains,
        earlier_or_later,
        limit,
        listed_ids,
        listed_uuids,
        paged,
        per_dialect,
        upsert,
    )
    from footfall.db.tx import ConstraintViolation, Database, Tx

_WHERE = {
    "DATABASE_ERRORS": "failures", "UNAVAILABLE_ERRORS": "failures", "unreachable": "failures", "migrate": "migrate",
    "KeyedRows": "statement", "Statement": "statement", "StatementError": "statement", "binds": "statement",
    "contains": "statement", "earlier_or_later": "statement",
    "limit": "statement", "listed_ids": "statement", "listed_uuids": "statement",
    "paged": "statement", "per_dialect": "statement",
    "upsert": "statement", "ConstraintViolation": "tx", "Database": "tx", "Tx": "tx",
}

__all__ = [
    "DATABASE_ERRORS", "UNAVAILABLE_ERRORS", "ConstraintViolation", "Database", "KeyedRows", "Statement",
    "StatementError", "Tx", "binds", "contains", "earlier_or_later", "limit", "listed_ids", "listed_uuids", "paged",
    "per_dialect", "upsert", "migrate", "open_database", "unreachable",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'footfall.db' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"footfall.db.{module}"), name)
    globals()[name] = value  # once
    return value


def open_database(url: str, *, pool_size: int = 20, statement_cache_size: int = 100) -> "Database":
    """PostgreSQL (asyncpg) or SQLite (sqlite3) by the URL; connections open at first use.
    statement_cache_size is asyncpg's per connection (0 behind PgBouncer's transaction pooling)."""
    if backend(url) == "postgresql":
        from footfall.db.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size, statement_cache_size)
    from footfall.db.sqlite import SQLiteDatabase

    return SQLiteDatabase(sqlite_path(url), readers=pool_size)
