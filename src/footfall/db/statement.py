"""Prebuilt statements: a SQLAlchemy Core statement compiled once per dialect, when it is built (at
import), to the SQL text and parameter order that its driver runs, with SQLAlchemy's own type
processors for parameters and results, and a record type that its rows are read into by name.

What a driver could not run as compiled is refused here, at build time, with StatementError:
post-compile parameters (`col.in_([...])` renders `__[POSTCOMPILE_...]`), Python-side column
defaults (SQLAlchemy's execution context runs those, and there is none here), untyped parameters, and
column types outside SUPPORTED_TYPES.
"""

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as pysqlite_dialect
from sqlalchemy.sql import ClauseElement, ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.ddl import ExecutableDDLElement
from sqlalchemy.types import NullType, TypeEngine

from footfall.db.types import UTCDateTime, sqlite_text

DIALECTS = {"postgresql": asyncpg_dialect(), "sqlite": pysqlite_dialect()}
# Types whose values both drivers carry alike, through SQLAlchemy's processors where it has them.
SUPPORTED_TYPES = (Integer, String, Boolean, Uuid, UTCDateTime)

R = TypeVar("R", bound=tuple)
S = TypeVar("S")


class StatementError(TypeError):
    """A statement that a driver cannot run as built."""


@dataclass(frozen=True, slots=True)
class Compiled(Generic[R]):
    """One statement in one dialect: its text, how to make its arguments, how to read its rows."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the driver's positional order
    carried: dict[str, Any]  # values the statement carries itself (status == "ACTIVE")
    bind_processors: dict[str, Any]
    record: type[R] | None
    result_processors: tuple[tuple[int, Any], ...]

    def args(self, params: dict[str, Any] | None) -> list[Any]:
        if self.carried:
            params = {**self.carried, **(params or {})}
        elif params is None:
            params = {}
        processors = self.bind_processors
        return [params[name] if name not in processors else processors[name](params[name]) for name in self.names]

    def read(self, rows: Iterable[Sequence[Any]]) -> list[R]:
        make = self.record._make  # type: ignore[union-attr]
        processors = self.result_processors
        if not processors:
            return [make(row) for row in rows]
        out = []
        for row in rows:
            values = list(row)
            for index, processor in processors:
                values[index] = processor(values[index])
            out.append(make(values))
        return out


class Statement(Generic[R]):
    """A statement built once (at import) for one dialect, and run by that dialect's Tx.

    `record` is the NamedTuple its rows are read into; its fields must be the statement's columns, in
    order. Without one, a NamedTuple of the columns' names is made. `bulk` marks a statement that
    touches any number of rows: on SQLite it runs off the event loop (a single-row one runs on it).
    `no_jit` marks one that PostgreSQL must plan without JIT compiling (fetch runs it in a
    transaction of its own, or a savepoint, with jit off): one whose cost estimate, many small steps
    each guessed large, sets off compiling that takes longer than the statement runs.
    """

    def __init__(
        self,
        query: ClauseElement,
        record: type[R] | None = None,
        *,
        dialect: str,
        bulk: bool = False,
        no_jit: bool = False,
    ) -> None:
        self.query = query
        self.bulk = bulk
        self.no_jit = no_jit
        columns = [] if isinstance(query, ExecutableDDLElement) else list(getattr(query, "exported_columns", []))
        if columns:
            keys = tuple(column.key for column in columns)
            if record is None:
                # A NamedTuple whose fields are known only at run time.
                record = NamedTuple("Row", [(key, Any) for key in keys])  # type: ignore[misc, no-redef]
            elif (fields := record._fields) != keys:  # type: ignore[attr-defined]  # NamedTuple; tuple lacks _fields
                raise StatementError(f"{record.__name__} has fields {fields}, the statement columns {keys}")
        for column in columns:
            _check_type(column.type, f"column {column.key}")
        self.record = record
        self.dialect = dialect
        self.compiled: Compiled[R] = _compile(query, dialect, record, columns)

    def __repr__(self) -> str:
        return f"Statement({self.dialect}: {' '.join(self.compiled.sql.split())[:80]!r})"


def _check_type(type_: TypeEngine, what: str) -> None:
    if isinstance(type_, NullType) or not isinstance(type_, SUPPORTED_TYPES):
        raise StatementError(f"{what}: type {type_!r} is not one both drivers run alike (give it a type)")


def _compile(
    query: ClauseElement, name: str, record: type[R] | None, columns: Sequence[ColumnElement[Any]]
) -> Compiled[R]:
    dialect = DIALECTS[name]
    if isinstance(query, ExecutableDDLElement):
        return Compiled(query.compile(dialect=dialect).string, (), {}, {}, None, ())
    # Any statement but DDL compiles with the dialect's SQL compiler, which alone has positiontup and binds.
    compiled = typing.cast(SQLCompiler, query.compile(dialect=dialect, column_keys=[]))
    sql = compiled.string
    if "__[POSTCOMPILE_" in sql:
        raise StatementError(f"post-compile parameters (IN lists, literal_execute) cannot be prebuilt: {sql}")
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        raise StatementError(f"a Python-side column default would not run: give every value: {sql}")
    names = tuple(compiled.positiontup or ())
    carried: dict[str, Any] = {}
    processors: dict[str, Any] = {}
    for bind_name in names:
        bind = compiled.binds[bind_name]
        if bind.callable is not None:
            raise StatementError(f"parameter {bind_name}: a callable value would not run: {sql}")
        _check_type(bind.type, f"parameter {bind_name}")
        if not bind.required:
            carried[bind_name] = bind.value
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[bind_name] = processor
    result_processors = tuple(
        (index, processor)
        for index, column in enumerate(columns)
        if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    )
    return Compiled(sql, names, carried, processors, record, result_processors)


# Every structure per_dialect built, by the module that built it, so that tests/db/test_parity.py can
# run each of Footfall's statements on both databases and fail for one that did not.
_BUILT: list[tuple[str, Any]] = []


def per_dialect(build: Callable[[str], S]) -> dict[str, S]:
    """A domain's statements (one typed structure, the same fields in every dialect), built once for
    each dialect at import: `STATEMENTS[tx.dialect]`."""
    built = {name: build(name) for name in DIALECTS}
    _BUILT.append((build.__module__, built))
    return built


def prebuilt() -> list["Statement"]:
    """Every statement per_dialect has built in Footfall's modules imported so far (a test's own are
    left out): in the dataclasses, dicts, tuples and lists it returned."""
    found: list[Statement] = []

    def walk(value: Any) -> None:
        if isinstance(value, Statement):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, tuple | list):
            for item in value:
                walk(item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name))

    walk([built for module, built in _BUILT if module.startswith("footfall.")])
    return found


def binds(table: Table, *names: str) -> dict[str, Any]:
    """Parameters named like the table's columns, typed as they are: `insert(t).values(binds(t, ...))`."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


