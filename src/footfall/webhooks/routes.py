from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, status

from footfall.errors import DeliveryNotFound, SubscriptionNotFound, error_responses, write_error_responses
from footfall.http.routing import ApiRoute, Caller, Idempotent
from footfall.kit.pagination import PageParams, page_params
from footfall.kit.types import DeletedResponse
from footfall.webhooks import service
from footfall.webhooks.repository import Delivery
from footfall.webhooks.schemas import (
    DeliveryListResponse,
    DeliveryOut,
    DeliveryResponse,
    EventType,
    Status,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionCreatedResponse,
    SubscriptionListResponse,
    SubscriptionOut,
    SubscriptionResponse,
    SubscriptionUpdate,
)

router = APIRouter(prefix="/webhook-subscriptions", tags=["webhook subscriptions"], route_class=ApiRoute)

SubscriptionUuid = Annotated[UUID, Path(description="The webhook subscription's UUID")]


@router.get(
    "", response_model=SubscriptionListResponse, responses=error_responses(), summary="List Webhook Subscriptions",
    operation_id="listWebhookSubscriptions",
)
async def list_subscriptions(
    request: Request,
    params: Annotated[PageParams, Depends(page_params(max_limit=100))],
    event_type: Annotated[EventType | None, Query(description="Only the subscriptions to this event type")] = None,
    status: Annotated[Status | None, Query(description="Only the subscriptions in this status")] = None,
) -> SubscriptionListResponse:
    """The account's webhook subscriptions, newest first, a page at a time."""
    caller = Caller.of(request)
    subscriptions, total = await service.list_page(caller.tx, caller.account, params, event_type, status)
    return SubscriptionListResponse(
        data=[SubscriptionOut.model_validate(s) for s in subscriptions], meta=params.meta(total)
    )


@router.post(
    "",
    dependencies=[Idempotent],
    response_model=SubscriptionCreatedResponse,
    status_code=status.HTTP_201_CREATED,
    responses=write_error_responses(),
    summary="Create Webhook Subscription",
    operation_id="createWebhookSubscription",
)
async def create_subscription(
    body: SubscriptionCreate, request: Request
) -> SubscriptionCreatedResponse:
    """The answer holds the signing secret, generated when none is given; it is never shown again."""
    caller = Caller.of(request)
    subscription = await service.create(caller.tx, caller.account, body, request.app.state.settings)
    return SubscriptionCreatedResponse(data=SubscriptionCreated.model_validate(subscription))


@router.get(
    "/{uuid}",
    response_model=SubscriptionResponse,
    responses=error_responses(SubscriptionNotFound),
    summary="Show Webhook Subscription",
    operation_id="getWebhookSubscription",
)
async def get_subscription(uuid: SubscriptionUuid, request: Request) -> SubscriptionResponse:
    """The subscription with this UUID (its secret is never shown again); 404 (80300) when the account
    has none."""
    caller = Caller.of(request)
    return SubscriptionResponse(data=SubscriptionOut.model_validate(await service.get(caller.tx, caller.account, uuid)))


@router.put(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=SubscriptionResponse,
    responses=write_error_responses(SubscriptionNotFound),
    summary="Update Webhook Subscription",
    operation_id="updateWebhookSubscription",
)
async def update_subscription(
    uuid: SubscriptionUuid, body: SubscriptionUpdate, request: Request
) -> SubscriptionResponse:
    """name, url and status; event_type and secret cannot be changed. Setting status ACTIVE again
    sends the subscription's pending deliveries now."""
    caller = Caller.of(request)
    subscription = await service.update(caller.tx, caller.account, uuid, body, request.app.state.settings)
    return SubscriptionResponse(data=SubscriptionOut.model_validate(subscription))


@router.delete(
    "/{uuid}",
    response_model=DeletedResponse,
    responses=write_error_responses(SubscriptionNotFound),
    summary="Delete Webhook Subscription",
    operation_id="deleteWebhookSubscription",
)
async def delete_subscription(uuid: SubscriptionUuid, request: Request) -> DeletedResponse:
    """Deletes the subscription and its deliveries, pending ones included: nothing more is sent to its
    url."""
    caller = Caller.of(request)
    await service.delete(caller.tx, caller.account, uuid)
    return DeletedResponse()


def _delivery_out(row: Delivery) -> DeliveryOut:
    return DeliveryOut(
        uuid=row.uuid,
        id=row.uuid,
        event_id=row.event_uuid,
        event_type=row.event_type,
        state=row.state,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_response_body=row.last_response_body,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


@router.get(
    "/{uuid}/deliveries",
    response_model=DeliveryListResponse,
    responses=error_responses(SubscriptionNotFound),
    summary="List Webhook Deliveries",
    operation_id="listWebhookDeliveries",
)
async def list_deliveries(
    uuid: SubscriptionUuid,
    request: Request,
    params: Annotated[PageParams, Depends(page_params(max_limit=100))],
) -> DeliveryListResponse:
    """Newest first: each event sent to this subscription, its attempts and state."""
    caller = Caller.of(request)
    rows, total = await service.list_deliveries(caller.tx, caller.account, uuid, params)
    return DeliveryListResponse(data=[_delivery_out(row) for row in rows], meta=params.meta(total))


@router.post(
    "/{uuid}/deliveries/{delivery_id}/retry",
    dependencies=[Idempotent],
    response_model=DeliveryResponse,
    responses=write_error_responses(SubscriptionNotFound, DeliveryNotFound),
    summary="Retry Webhook Delivery",
    operation_id="retryWebhookDelivery",
)
async def retry_delivery(
    uuid: SubscriptionUuid,
    delivery_id: Annotated[UUID, Path(description="The delivery's UUID (its `uuid` in the deliveries list)")],
    request: Request,
) -> DeliveryResponse:
    """Sends the delivery again now (after any older pending delivery of the subscription)."""
    caller = Caller.of(request)
    delivery = await service.retry_delivery(caller.tx, caller.account, uuid, delivery_id)
    return DeliveryResponse(data=_delivery_out(delivery))
