"""Paths as Leat's (Laravel's) routing reads them."""

from starlette.types import ASGIApp, Receive, Scope, Send


class TrailingSlashMiddleware:
    """`/visits/` answers as `/visits` does: the path loses its trailing slashes before routing, as
    Laravel treats both alike, where Starlette would answer a 307 with an empty body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            # In place, so that the middlewares outside see the route the path was matched to.
            raw = scope.get("raw_path") or scope["path"].encode()
            scope["path"], scope["raw_path"] = scope["path"].rstrip("/") or "/", raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
