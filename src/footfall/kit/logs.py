"""Log lines: one JSON object a line (or text, for a person at a terminal), every line of every
logger the process has (Footfall's, uvicorn's, Alembic's) through the standard library's logging.
Each `footfall` process configures it once, at start (`configure`); uvicorn's worker processes get the
same configuration as their `log_config` (`dict_config`).

The formatters are Footfall's own, a few lines over orjson: structlog's ProcessorFormatter rendered
the same line at twice the cost, a quarter of show's throughput with a line a request
(docs/performance.md)."""

import asyncio
import logging
import logging.config
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from footfall.kit import requestid

# What every LogRecord has; anything else on a record came as `extra=` and is a field of the line.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# uvicorn's copy of its message with terminal colours in it.
_LEFT_OUT = frozenset({"color_message"})


def chosen_format(setting: str | None) -> str:
    """FOOTFALL_LOG_FORMAT when given; else text for a terminal, JSON for everything else."""
    if setting:
        return setting
    return "text" if sys.stderr.isatty() else "json"


def _now(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def line_of(created: float, level: str, logger: str, event: str, request_id: str | None) -> dict[str, Any]:
    """What every line has: time (UTC), level, logger, event (the message), request_id (the request
    being served, or the one that caused a webhook delivery; null outside one)."""
    return {"time": _now(created), "level": level, "logger": logger, "event": event, "request_id": request_id}


# A URL's userinfo, query string and fragment: where webhook receivers keep their secrets
# (`?api_key=`, `user:pass@`), and httpx's own line names each request's full URL. Scheme, host and
# path stay; the query runs to the next whitespace, so no quote in it lets a part through.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s]*)([^?#\s]*)(?:[?#]\S*)?")


def _without_secrets(match: re.Match[str]) -> str:
    scheme, authority, path = match.groups()
    return scheme + authority.rpartition("@")[2] + path


def redact(text: str) -> str:
    """The text with every URL in it cut to scheme, host and path."""
    return _URL.sub(_without_secrets, text) if "://" in text else text


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record's line: what every line has, then the fields given as `extra=`; a URL in the event
    or in a field keeps no userinfo, query or fragment (`redact`), whichever library logged it."""
    line = line_of(record.created, record.levelname.lower(), record.name, redact(record.getMessage()),
                   requestid.request_id())
    for name, value in record.__dict__.items():
        if name not in _RECORD_ATTRIBUTES and name not in _LEFT_OUT:
            line[name] = redact(value) if isinstance(value, str) else value
    return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = fields(record)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return self.render(line)

    def render(self, line: dict[str, Any]) -> str:
        return orjson.dumps(line, default=str).decode()

    def render_bytes(self, line: dict[str, Any]) -> bytes:
        return orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE)


class TextFormatter(logging.Formatter):
    """`time level logger: event key=value ...`, for a person."""

    def format(self, record: logging.LogRecord) -> str:
        text = self.render(fields(record))
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text

    def render(self, line: dict[str, Any]) -> str:
        line = dict(line)
        head = f"{line.pop('time')} {line.pop('level'):<8} {line.pop('logger')}: {line.pop('event')}"
        return " ".join([head, *(f"{name}={value}" for name, value in line.items() if value is not None)])

    def render_bytes(self, line: dict[str, Any]) -> bytes:
        return (self.render(line) + "\n").encode()


class LineHandler(logging.StreamHandler):
    """The process's one handler (dict_config's). It also takes lines that skip the LogRecord (the
    request line, `info`): those are kept until the event loop's turn ends, then rendered and written
    together, in one write. Made one at a time between other work, the same lines cost three times
    as much (docs/performance.md); any other line first writes out those kept before it, so the
    order holds."""

    current: "LineHandler | None" = None

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.kept: list[tuple[float, str, str, str | None, dict[str, Any]]] = []
        self.write_scheduled = False
        LineHandler.current = self

    def keep(self, logger: str, event: str, line_fields: dict[str, Any]) -> None:
        self.kept.append((time.time(), logger, event, requestid.request_id(), line_fields))
        if self.write_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the event loop: now
            self.write_kept()
            return
        self.write_scheduled = True
        loop.call_soon(self.write_kept)

    def write_kept(self) -> None:
        self.write_scheduled = False
        kept, self.kept = self.kept, []
        if not kept:
            return
        render = self.formatter.render_bytes  # type: ignore[union-attr]
        data = b"".join(render({**line_of(created, "info", logger, event, request_id), **line_fields})
                        for created, logger, event, request_id, line_fields in kept)
        assert self.lock is not None  # Handler.__init__ made it (createLock)
        with self.lock:
            self.flush()  # emit() leaves nothing in the stream, but a stream is a stream
            descriptor = self.stream.fileno()
            while data:
                data = data[os.write(descriptor, data):]

    def emit(self, record: logging.LogRecord) -> None:
        if self.kept:
            self.write_kept()
        super().emit(record)

    def close(self) -> None:
        self.write_kept()
        super().close()


def info(logger: logging.Logger, event: str, line_fields: dict[str, Any]) -> None:
    """logger.info(event, extra=line_fields): the same line, by the short way when the handler is ours
    (in a `footfall` process; not where something else configured logging, as in the tests). The
    short way skips `redact`: its one caller, the request line, names a route template, never a URL."""
    handler = LineHandler.current
    if handler is None:
        logger.info(event, extra=line_fields)
    elif logger.isEnabledFor(logging.INFO):
        handler.keep(logger.name, event, line_fields)


def dict_config(log_format: str | None, level: str) -> dict[str, Any]:
    """The logging configuration, as `logging.config.dictConfig` (and uvicorn's `log_config`) take it."""
    formatter = JsonFormatter if chosen_format(log_format) == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"footfall": {"()": formatter}},
        "handlers": {
            "stderr": {"()": LineHandler, "formatter": "footfall", "stream": "ext://sys.stderr"},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's loggers pass their lines to the root's handler; its access log is replaced by
            # Footfall's request line (http.requestlog), which knows the route and the account.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # Alembic's chatter on every start; footfall.migrations says what was migrated.
            "alembic": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure(log_format: str | None, level: str) -> None:
    logging.config.dictConfig(dict_config(log_format, level))
