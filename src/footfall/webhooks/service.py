"""Webhook subscriptions (Leat's API) and the outbox that records their events."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

from footfall.accounts.repository import Account
from footfall.config import Settings
from footfall.db import Tx
from footfall.errors import DeliveryNotFound, InvalidInput, SubscriptionNotFound
from footfall.kit.pagination import PageParams
from footfall.kit.rendering import php_json_encode
from footfall.kit.requestid import request_id
from footfall.kit.time import utcnow
from footfall.webhooks.repository import (
    Delivery,
    DeliveryRepository,
    OutboxRepository,
    Subscription,
    SubscriptionRepository,
)
from footfall.webhooks.schemas import SubscriptionCreate, SubscriptionUpdate
from footfall.webhooks.signing import generate_secret
from footfall.webhooks.urls import RefusedUrl, check_url_target


async def _check_target(url: str, settings: Settings) -> None:
    try:
        await check_url_target(url, allow_private=settings.webhook_allow_private_urls)
    except RefusedUrl as error:
        raise InvalidInput({"url": [str(error)]}) from None


async def create(tx: Tx, account: Account, data: SubscriptionCreate, settings: Settings) -> Subscription:
    await _check_target(data.url, settings)
    return await SubscriptionRepository(tx).insert(
        {
            "uuid": uuid4(),
            "account_id": account.id,
            "name": data.name,
            "event_type": data.event_type,
            "url": data.url,
            "secret": data.secret or generate_secret(),
            "status": "ACTIVE",
            "consecutive_failures": 0,
            "created_at": utcnow(),
        }
    )


async def get(tx: Tx, account: Account, uuid: UUID) -> Subscription:
    subscription = await SubscriptionRepository(tx).get(account.id, uuid)
    if subscription is None:
        raise SubscriptionNotFound()
    return subscription


async def list_page(
    tx: Tx, account: Account, params: PageParams, event_type: str | None, status: str | None
) -> tuple[Sequence[Subscription], int]:
    repository = SubscriptionRepository(tx)
    await tx.snapshot()  # the page and its total agree
    total = await repository.count(account.id, event_type, status)
    if not params.reaches_rows(total):
        return [], total
    return await repository.page(account.id, event_type, status, params.limit, params.offset), total


async def update(
    tx: Tx, account: Account, uuid: UUID, data: SubscriptionUpdate, settings: Settings
) -> Subscription:
    subscription = await get(tx, account, uuid)
    changes = data.model_dump(include={"name", "url", "status"}, exclude_unset=True)
    for field in ("name", "url", "status"):
        if field in changes and changes[field] is None:
            raise InvalidInput({field: [f"The {field} cannot be null."]})
    if "url" in changes:
        await _check_target(changes["url"], settings)
    if changes.get("status") == "ACTIVE" and subscription.status == "INACTIVE":
        # Reactivated: its failure count starts over and its pending deliveries go out now.
        changes["consecutive_failures"] = 0
        await DeliveryRepository(tx).resume_pending(subscription.id, utcnow())
    if not changes:
        return subscription
    return await SubscriptionRepository(tx).update(subscription.id, changes)


async def delete(tx: Tx, account: Account, uuid: UUID) -> None:
    await SubscriptionRepository(tx).delete((await get(tx, account, uuid)).id)


async def erase(tx: Tx, account_id: int, owner: str, email: str) -> None:
    """A contact's email cut out of its stored events, in PHP's encoding as they keep it, and their
    delivery log (see OutboxRepository.erase)."""
    encoded = php_json_encode(email)
    await OutboxRepository(tx).erase(account_id, owner, f'"email":{encoded}', encoded[1:-1])


async def subscribers(tx: Tx, account_id: int, event_type: str) -> Sequence[int]:
    """The ids of the account's ACTIVE subscriptions to this event type."""
    return await OutboxRepository(tx).active_subscription_ids(account_id, event_type)


async def emit(tx: Tx, account_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Records an event for every ACTIVE subscription to it, in the caller's transaction (the outbox):
    a committed change always has its event, a rolled-back one never has."""
    await emit_to(tx, account_id, event_type, await subscribers(tx, account_id, event_type), [data])


async def emit_to(
    tx: Tx,
    account_id: int,
    event_type: str,
    subscription_ids: Sequence[int],
    payloads: Sequence[dict[str, Any]],
) -> None:
    """One event per payload, each delivered to every subscription given (a bulk import asks for
    subscribers once, and builds payloads only when there are any)."""
    if not subscription_ids or not payloads:
        return
    now = utcnow()
    events, deliveries = [], []
    for data in payloads:
        event_uuid = uuid4()
        body = php_json_encode({"id": event_uuid, "type": event_type, "created_at": now, "data": data})
        events.append({"uuid": event_uuid, "account_id": account_id, "type": event_type, "body": body,
                       "created_at": now, "request_id": request_id()})
        deliveries += [
            {"delivery_uuid": uuid4(), "subscription_id": subscription_id, "event_uuid": event_uuid, "now": now}
            for subscription_id in subscription_ids
        ]
    await OutboxRepository(tx).add_events(events, deliveries)


async def list_deliveries(
    tx: Tx, account: Account, subscription_uuid: UUID, params: PageParams
) -> tuple[Sequence[Delivery], int]:
    await tx.snapshot()  # the page and its total agree
    subscription = await get(tx, account, subscription_uuid)
    repository = DeliveryRepository(tx)
    total = await repository.count(subscription.id)
    if not params.reaches_rows(total):
        return [], total
    return await repository.page(subscription.id, params.limit, params.offset), total


async def retry_delivery(tx: Tx, account: Account, subscription_uuid: UUID, delivery_uuid: UUID) -> Delivery:
    """Sends a delivery again, now: a failed or succeeded one becomes pending for one more attempt.
    It still waits for older pending deliveries of its subscription, so order holds."""
    subscription = await get(tx, account, subscription_uuid)
    repository = DeliveryRepository(tx)
    delivery = await repository.get(subscription.id, delivery_uuid)
    if delivery is None:
        raise DeliveryNotFound()
    await repository.make_due(delivery.id, utcnow(), reopen=delivery.state != "pending")
    refreshed = await repository.get(subscription.id, delivery_uuid)
    assert refreshed is not None
    return refreshed
