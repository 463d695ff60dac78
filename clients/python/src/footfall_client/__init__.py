"""A Python client for the Visits API of Footfall, and of Leat itself (the base URL decides)."""

from footfall_client import webhooks
from footfall_client._client import AsyncClient, Client
from footfall_client.errors import (
    AuthenticationError,
    ConflictError,
    FootfallError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    WebhookVerificationError,
)
from footfall_client.models import (
    ChangesPage,
    Contact,
    Page,
    RuleProgress,
    Shop,
    Stats,
    StatsBucket,
    Tombstone,
    Visit,
    VisitContact,
    VisitRule,
    WebhookDelivery,
    WebhookSubscription,
)

__version__ = "0.1.0"
__all__ = [
    "AsyncClient", "AuthenticationError", "ChangesPage", "Client", "ConflictError", "Contact", "FootfallError",
    "NotFoundError", "Page", "PermissionDeniedError", "RateLimitError", "RuleProgress", "ServerError", "Shop", "Stats",
    "StatsBucket", "Tombstone", "ValidationError", "Visit", "VisitContact", "VisitRule", "WebhookDelivery",
    "WebhookSubscription",
    "WebhookVerificationError", "webhooks",
]
