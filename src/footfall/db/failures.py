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


def unreachable(error: BaseException | None) -> bool:
    """Whether an error, or a driver's error it wraps, says that no database answers now (worth
    waiting for), rather than that the one which answered refused what was asked of it."""
    while error is not None:
        if isinstance(error, (OSError, *UNAVAILABLE_ERRORS)):
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False
