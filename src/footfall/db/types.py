"""Column types every statement may use: each runs the same on PostgreSQL (asyncpg) and SQLite (sqlite3)."""

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Integer, TypeDecorator
from sqlalchemy.types import DateTime


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back aware UTC datetimes, also on SQLite which keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect, coltype):
        # asyncpg hands timestamptz back as aware UTC datetimes already: nothing to do per value.
        return None if dialect.name == "postgresql" else super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BigInteger primary keys that are still INTEGER PRIMARY KEY (rowid aliases) on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
