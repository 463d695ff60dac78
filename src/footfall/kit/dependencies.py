"""What every API route shares: its transaction, the caller's account, and Idempotency-Key handling."""

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.accounts import service as accounts
from footfall.config import Settings
from footfall.db import Sessions, SessionTx, Tx, session_scope
from footfall.errors import ReadOnlyToken, Unauthenticated
from footfall.idempotency import service as idempotency
from footfall.models import Account

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiRoute(APIRoute):
    """Authenticates the caller, then runs the request in one transaction that commits before the
    answer is sent (a client that got a 2xx can rely on the write), and stores an Idempotency-Key's
    answer in that same transaction.

    Authentication runs here rather than as a dependency: before any connection of the request's is
    taken, and without FastAPI's per-dependency cost (py-spy under wrk: each dependency cost about 4%
    of a show request). Endpoints read the account through CurrentAccount, or Caller.of(request) on the hot paths.
    """

    # DriverRoute (the visits routes, the hot paths): the Tx runs on db.DriverPool on PostgreSQL.
    driver: bool = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        driver = self.driver

        async def route_handler(request: Request) -> Response:
            account = await _authenticate(request)
            try:
                async with _transaction(request, driver) as tx:
                    request.state.caller = Caller(account, tx)
                    response = await handler(request)
                    claim = getattr(request.state, "idempotency_claim", None)
                    if claim is not None and response.status_code < 400:
                        await idempotency.complete(tx, claim, response.status_code, response.body)
                        request.state.idempotency_claim = None
            except Exception:
                await _release_claim(request)
                raise
            await _release_claim(request)
            return response

        return route_handler


class DriverRoute(ApiRoute):
    driver = True


def _transaction(request: Request, driver: bool) -> AbstractAsyncContextManager[Tx]:
    write = request.method not in READ_METHODS
    pool = request.app.state.driver_pool if driver else None
    if pool is not None:
        return pool.transaction(write=write)
    return _session_transaction(request.app.state.sessionmaker, write)


@asynccontextmanager
async def _session_transaction(sessions: Sessions, write: bool) -> AsyncIterator[Tx]:
    async with session_scope(sessions, write=write) as session:
        yield SessionTx(session)


async def _release_claim(request: Request) -> None:
    claim = getattr(request.state, "idempotency_claim", None)
    if claim is not None:
        request.state.idempotency_claim = None
        await idempotency.release(request.app.state.sessionmaker, claim)


async def _session(request: Request) -> AsyncSession:
    return request.state.caller.tx.session


# For ApiRoute routes; DriverRoute routes have no session on PostgreSQL, only their Tx.
Session = Annotated[AsyncSession, Depends(_session)]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(_settings)]

# Documented in the OpenAPI schema for every API operation (app._openapi). Not fastapi's HTTPBearer
# as a dependency: a security dependency cost a tenth of a show request's CPU in FastAPI's
# dependency caching (py-spy under wrk), for what one header split does.
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "A Footfall personal access token."}


async def _authenticate(request: Request) -> Account:
    # HTTPBearer's reading of the header: "Bearer <token>", the scheme in any case.
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated()
    # A transaction of its own, before the request's: on SQLite a write transaction holds the one
    # write lock from its first statement, and the Idempotency-Key claim must commit before that.
    sessions = request.app.state.sessionmaker
    found = await accounts.authenticate(sessions, request.app.state.token_cache, token)
    if found.read_only and request.method not in READ_METHODS:
        raise ReadOnlyToken()
    if accounts.needs_touch(found):
        await accounts.touch(sessions, found)
    return found.account


async def _account(request: Request) -> Account:
    return request.state.caller.account


CurrentAccount = Annotated[Account, Depends(_account)]


@dataclass(frozen=True, slots=True)
class Caller:
    """A request's caller: its account and the request's transaction, as ApiRoute set them up."""

    account: Account
    tx: Tx

    @staticmethod
    def of(request: Request) -> "Caller":
        """Read off the request on the hot paths (the visits routes) rather than injected as a
        dependency: each FastAPI dependency cost about 4% of a show request (py-spy under wrk)."""
        return request.state.caller


async def _idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes a retry safe: a repeat with the same key and body answers the first "
            "answer again (Idempotent-Replayed: true) and changes nothing.",
        ),
    ] = None,
) -> None:
    if key is None:
        return
    print_ = idempotency.fingerprint(request.method, request.url.path, await request.body())
    request.state.idempotency_claim = await idempotency.claim(
        request.app.state.sessionmaker, request.app.state.settings, request.state.caller.account,
        idempotency.parse_key(key),
        print_,
    )


# For POST and PUT routes: `dependencies=[Idempotent]`.
Idempotent = Depends(_idempotency_key)
