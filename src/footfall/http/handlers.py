"""The FastAPI exception handlers: every error an endpoint raises leaves in Leat's shape."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from footfall.db import UNAVAILABLE_ERRORS
from footfall.errors import HTTP_ERRORS, FootfallError, InvalidInput, ServiceUnavailable, error_response, field_errors

log = logging.getLogger("footfall")


async def _footfall_error(_: Request, exc: FootfallError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.errors, exc.headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, InvalidInput.code, InvalidInput.message, field_errors(exc.errors()))


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI answers 400 for a body it could not decode (too deep, unreadable numbers).
        return error_response(422, InvalidInput.code, InvalidInput.message, {"body": [str(exc.detail)]})
    code, message = HTTP_ERRORS.get(exc.status_code, (90000 + exc.status_code, str(exc.detail)))
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after this answer, so the server logs the traceback; the client never sees it.
    return error_response(500, FootfallError.code, FootfallError.message)


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # A failover, or a database restarting: the client retries (after Retry-After), never sees a 500.
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    error = ServiceUnavailable({"database": ["The database does not answer; retry shortly."]})
    return error_response(error.status_code, error.code, error.message, error.errors, headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    for kind in UNAVAILABLE_ERRORS:
        app.add_exception_handler(kind, _database_unavailable)
    # Starlette types every handler as taking any Exception; it calls each only with the class it is registered for.
    app.add_exception_handler(FootfallError, _footfall_error)  # type: ignore[arg-type]  # see above
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]  # see above
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]  # see above
    app.add_exception_handler(Exception, _unexpected_error)
