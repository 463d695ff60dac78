"""The console's sign-in: the API token itself, kept in a session cookie (HttpOnly, SameSite=Strict,
gone when the browser closes), checked on every page as the API checks a bearer token. Forms carry a
token derived from it, so a page on another site cannot post one."""

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request, Response

from footfall.accounts import service as accounts
from footfall.accounts.repository import Account, Credential
from footfall.db import Tx
from footfall.errors import FootfallError, ReadOnlyToken, Unauthenticated

COOKIE = "footfall_session"
# Scripts, styles and images from Footfall alone; no inline script or style; never in a frame.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SignedOut(FootfallError):
    """No session, or its token no longer works: the sign-in page."""

    status_code, code, message = 401, 90401, "Sign in with an API token."


class ForgedForm(FootfallError):
    status_code, code, message = 403, 90403, "This form did not come from this console; reload the page."


@dataclass(frozen=True)
class Session:
    account: Account
    read_only: bool
    form_token: str  # the value every form of the session posts back as `csrf`
    tx: Tx


def form_token(token: str) -> str:
    return hmac.new(token.encode("utf-8", "surrogatepass"), b"footfall-console-form", hashlib.sha256).hexdigest()


async def credential_of(request: Request, token: str) -> Credential:
    try:
        credential = await accounts.authenticate(request.app.state.database, request.app.state.token_cache, token)
    except Unauthenticated:
        raise SignedOut() from None
    if accounts.needs_touch(credential):
        await accounts.touch(request.app.state.database, request.app.state.token_cache, credential)
    return credential


def check_form(request: Request, token: str, form: dict | None) -> None:
    """Refuses a form that does not carry the session's form token, or that the browser says comes
    from another site (its Origin, when it sends one)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if form is None or not hmac.compare_digest(str(form.get("csrf", "")), form_token(token)) or (origin and origin != own):
        raise ForgedForm()


@asynccontextmanager
async def session(request: Request, *, write: bool = False, form: dict | None = None) -> AsyncIterator[Session]:
    """The signed-in caller and a transaction. A write needs a token that may write and, with its
    form, the session's form token, from a page of this console (the Origin, when the browser sends one)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignedOut()
    credential = await credential_of(request, token)
    request.state.account = credential.account  # for the request's log line
    if write:
        if credential.read_only:
            raise ReadOnlyToken()
        check_form(request, token, form)
    async with request.app.state.database.transaction(write=write) as tx:
        yield Session(credential.account, credential.read_only, form_token(token), tx)


def keep(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
