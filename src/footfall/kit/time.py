"""The clock (UTC) and time formats. Times in: ISO 8601 with any offset, none meaning UTC. Times out:
UTC, whole seconds, "+00:00"."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# The first moment Python knows; asyncpg sends it to PostgreSQL as -infinity, so it is left out.
FIRST_MOMENT = datetime.min.replace(tzinfo=UTC)
OUT_OF_RANGE = "Must be a date and time after 0001-01-01T00:00:00 and before the year 10000, in UTC."


def utcnow() -> datetime:
    return datetime.now(UTC)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Waits `seconds`, or less when `stop` is set meanwhile: a background loop's rest between rounds."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def parse_iso8601(value: object) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and "\x00" not in value:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("Must be an ISO 8601 date and time, e.g. 2024-05-01T20:00:00+00:00.") from None
    else:
        raise ValueError("Must be an ISO 8601 date and time, e.g. 2024-05-01T20:00:00+00:00.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:  # fromisoformat gives UTC itself for +00:00 and Z: the usual case
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise ValueError(OUT_OF_RANGE) from None
    if moment.microsecond:
        moment = moment.replace(microsecond=0)
    if moment == FIRST_MOMENT:  # asyncpg would store it as -infinity
        raise ValueError(OUT_OF_RANGE)
    return moment


def format_iso8601(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


# A request field: any ISO 8601 string, normalised to UTC and whole seconds.
IsoDateTimeIn = Annotated[
    datetime,
    BeforeValidator(parse_iso8601),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2024-05-01T20:00:00+00:00"]}),
]

# A response field, written as Leat writes it: 2024-05-01T20:00:00+00:00.
IsoDateTimeOut = Annotated[
    datetime,
    PlainSerializer(format_iso8601, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2024-05-01T20:00:00+00:00"]}),
]
