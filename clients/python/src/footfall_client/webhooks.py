"""Verifying webhook deliveries from Footfall: either signature will do."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from footfall_client.errors import WebhookVerificationError

TOLERANCE_SECONDS = 300  # Standard Webhooks: refuse timestamps more than 5 minutes off

# What a subscription's event_type may be, and so the `type` of the events verify returns. Their data:
# visit_created and visit_updated a visit; visit_deleted its tombstone (uuid, external_id, deleted_at);
# contact_created a contact; contact_deleted uuid, email, deleted_at; and a visit rule's events
# {"rule": {uuid, name, kind}, "contact": {uuid, email}} with, for visit_milestone, "visit" and "count";
# for contact_lapsed, "last_visit_at" and "days"; for contact_returned, "visit" and "days_away".
EVENT_TYPES = ("visit_created", "visit_updated", "visit_deleted", "contact_created", "contact_deleted",
               "visit_milestone", "contact_lapsed", "contact_returned")


def _standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("the secret is not valid whsec_ base64") from None
    return secret.encode()


def verify(headers: Mapping[str, str], body: bytes | str, secret: str, *,
           tolerance: float = TOLERANCE_SECONDS) -> Any:
    """The delivery's event ({"id", "type", "created_at", "data"}), once a signature checks out.

    With Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) those are
    checked, timestamp tolerance included; otherwise Leat's `signature` header (hex HMAC-SHA256 of
    the body). Raises WebhookVerificationError when neither checks out.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lowered = {key.lower(): value for key, value in headers.items()}
    if all(name in lowered for name in ("webhook-id", "webhook-timestamp", "webhook-signature")):
        try:
            timestamp = int(lowered["webhook-timestamp"])
        except ValueError:
            raise WebhookVerificationError("webhook-timestamp is not a number") from None
        if abs(time.time() - timestamp) > tolerance:
            raise WebhookVerificationError("webhook-timestamp is too old or too new")
        signed = f"{lowered['webhook-id']}.{timestamp}.".encode() + raw
        expected = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
        for candidate in lowered["webhook-signature"].split():
            version, _, signature = candidate.partition(",")
            try:
                if version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected):
                    return json.loads(raw)
            except (binascii.Error, ValueError):
                continue
        raise WebhookVerificationError("no webhook-signature matches")
    if "signature" in lowered:
        expected_hex = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if hmac.compare_digest(lowered["signature"].strip().lower(), expected_hex):
            return json.loads(raw)
        raise WebhookVerificationError("the signature header does not match")
    raise WebhookVerificationError("no signature headers")