def upsert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite spell it alike)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def contains(dialect: str, text: Any, needle: Any) -> Any:
    """text holds needle, compared exactly (LIKE would read % and _ in the needle as patterns)."""
    position = func.strpos if dialect == "postgresql" else func.instr
    return position(text, needle) > 0


def earlier_or_later(dialect: str, kept: Any, new: Any, earlier: bool) -> Any:
    """The earlier (or later) of a kept time and a new one, either of which may be NULL."""
    if dialect == "postgresql":
        return (func.least if earlier else func.greatest)(kept, new)  # they skip NULLs
    # SQLite's two-argument min() and max() answer NULL when either is.
    return (func.min if earlier else func.max)(func.coalesce(kept, new), func.coalesce(new, kept))


class KeyedRows:
    """The rows of a JSON object given as parameter `name`, `{"<integer key>": [value, ...]}`, as a FROM
    item: one statement writes any number of rows. `key` is the integer key; item(n) and time(n) the
    row's n-th value, as an integer or as a time comparable with the dialect's time columns (the
    parameter's text written by `dumps`)."""

    def __init__(self, dialect: str, name: str) -> None:
        parameter = bindparam(name, type_=Text)
        self.dialect = dialect
        if dialect == "postgresql":
            self.rows = func.json_each(cast(parameter, JSON)).table_valued("key", "value").alias("keyed")
        else:
            self.rows = func.json_each(parameter).table_valued("key", "value").alias("keyed")
        self.key = cast(self.rows.c.key, BigInteger)

    def _text(self, n: int) -> Any:
        if self.dialect == "postgresql":
            return func.json_extract_path_text(self.rows.c.value, str(n))
        return func.json_extract(self.rows.c.value, f"$[{n}]")

    def item(self, n: int) -> Any:
        return cast(self._text(n), BigInteger)

    def time(self, n: int) -> Any:
        # SQLite's value is already the text it keeps times as.
        return cast(self._text(n), DateTime(timezone=True)) if self.dialect == "postgresql" else self._text(n)

    @staticmethod
    def dumps(dialect: str, rows: Mapping[int, Sequence[Any]]) -> str:
        """The parameter's text for `rows`, times as time(n) reads them: ISO 8601 (orjson writes an
        aware time as isoformat does), or on SQLite the text it keeps times as."""
        if dialect == "postgresql":
            return orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS).decode()
        return orjson.dumps(rows, default=sqlite_text,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME).decode()


def listed_ids(dialect: str, name: str, type_: Any = BigInteger) -> Any:
    """The values of the JSON array given as parameter `name` (integers, or of `type_`), as a
    subquery for IN: one statement for a list of any length (a post-compile IN is not what a
    Statement can run)."""
    array = bindparam(name, type_=Text)
    if dialect == "postgresql":
        values = func.json_array_elements_text(cast(array, JSON)).table_valued("value")
    else:
        values = func.json_each(array).table_valued("value")
    return select(cast(values.c.value, type_)).scalar_subquery()


def listed_uuids(uuids: Iterable[Any]) -> str:
    """The parameter listed_ids reads for a column of uuids: a JSON array of their hex."""
    return orjson.dumps([uuid.hex for uuid in uuids]).decode()


def limit(query: Any) -> Any:
    """The query, at most `limit` rows (a parameter)."""
    return query.limit(bindparam("limit", type_=Integer))


def paged(query: Any) -> Any:
    """The query, `limit` rows after skipping `offset` (parameters)."""
    return limit(query).offset(bindparam("offset", type_=Integer))
