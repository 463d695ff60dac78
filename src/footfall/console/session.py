"""The console's sign-in: the API token itself, kept in a session cookie (HttpOnly, SameSite=Strict,
gone when the browser closes), checked on every page as the API checks a bearer token. Forms carry a
token derived from it, so a page on another site cannot post one; and every form, sign-in included,
must come from this console's own origin (check_origin), so another site cannot sign a browser in
to an account of its choosing either."""

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from footfall.accounts import service as accounts
from footfall.accounts.repository import Account, Credential
from footfall.db import Tx
from footfall.errors import FootfallError, ReadOnlyToken, Unauthenticated
from footfall.http.body import SESSION_COOKIE as COOKIE  # kit's caller_key keys the rate limit by it

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


def check_origin(request: Request) -> None:
    """Refuses a form that the browser says comes from another site: by its Origin (`null`, an opaque
    origin such as a sandboxed frame's, included) or, when it sends none, its Referer's. A client
    that sends neither is no browser carrying someone else's cookie, and passes."""
    origin = request.headers.get("origin")
    if not origin and (referer := request.headers.get("referer")):
        try:
            parts = urlsplit(referer)
        except ValueError:  # unreadable (a bad IPv6 host): not this console's
            raise ForgedForm() from None
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ForgedForm()


def check_form(request: Request, token: str, form: dict | None) -> None:
    """Refuses a form that does not carry the session's form token, or that comes from another site."""
    if form is None or not hmac.compare_digest(str(form.get("csrf", "")), form_token(token)):
        raise ForgedForm()
    check_origin(request)


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
