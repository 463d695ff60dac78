"""Every error leaves Footfall in Leat's shape: {"status_code", "code", "message", "errors"?}.

Leat documents codes 1003, 1008 and 55031 (and 80300 for webhook subscriptions). Codes of the
form 90xxx (an HTTP status, 90000 + status) and 91xxx (domain rules) are Footfall's own; the
README's table lists every one.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import Send


class ErrorBody(BaseModel):
    """The error shape Leat's SDK parses (ExceptionMapper: status_code, code and message)."""

    status_code: int = Field(examples=[422])
    code: int = Field(examples=[1003])
    message: str = Field(examples=["Invalid input."])
    errors: dict[str, list[str]] | None = Field(
        default=None, examples=[{"starts_at": ["Must be an ISO 8601 date and time."]}]
    )


class FootfallError(Exception):
    status_code = 500
    code = 90500
    message = "Server error."
    headers: dict[str, str] | None = None

    def __init__(self, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(self.message)
        self.errors = {field: list(messages) for field, messages in errors.items()} if errors else None


class InvalidInput(FootfallError):
    status_code, code, message = 422, 1003, "Invalid input."


class ShopNotFound(FootfallError):
    status_code, code, message = 404, 1008, "Shop not found."


class ContactNotFound(FootfallError):
    status_code, code, message = 404, 55031, "Contact not found."


class VisitNotFound(FootfallError):
    status_code, code, message = 404, 91001, "Visit not found."


class ExternalIdConflict(FootfallError):
    status_code, code, message = 409, 91002, "A different visit with this external_id exists."


class SubscriptionNotFound(FootfallError):
    status_code, code, message = 404, 80300, "Webhook subscription not found."


class DeliveryNotFound(FootfallError):
    status_code, code, message = 404, 91101, "Webhook delivery not found."


class RuleNotFound(FootfallError):
    status_code, code, message = 404, 91301, "Visit rule not found."


class IdempotencyKeyReused(FootfallError):
    status_code, code, message = 422, 91201, "This Idempotency-Key was used for a different request."


class IdempotencyKeyInProgress(FootfallError):
    status_code, code, message = 409, 91202, "A request with this Idempotency-Key is still in progress."


# Accounts and tokens are named by uuid only in `footfall` commands, never in the API.
class AccountNotFound(FootfallError):
    status_code, code, message = 404, 90404, "Account not found."


class TokenNotFound(FootfallError):
    status_code, code, message = 404, 90404, "Token not found."


class ReadOnlyToken(FootfallError):
    status_code, code, message = 403, 90403, "This token is read-only."


class BodyTooLarge(FootfallError):
    status_code, code, message = 413, 90413, "The body is too large."


class UnsupportedMediaType(FootfallError):
    status_code, code, message = (
        415, 90415, "Send the body as application/json, application/x-www-form-urlencoded or multipart/form-data."
    )


class TooManyRequests(FootfallError):
    status_code, code, message = 429, 90429, "Too many requests."


class Unauthenticated(FootfallError):
    status_code, code, message = 401, 90401, "Unauthenticated."
    headers = {"WWW-Authenticate": "Bearer"}


class ServiceUnavailable(FootfallError):
    status_code, code, message = 503, 90503, "Service unavailable."


# Errors Starlette raises itself (unknown route, wrong method), by HTTP status.
HTTP_ERRORS: dict[int, tuple[int, str]] = {
    404: (90404, "Not found."),
    405: (90405, "Method not allowed."),
}


def error_body(
    status_code: int, code: int, message: str, errors: Mapping[str, list[str]] | None = None
) -> dict[str, Any]:
    """Leat's error shape, the one place it is written: `errors` only when there are any."""
    body: dict[str, Any] = {"status_code": status_code, "code": code, "message": message}
    if errors:
        body["errors"] = errors
    return body


def error_response(
    status_code: int,
    code: int,
    message: str,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status_code, code, message, errors), status_code=status_code, headers=headers)


