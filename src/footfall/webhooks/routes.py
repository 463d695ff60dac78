from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import Row

from footfall.errors import DeliveryNotFound, SubscriptionNotFound, error_responses, write_error_responses
from footfall.kit.dependencies import ApiRoute, Idempotent, AppSettings, CurrentAccount, Session
from footfall.kit.pagination import PageParams, page_params
from footfall.webhooks import service
from footfall.webhooks.schemas import (
    DeletedResponse,
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


@router.get(
    "", response_model=SubscriptionListResponse, responses=error_responses(), summary="List Webhook Subscriptions"
)
async def list_subscriptions(
    session: Session,
    account: CurrentAccount,
    params: Annotated[PageParams, Depends(page_params(max_limit=100))],
    event_type: Annotated[EventType | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
) -> SubscriptionListResponse:
    subscriptions, total = await service.list_page(session, account, params, event_type, status)
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
)
async def create_subscription(
    body: SubscriptionCreate, session: Session, account: CurrentAccount, settings: AppSettings
) -> SubscriptionCreatedResponse:
    """The answer holds the signing secret, generated when none is given; it is never shown again."""
    subscription = await service.create(session, account, body, settings)
    return SubscriptionCreatedResponse(data=SubscriptionCreated.model_validate(subscription))


@router.get(
    "/{uuid}",
    response_model=SubscriptionResponse,
    responses=error_responses(SubscriptionNotFound),
    summary="Show Webhook Subscription",
)
async def get_subscription(uuid: UUID, session: Session, account: CurrentAccount) -> SubscriptionResponse:
    return SubscriptionResponse(data=SubscriptionOut.model_validate(await service.get(session, account, uuid)))


@router.put(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=SubscriptionResponse,
    responses=write_error_responses(SubscriptionNotFound),
    summary="Update Webhook Subscription",
)
async def update_subscription(
    uuid: UUID, body: SubscriptionUpdate, session: Session, account: CurrentAccount, settings: AppSettings
) -> SubscriptionResponse:
    """name, url and status; event_type and secret cannot be changed. Setting status ACTIVE again
    sends the subscription's pending deliveries now."""
    subscription = await service.update(session, account, uuid, body, settings)
    return SubscriptionResponse(data=SubscriptionOut.model_validate(subscription))


@router.delete(
    "/{uuid}",
    response_model=DeletedResponse,
    responses=write_error_responses(SubscriptionNotFound),
    summary="Delete Webhook Subscription",
)
async def delete_subscription(uuid: UUID, session: Session, account: CurrentAccount) -> DeletedResponse:
    await service.delete(session, account, uuid)
    return DeletedResponse()


def _delivery_out(row: Row) -> DeliveryOut:
    return DeliveryOut(
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
)
async def list_deliveries(
    uuid: UUID,
    session: Session,
    account: CurrentAccount,
    params: Annotated[PageParams, Depends(page_params(max_limit=100))],
) -> DeliveryListResponse:
    """Newest first: each event sent to this subscription, its attempts and state."""
    rows, total = await service.list_deliveries(session, account, uuid, params)
    return DeliveryListResponse(data=[_delivery_out(row) for row in rows], meta=params.meta(total))


@router.post(
    "/{uuid}/deliveries/{delivery_id}/retry",
    dependencies=[Idempotent],
    response_model=DeliveryResponse,
    responses=write_error_responses(SubscriptionNotFound, DeliveryNotFound),
    summary="Retry Webhook Delivery",
)
async def retry_delivery(uuid: UUID, delivery_id: UUID, session: Session, account: CurrentAccount) -> DeliveryResponse:
    """Sends the delivery again now (after any older pending delivery of the subscription)."""
    return DeliveryResponse(data=_delivery_out(await service.retry_delivery(session, account, uuid, delivery_id)))
