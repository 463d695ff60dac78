"""Both signatures every delivery carries.

- Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature "v1,<base64 HMAC-SHA256 of
  id.timestamp.body>", keyed by the bytes base64-encoded after "whsec_" (a secret not in that form
  is keyed by its UTF-8 bytes).
- Leat's receivers: a `signature` header, the hex HMAC-SHA256 of the raw body keyed by the secret
  string exactly as the subscription holds it.
"""

import base64
import binascii
import hashlib
import hmac
import secrets

WHSEC_PREFIX = "whsec_"


def generate_secret() -> str:
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def standard_key(secret: str) -> bytes:
    if secret.startswith(WHSEC_PREFIX):
        return base64.b64decode(secret.removeprefix(WHSEC_PREFIX), validate=True)
    return secret.encode()


def check_secret(secret: str) -> None:
    """Raises ValueError for a whsec_ secret that is not base64 of 24 to 64 bytes."""
    if secret.startswith(WHSEC_PREFIX):
        try:
            key = standard_key(secret)
        except (binascii.Error, ValueError):
            raise ValueError("A whsec_ secret must be base64 after the prefix.") from None
        if not 24 <= len(key) <= 64:
            raise ValueError("A whsec_ secret must hold 24 to 64 bytes.")


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signed = f"{message_id}.{timestamp}.".encode() + body
    standard = base64.b64encode(hmac.new(standard_key(secret), signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{standard}",
        "signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
