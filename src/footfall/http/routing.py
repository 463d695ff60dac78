"""The route class every API route uses: the caller's account, the request's transaction, and
Idempotency-Key handling."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param

from footfall.accounts import service as accounts
from footfall.accounts.repository import Account
from footfall.db import Tx
from footfall.errors import ReadOnlyToken, Unauthenticated
from footfall.http.body import caller_key
from footfall.idempotency import service as idempotency

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Documented in the OpenAPI schema for every API operation (app._openapi). Not fastapi's HTTPBearer
# as a dependency: a security dependency costs a tenth of a show request's CPU in FastAPI's
# dependency caching, for what one header split does.
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "A Footfall personal access token."}


class ApiRoute(APIRoute):
    """Authenticates the caller, then runs the request in one transaction that commits before the
    answer is sent (a client that got a 2xx can rely on the write), and stores an Idempotency-Key's
    answer in that same transaction.

    Authentication runs here rather than as a dependency: before the request's transaction is taken,
    and without FastAPI's per-dependency cost (each costs about 4% of a show request). Endpoints read
    the account and the transaction with Caller.of(request).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        always_writes = getattr(self.endpoint, "writes", False)

        async def route_handler(request: Request) -> Response:
            write = always_writes or request.method not in READ_METHODS
            account = await _authenticate(request, write)
            request.state.account = account  # for the request's log line
            reads = request.app.state.reads
            try:
                if reads is not None and not write:
                    transaction = reads.read(caller_key(request.scope))  # a replica that has the token's writes
                else:
                    transaction = request.app.state.database.transaction(write=write)
                async with transaction as tx:
                    request.state.caller = Caller(account, tx)
                    response = await handler(request)
                    claim = getattr(request.state, "idempotency_claim", None)
                    if claim is not None and response.status_code < 400:
                        assert isinstance(response.body, bytes)  # Footfall's answers render to bytes, no memoryview
                        await idempotency.complete(tx, claim, response.status_code, response.body)
                        request.state.idempotency_claim = None
            except Exception:
                await _release_claim(request)
                raise
            await _release_claim(request)
            if reads is not None and write:
                await reads.wrote(caller_key(request.scope))  # committed: its reads wait for a replica that has it
            return response

        return route_handler


@dataclass(frozen=True, slots=True)
class Caller:
    """A request's caller: its account and the request's transaction, as ApiRoute set them up."""

    account: Account
    tx: Tx

    @staticmethod
    def of(request: Request) -> "Caller":
        return request.state.caller


def writes(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a GET that can write (Leat's find-or-create): it runs in a write transaction, and a
    read-only token is refused it."""
    endpoint.writes = True  # type: ignore[attr-defined]
    return endpoint


async def _authenticate(request: Request, write: bool) -> Account:
    # HTTPBearer's reading of the header: "Bearer <token>", the scheme in any case.
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated()
    # Transactions of their own, before the request's: on SQLite a write transaction holds the one
    # write lock from its start, and the Idempotency-Key claim must commit before that.
    database = request.app.state.database
    credential = await accounts.authenticate(database, request.app.state.token_cache, token)
    if credential.read_only and write:
        raise ReadOnlyToken()
    if accounts.needs_touch(credential):
        await accounts.touch(database, request.app.state.token_cache, credential)
    return credential.account


async def _release_claim(request: Request) -> None:
    claim = getattr(request.state, "idempotency_claim", None)
    if claim is not None:
        request.state.idempotency_claim = None
        await idempotency.release(request.app.state.database, claim)


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
    print_ = idempotency.fingerprint(request.method, request.url.path, request.scope["query_string"],
                                     await request.body())
    request.state.idempotency_claim = await idempotency.claim(
        request.app.state.database, request.app.state.settings, request.state.caller.account,
        idempotency.parse_key(key), print_,
    )


# For POST and PUT routes: `dependencies=[Idempotent]`.
Idempotent = Depends(_idempotency_key)
