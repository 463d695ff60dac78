"""The one way into the database: open_database() gives a Database, whose transactions (Tx) run the
prebuilt Statements of every repository; migrate() brings the schema up to date."""

import sqlite3

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from footfall.db.migrate import migrate
from footfall.db.statement import (
    Statement,
    StatementError,
    binds,
    contains,
    limit,
    listed_ids,
    paged,
    per_dialect,
    upsert,
)
from footfall.db.tx import ConstraintViolation, Database, Tx
from footfall.db.urls import backend, sqlite_path

# What a database that is missing, down or refusing raises: from the drivers, or from the migrations.
DATABASE_ERRORS = (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error)
# The database cannot be reached, or the server reached cannot take this request now: down, starting,
# shutting down, a standby (during a failover, until the new primary is found), or no host of a
# multi-host URL accepting writes. A request that meets one answers 503, and a retry may succeed.
UNAVAILABLE_ERRORS = (
    ConnectionError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.TargetServerAttributeNotMatched,
)

__all__ = [
    "DATABASE_ERRORS", "UNAVAILABLE_ERRORS", "ConstraintViolation", "Database", "Statement", "StatementError", "Tx",
    "binds", "contains", "limit", "listed_ids", "paged", "per_dialect", "upsert", "migrate", "open_database",
]


def open_database(url: str, *, pool_size: int = 20, statement_cache_size: int = 100) -> Database:
    """PostgreSQL (asyncpg) or SQLite (sqlite3) by the URL; connections open at first use.
    statement_cache_size is asyncpg's per connection (0 behind PgBouncer's transaction pooling)."""
    if backend(url) == "postgresql":
        from footfall.db.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size, statement_cache_size)
    from footfall.db.sqlite import SQLiteDatabase

    return SQLiteDatabase(sqlite_path(url), readers=pool_size)
