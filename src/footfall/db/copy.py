"""What an export written by PostgreSQL itself (COPY) is made of: constants written into the statement
(COPY takes no parameters of its own), times in the API's format, and NDJSON lines with the escaping
orjson does, so a chunk copied out is byte for byte what Python would render (the exports' tests hold
both to one expectation)."""

import json
from typing import Any

from sqlalchemy import String, cast, func, literal_column


def quoted(constant: str) -> Any:
    """A string constant written into the statement."""
    return literal_column("'" + constant.replace("'", "''") + "'", String)


def iso8601(column: Any) -> Any:
    """A time as the API writes it: UTC, whole seconds, "+00:00"; NULL stays NULL."""
    return func.to_char(func.timezone(quoted("UTC"), column), quoted('YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                        type_=String)


def ndjson_line(fields: dict[str, Any], *, as_json: tuple[str, ...]) -> Any:
    """One JSON object a row, its keys in the order given: the fields named in `as_json` (free text,
    numbers) written by to_json, the others (uuids and times, which need no escaping) quoted as they
    are; a NULL is null."""
    line = quoted("{")
    for n, (name, value) in enumerate(fields.items()):
        key = ("," if n else "") + json.dumps(name) + ":"
        text = cast(func.to_json(value), String) if name in as_json else quoted('"') + value + quoted('"')
        line = line + quoted(key) + func.coalesce(text, quoted("null"))
    return line + quoted("}")


async def copy_out(tx: Any, statement: Any, params: dict[str, Any], format: str) -> tuple[int, bytes]:
    """The statement's rows as an export writes them in `format` ("csv", or "ndjson": a row a line):
    (how many, the bytes). PostgreSQL only."""
    from footfall.db.postgres import PostgresTx

    if not isinstance(tx, PostgresTx):
        raise TypeError("a COPY export runs on PostgreSQL only")
    if format == "csv":
        return await tx.copy_out(statement, params, format="csv")
    copied, data = await tx.copy_out(statement, params, format="text")
    # COPY's text format doubles each backslash, and escapes only control characters besides,
    # which a JSON line never holds raw: undoubling gives the lines back as written.
    return copied, data.replace(b"\\\\", b"\\")
