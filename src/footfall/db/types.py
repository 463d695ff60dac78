"""Column types every statement may use: each runs the same on PostgreSQL (asyncpg) and SQLite (sqlite3)."""

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Integer, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime


def sqlite_text(moment: datetime) -> str:
    """A time as SQLite keeps it: SQLAlchemy's storage format, "2024-05-01 20:00:00.000000" in UTC
    (fixed width, so text order is time order)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back aware UTC datetimes, also on SQLite which keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], datetime | str | None] | None:
        if dialect.name == "postgresql":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            return None if value is None else sqlite_text(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[str | None], datetime | None] | None:
        if dialect.name == "postgresql":
            return None  # asyncpg hands timestamptz back as aware UTC datetimes already
        # SQLite keeps SQLAlchemy's "2024-05-01 20:00:00.000000" (UTC); fromisoformat reads it in C,
        # with the offset appended, to an aware datetime whose tzinfo is datetime.UTC itself.
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            return None if value is None else parse(value + "+00:00")

        return process


# BigInteger primary keys that are still INTEGER PRIMARY KEY (rowid aliases) on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
