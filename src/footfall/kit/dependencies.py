"""FastAPI dependencies every API route uses: one database transaction and the caller's account."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from footfall.accounts.service import authenticate
from footfall.config import Settings
from footfall.db import session_scope
from footfall.errors import Unauthenticated
from footfall.models import Account

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_scope(request.app.state.sessionmaker, write=request.method not in READ_METHODS) as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a client that
# got a 2xx can rely on the write being durable.
Session = Annotated[AsyncSession, Depends(_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="A Footfall personal access token.")


async def _account(
    session: Session, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Account:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated()
    return await authenticate(session, credentials.credentials)


CurrentAccount = Annotated[Account, Depends(_account, scope="function")]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(_settings)]
