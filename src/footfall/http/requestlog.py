"""One log line a request, written once its answer is sent: method, route template, status,
duration, the caller's account (the request id comes with every line, see kit.logs). Never a token,
a secret, a query string or a body. With metrics on, the same figures are counted."""

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footfall import metrics
from footfall.kit import logs

log = logging.getLogger("footfall.request")
UNMATCHED = "unmatched"


class RouteTemplates:
    """The path as the app declares it (`/api/v3/oauth/clients/visits/{uuid}`), so that a log or a
    metric groups requests by endpoint; `unmatched` for a path no route has."""

    def __init__(self, documented_paths: Callable[[], Iterable[str]]) -> None:
        self.documented_paths = documented_paths
        self.compiled: list[tuple[re.Pattern[str], str]] | None = None

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return self._unrouted(scope["path"])
        own = route.path
        if isinstance(route, Mount):
            return own
        # A route knows its path below the prefix it was included under (FastAPI keeps that apart): the
        # prefix is what the request's path has before the route's own segments (no parameter holds a /).
        depth = own.count("/")
        return "/".join(scope["path"].split("/")[:-depth]) + own

    def _unrouted(self, path: str) -> str:
        """A request answered before routing (413, 415, 429): matched against the paths the OpenAPI
        document lists, in the routes' order, compiled at the first such request."""
        if self.compiled is None:
            self.compiled = [(compile_path(template)[0], template) for template in self.documented_paths()]
        return next((template for pattern, template in self.compiled if pattern.match(path)), UNMATCHED)


def account_uuid(scope: Scope) -> str | None:
    """The account the request acted for (`request.state.account`, set once its token was accepted)."""
    account = scope.get("state", {}).get("account")
    return str(account.uuid) if account is not None else None


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, documented_paths: Callable[[], Iterable[str]]) -> None:
        self.app = app
        self.templates = RouteTemplates(documented_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: an error nothing caught

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - started
            recorder = metrics.current
            if recorder is not None or log.isEnabledFor(logging.INFO):
                route = self.templates.of(scope)
                if recorder is not None:
                    recorder.request(scope["method"], route, status, seconds)
                fields: dict[str, Any] = {
                    "method": scope["method"], "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 2), "account_uuid": account_uuid(scope),
                }
                logs.info(log, "request", fields)