async def send_error(
    send: Send,
    error: type[FootfallError],
    message: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
    errors: Mapping[str, list[str]] | None = None,
) -> None:
    """An error answered straight from ASGI middleware, before routing (413, 415, 429, a bad multipart body)."""
    status = error.status_code
    content = error_body(status, error.code, message or error.message, errors)
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def field_errors(pydantic_errors: Sequence[Mapping[str, Any]], located: bool = True) -> dict[str, list[str]]:
    """Pydantic's error list as Leat's {"field": ["message", ...]}. `located`: each loc starts with
    where the field was ("body", "query", "path"), as in a request's errors."""
    errors: dict[str, list[str]] = {}
    for error in pydantic_errors:
        loc = [str(part) for part in error.get("loc", ())]
        if located:
            # A whole-body error has no field.
            loc = loc[1:] if len(loc) > 1 else (loc or ["body"])
        if error.get("type") == "json_invalid":
            field, message = "body", "The body is not valid JSON."
        else:
            field = ".".join(loc) or "body"
            message = _in_our_words(error)
        errors.setdefault(field, []).append(message)
    return errors


# Pydantic's error types, in Footfall's words (its own say "Input should be ...", or tell how a UUID
# failed to parse); {name} is filled from the error's context.
MESSAGES = {
    "missing": "Required.",
    "string_type": "Must be a string.",
    "uuid_parsing": "Must be a UUID, e.g. 6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92.",
    "uuid_type": "Must be a UUID, e.g. 6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92.",
    "int_parsing": "Must be a whole number.",
    "int_type": "Must be a whole number.",
    "int_from_float": "Must be a whole number.",
    "bool_parsing": "Must be true or false.",
    "bool_type": "Must be true or false.",
    "greater_than_equal": "Must be at least {ge}.",
    "greater_than": "Must be more than {gt}.",
    "less_than_equal": "Must be at most {le}.",
    "less_than": "Must be less than {lt}.",
    "string_too_short": "Must not be empty.",
    "string_too_long": "Must be at most {max_length} characters long.",
    "too_short": "Must hold at least {min_length} items.",
    "too_long": "Must hold at most {max_length} items.",
    "literal_error": "Must be one of {expected}.",
    "enum": "Must be one of {expected}.",
    "list_type": "Must be a list.",
    "dict_type": "Must be an object.",
    "model_type": "Must be an object.",
    "model_attributes_type": "Must be an object.",
    "extra_forbidden": "Not a field this takes.",
    "string_unicode": "Must be text (UTF-8).",
}


def _in_our_words(error: Mapping[str, Any]) -> str:
    template = MESSAGES.get(str(error.get("type")))
    if template is not None:
        try:
            return template.format(**(error.get("ctx") or {}))
        except (KeyError, IndexError):
            pass
    # Our own validators raise ValueError with their message: pydantic prefixes it.
    return str(error.get("msg", "Invalid value.")).removeprefix("Value error, ")


def write_error_responses(*errors: type[FootfallError]) -> dict[int | str, dict[str, Any]]:
    """error_responses for a POST, PUT or DELETE: adds read-only tokens and Idempotency-Key errors."""
    return error_responses(
        ReadOnlyToken, IdempotencyKeyReused, IdempotencyKeyInProgress, BodyTooLarge, UnsupportedMediaType, *errors
    )


def error_responses(*errors: type[FootfallError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: the given errors plus 401, 422, 429, 500 and 503 (the database not
    answering, e.g. during a failover), all in Leat's shape."""
    described: dict[int, list[str]] = {}
    listed: tuple[type[FootfallError], ...] = (
        Unauthenticated, InvalidInput, *errors, TooManyRequests, FootfallError, ServiceUnavailable
    )
    for error in listed:
        described.setdefault(error.status_code, []).append(f"{error.code} {error.message}")
    return {
        status: {"model": ErrorBody, "description": "; ".join(messages)}
        for status, messages in sorted(described.items())
    }
