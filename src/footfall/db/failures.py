"""The errors a database that is missing, down or refusing raises, as the callers catch them."""

import sqlite3

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

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
