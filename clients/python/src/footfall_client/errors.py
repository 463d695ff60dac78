"""Every error answer becomes an exception carrying Leat's fields: status_code, code, message, errors."""

from __future__ import annotations

from typing import Any


class FootfallError(Exception):
    """An error answer. `code`, `message` and `errors` come from a body in Leat's shape; a body in
    another shape leaves them None and keeps the raw text in `body`."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: int | None = None,
        errors: dict[str, list[str]] | None = None,
        body: str = "",
    ) -> None:
        super().__init__(f"{status_code} {code if code is not None else ''} {message}".replace("  ", " "))
        self.status_code = status_code
        self.code = code
        self.message = message
        self.errors = errors or {}
        self.body = body


class AuthenticationError(FootfallError):
    """401: a missing, unknown, expired or revoked token."""


class PermissionDeniedError(FootfallError):
    """403: e.g. a write with a read-only token."""


class NotFoundError(FootfallError):
    """404: no such visit, shop, contact or subscription in the account (or no such route)."""


class ConflictError(FootfallError):
    """409: e.g. an external_id used by a different visit, or an Idempotency-Key still in progress."""


class ValidationError(FootfallError):
    """422: invalid input; `errors` names each bad field."""


class RateLimitError(FootfallError):
    """429: too many requests; `retry_after` is in seconds, when the server said."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(FootfallError):
    """5xx."""


class WebhookVerificationError(Exception):
    """A webhook delivery whose signature, or timestamp, does not check out."""


_BY_STATUS = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError, 409: ConflictError,
              422: ValidationError, 429: RateLimitError}


def _errors(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): ([str(m) for m in v] if isinstance(v, list) else [str(v)]) for k, v in value.items()}


def error_from_response(status_code: int, text: str, retry_after: float | None) -> FootfallError:
    import json

    cls = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else FootfallError)
    kwargs: dict[str, Any] = {"body": text}
    if cls is RateLimitError:
        kwargs["retry_after"] = retry_after
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and all(key in data for key in ("status_code", "code", "message")):
        return cls(status_code, str(data["message"]), code=data["code"], errors=_errors(data.get("errors")), **kwargs)
    return cls(status_code, text[:200] or f"HTTP {status_code}", **kwargs)
