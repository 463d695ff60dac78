from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Row, and_, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from footfall.db import Tx
from footfall.models import WebhookDelivery, WebhookEvent, WebhookSubscription

Delivery = WebhookDelivery
Subscription = WebhookSubscription
Event = WebhookEvent


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, subscription: Subscription) -> Subscription:
        self.session.add(subscription)
        await self.session.flush()
        return subscription

    async def get(self, account_id: int, uuid: UUID) -> Subscription | None:
        return await self.session.scalar(
            select(Subscription).where(Subscription.account_id == account_id, Subscription.uuid == uuid)
        )

    def _filtered(self, statement, account_id: int, event_type: str | None, status: str | None):
        statement = statement.where(Subscription.account_id == account_id)
        if event_type is not None:
            statement = statement.where(Subscription.event_type == event_type)
        if status is not None:
            statement = statement.where(Subscription.status == status)
        return statement

    async def count(self, account_id: int, event_type: str | None, status: str | None) -> int:
        statement = self._filtered(select(func.count()).select_from(Subscription), account_id, event_type, status)
        return await self.session.scalar(statement) or 0

    async def page(
        self, account_id: int, event_type: str | None, status: str | None, limit: int, offset: int
    ) -> Sequence[Subscription]:
        statement = self._filtered(select(Subscription), account_id, event_type, status)
        statement = statement.order_by(Subscription.created_at.desc(), Subscription.id.desc()).limit(limit).offset(offset)
        return (await self.session.scalars(statement)).all()

    async def update(self, subscription: Subscription, values: dict[str, Any]) -> Subscription:
        for key, value in values.items():
            setattr(subscription, key, value)
        await self.session.flush()
        return subscription

    async def delete(self, subscription: Subscription) -> None:
        await self.session.execute(delete(Subscription).where(Subscription.id == subscription.id))


class OutboxRepository:
    """Events and their deliveries, written in the transaction of the change they report: a Tx, as
    on the visits routes a DriverTx on PostgreSQL."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def active_subscription_ids(self, account_id: int, event_type: str) -> list[int]:
        return [row[0] for row in await self.tx.fetch(_ACTIVE_IDS, {"account_id": account_id, "event_type": event_type})]

    async def add_events(self, events: list[dict[str, Any]], subscription_ids: Sequence[int], due: datetime) -> None:
        event_ids = [row[0] for row in await self.tx.insert_many_returning(_INSERT_EVENT, events)]
        await self.tx.executemany(
            _INSERT_DELIVERY,
            [
                {"uuid": uuid4(), "subscription_id": sid, "event_id": event_id, "next_attempt_at": due,
                 "created_at": due}
                for event_id in event_ids
                for sid in subscription_ids
            ],
        )


_subscriptions = Subscription.__table__.c
def _active_ids(account_id, event_type):
    """The ids of the account's ACTIVE subscriptions to the event type."""
    return select(_subscriptions.id).where(
        _subscriptions.account_id == account_id,
        _subscriptions.event_type == event_type,
        _subscriptions.status == "ACTIVE",
    )


_ACTIVE_IDS = _active_ids(bindparam("account_id"), bindparam("event_type"))


def subscribed(account_id, event_type: str):
    """EXISTS an ACTIVE subscription of the account to the event type: for a write's own lookup to
    ask in passing, so an account without webhooks costs no outbox query."""
    return _active_ids(account_id, event_type).exists()


_INSERT_EVENT = (
    Event.__table__.insert()
    .values({name: bindparam(name) for name in ("uuid", "account_id", "type", "body", "created_at")})
    .returning(Event.__table__.c.id, sort_by_parameter_order=True)
)
_INSERT_DELIVERY = Delivery.__table__.insert().values(
    {
        **{name: bindparam(name) for name in ("uuid", "subscription_id", "event_id", "next_attempt_at", "created_at")},
        "state": "pending",
        "attempts": 0,
    }
)


