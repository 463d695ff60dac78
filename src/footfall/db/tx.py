"""The one way into the database: a Database hands out transactions (Tx), and every repository runs
its prebuilt Statements on the Tx it is given. Two implementations with one behaviour: PostgreSQL on
asyncpg (db/postgres.py) and SQLite on the sqlite3 module (db/sqlite.py)."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Table

from footfall.db.statement import Statement, StatementError

R = TypeVar("R", bound=tuple)


class ConstraintViolation(Exception):
    """A write the database refused for a unique or foreign key constraint."""


class Tx(ABC):
    """One transaction: prebuilt statements in, records out (read them by field name).

    A write transaction commits when its block ends cleanly and rolls back when it raises; a read
    transaction runs each statement on its own (no BEGIN and COMMIT), unless snapshot() asks for one."""

    dialect: str  # "postgresql" or "sqlite"

    @abstractmethod
    async def fetch(self, statement: Statement[R], params: dict[str, Any] | None = None) -> list[R]:
        ...

    async def fetchrow(self, statement: Statement[R], params: dict[str, Any] | None = None) -> R | None:
        rows = await self.fetch(statement, params)
        return rows[0] if rows else None

    async def fetchval(self, statement: Statement, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = await self.fetchrow(statement, params)
        return None if row is None else row[0]

    async def fetchone(self, statement: Statement[R], params: dict[str, Any] | None = None) -> R:
        """The row of a statement that always gives one (an INSERT ... RETURNING, an aggregate)."""
        row = await self.fetchrow(statement, params)
        if row is None:
            raise StatementError(f"{statement!r} gave no row")
        return row

    @abstractmethod
    async def execute(self, statement: Statement, params: dict[str, Any] | None = None) -> int:
        """Runs a write; returns the number of rows it matched."""

    @abstractmethod
    async def executemany(self, statement: Statement, rows: Sequence[dict[str, Any]]) -> None:
        ...

    @abstractmethod
    async def copy_records(self, table: Table, columns: Sequence[str], records: Sequence[Sequence[Any]]) -> None:
        """Appends records (tuples of the columns named) to a table: COPY on PostgreSQL."""

    @abstractmethod
    async def snapshot(self) -> None:
        """The reads that follow see one snapshot of the database, as a page and its total must agree:
        a read-only REPEATABLE READ transaction on PostgreSQL, a BEGIN on SQLite's reader (a bulk read
        leaves it, for the long-read lane). It costs two round trips on PostgreSQL, so a read asks for
        it only when it runs more than one statement. A write transaction is one already."""

    @abstractmethod
    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """What fails inside is undone alone, and a constraint the database enforces raises
        ConstraintViolation."""


class PoolLoad(NamedTuple):
    in_use: int
    waiting: int


class Database(ABC):
    dialect: str

    @abstractmethod
    def transaction(self, *, write: bool) -> AbstractAsyncContextManager[Tx]:
        """`async with database.transaction(write=...) as tx`."""

    @abstractmethod
    def load(self) -> "PoolLoad":
        """The connections in use now and the transactions waiting for one (the metrics sample it)."""

    @abstractmethod
    async def close(self) -> None:
        ...
