"""The id of the request being served, for log lines and the webhook events it causes
(http.requestid sets it; the delivery worker sets the id of the request that caused an event)."""

from contextvars import ContextVar

current: ContextVar[str | None] = ContextVar("footfall_request_id", default=None)


def request_id() -> str | None:
    """The id of the request being served; None outside one (a command, the delivery worker)."""
    return current.get()