_delivery_columns = (
    Delivery.id,
    Delivery.uuid,
    Delivery.state,
    Delivery.attempts,
    Delivery.last_status_code,
    Delivery.last_error,
    Delivery.last_response_body,
    Delivery.last_attempt_at,
    Delivery.next_attempt_at,
    Delivery.delivered_at,
    Delivery.created_at,
    Event.uuid.label("event_uuid"),
    Event.type.label("event_type"),
)


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self, subscription_id: int) -> int:
        statement = select(func.count()).select_from(Delivery).where(Delivery.subscription_id == subscription_id)
        return await self.session.scalar(statement) or 0

    async def page(self, subscription_id: int, limit: int, offset: int) -> Sequence[Row]:
        statement = (
            select(*_delivery_columns)
            .join(Event, Event.id == Delivery.event_id)
            .where(Delivery.subscription_id == subscription_id)
            .order_by(Delivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return (await self.session.execute(statement)).all()

    async def get(self, subscription_id: int, uuid: UUID) -> Row | None:
        statement = (
            select(*_delivery_columns)
            .join(Event, Event.id == Delivery.event_id)
            .where(Delivery.subscription_id == subscription_id, Delivery.uuid == uuid)
        )
        return (await self.session.execute(statement)).first()

    async def make_due(self, id: int, now: datetime, *, reopen: bool) -> None:
        """Due now; `reopen` also turns a failed delivery back to pending for one more attempt."""
        values: dict[str, Any] = {"next_attempt_at": now}
        if reopen:
            values["state"] = "pending"
        await self.session.execute(update(Delivery).where(Delivery.id == id).values(values))

    async def resume_pending(self, subscription_id: int, now: datetime) -> None:
        await self.session.execute(
            update(Delivery)
            .where(Delivery.subscription_id == subscription_id, Delivery.state == "pending")
            .values(next_attempt_at=now)
        )

    async def claim(self, now: datetime, lease_until: datetime, token: UUID, limit: int) -> Sequence[Row]:
        """Leases due deliveries, each the oldest pending one of an ACTIVE subscription.

        Only the head of a subscription's queue is ever claimed, and a claimed one stays the head
        until it is recorded, so one subscription's events go out one at a time, in order, from
        whichever worker holds the lease. SKIP LOCKED lets PostgreSQL workers claim side by side;
        SQLite's write transactions are serial anyway.
        """
        older = aliased(Delivery)
        due = (
            select(Delivery.id)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(
                Delivery.state == "pending",
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
                Subscription.status == "ACTIVE",
                ~select(older.id)
                .where(
                    and_(older.subscription_id == Delivery.subscription_id, older.state == "pending", older.id < Delivery.id)
                )
                .exists(),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(of=Delivery, skip_locked=True)
        )
        ids = (await self.session.scalars(due)).all()
        if not ids:
            return []
        await self.session.execute(
            update(Delivery).where(Delivery.id.in_(ids)).values(lease_until=lease_until, lease_token=token)
        )
        statement = (
            select(
                Delivery.id,
                Delivery.attempts,
                Event.uuid.label("event_uuid"),
                Event.body,
                Subscription.id.label("subscription_id"),
                Subscription.url,
                Subscription.secret,
            )
            .join(Event, Event.id == Delivery.event_id)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        )
        return (await self.session.execute(statement)).all()

    async def record(self, id: int, token: UUID, values: dict[str, Any]) -> bool:
        """Writes an attempt's outcome if this worker still holds the lease; False when it lapsed."""
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.id == id, Delivery.lease_token == token)
            .values(lease_until=None, lease_token=None, attempts=Delivery.attempts + 1, **values)
        )
        return result.rowcount == 1

    async def subscription_succeeded(self, subscription_id: int) -> None:
        await self.session.execute(
            update(Subscription).where(Subscription.id == subscription_id).values(consecutive_failures=0)
        )

    async def subscription_failed(self, subscription_id: int, max_failures: int) -> None:
        """Counts a delivery that ran out of attempts; the subscription goes INACTIVE at max_failures."""
        await self.session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id)
            .values(consecutive_failures=Subscription.consecutive_failures + 1)
        )
        await self.session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.consecutive_failures >= max_failures)
            .values(status="INACTIVE")
        )

    async def deactivate(self, subscription_id: int) -> None:
        await self.session.execute(update(Subscription).where(Subscription.id == subscription_id).values(status="INACTIVE"))
