"""`footfall webhooks listen`: a receiver for development, as `stripe listen` is for Stripe. It prints
each delivery it gets, with both signatures checked against the subscription's secret."""

import hmac
import json
import sys
from collections.abc import Callable
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from footfall.kit.time import utcnow
from footfall.webhooks.signing import WHSEC_PREFIX, signature_headers


def check_signatures(secret: str, headers: Any, body: bytes) -> dict[str, bool]:
    """Whether each of the two signatures a delivery carries is right for the secret. A whsec_ secret
    is checked by the standardwebhooks library (timestamp within 5 minutes included)."""
    timestamp = headers.get("webhook-timestamp", "")
    expected = signature_headers(secret, headers.get("webhook-id", ""), int(timestamp) if timestamp.isdigit() else 0,
                                 body)
    if secret.startswith(WHSEC_PREFIX):
        try:
            Webhook(secret).verify(body, {name: headers.get(name, "") for name in
                                          ("webhook-id", "webhook-timestamp", "webhook-signature")})
            standard = True
        except WebhookVerificationError:
            standard = False
    else:
        standard = any(hmac.compare_digest(given, expected["webhook-signature"])
                       for given in headers.get("webhook-signature", "").split())
    return {"webhook-signature": standard, "signature": hmac.compare_digest(headers.get("signature", ""),
                                                                            expected["signature"])}


def listener(secret: str | None, write: Callable[[str], None] | None = None) -> Starlette:
    """An app that answers every POST: 200 when the signatures hold (or no secret was given to check
    them with), 400 when one does not; each delivery is written as one line, then its body."""
    write = write or (lambda line: print(line, file=sys.stdout, flush=True))

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        checks = check_signatures(secret, request.headers, body) if secret else None
        verdict = ("signatures not checked (no --secret)" if checks is None else
                   "  ".join(f"{name}: {'verified' if ok else 'WRONG'}" for name, ok in checks.items()))
        write(f"{utcnow().isoformat()}  {request.url.path}  {event.get('type', '?')}  "
              f"event {event.get('id', '?')}  {verdict}")
        write(body.decode("utf-8", "replace"))
        if checks is not None and not all(checks.values()):
            return JSONResponse({"received": False, "signatures": checks}, status_code=400)
        return JSONResponse({"received": True})

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
