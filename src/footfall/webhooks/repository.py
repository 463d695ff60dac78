from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import Integer, bindparam, case, delete, func, insert, literal, or_, select, update

from footfall.db import Statement, Tx, binds, contains, paged, per_dialect
from footfall.tables import webhook_deliveries, webhook_events, webhook_subscriptions

_w, _e, _d = webhook_subscriptions.c, webhook_events.c, webhook_deliveries.c


class Subscription(NamedTuple):
    id: int
    uuid: UUID
    account_id: int
    name: str
    event_type: str
    url: str
    secret: str
    status: str
    consecutive_failures: int
    created_at: datetime


class Delivery(NamedTuple):
    """A delivery as its log shows it."""

    id: int
    uuid: UUID
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_response_body: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    event_uuid: UUID
    event_type: str


class ClaimedDelivery(NamedTuple):
    """A delivery leased to a worker: what sending it needs."""

    id: int
    attempts: int
    event_uuid: UUID
    body: str
    request_id: str | None  # of the request that caused the event
    subscription_id: int
    url: str
    secret: str


def _active_ids(account_id: Any, event_type: Any) -> Any:
    """The ids of the account's ACTIVE subscriptions to the event type."""
    return select(_w.id).where(_w.account_id == account_id, _w.event_type == event_type, _w.status == "ACTIVE")


def subscribed(account_id: Any, event_type: str) -> Any:
    """EXISTS an ACTIVE subscription of the account to the event type: for a write's own lookup to
    ask in passing, so an account without webhooks costs no outbox query."""
    return _active_ids(account_id, event_type).exists()


_DELIVERY = (
    _d.id, _d.uuid, _d.state, _d.attempts, _d.last_status_code, _d.last_error, _d.last_response_body,
    _d.last_attempt_at, _d.next_attempt_at, _d.delivered_at, _d.created_at,
    _e.uuid.label("event_uuid"), _e.type.label("event_type"),
)
# The fields of an attempt's outcome that a PUT-like update sets only when given (see record()).
_OUTCOME_KEPT_UNLESS_GIVEN = ("state", "next_attempt_at", "delivered_at")
_OUTCOME_SET = ("last_attempt_at", "last_status_code", "last_error", "last_response_body")


@dataclass(frozen=True)
class WebhookStatements:
    insert_subscription: Statement[Subscription]
    get_subscription: Statement[Subscription]
    count_subscriptions: Statement
    subscription_page: Statement[Subscription]
    update_subscription: Statement[Subscription]
    delete_subscription: Statement
    active_ids: Statement
    insert_event: Statement
    insert_delivery: Statement
    count_deliveries: Statement
    delivery_page: Statement[Delivery]
    get_delivery: Statement[Delivery]
    make_due: Statement
    resume_pending: Statement
    lease_due: Statement
    leased: Statement[ClaimedDelivery]
    record: Statement
    subscription_succeeded: Statement
    subscription_failed: Statement
    deactivate: Statement
    erase_from_events: Statement
    erase_from_deliveries: Statement


def _build(dialect: str) -> WebhookStatements:
    statement = partial(Statement, dialect=dialect)
    account = _w.account_id == bindparam("account_id")
    # Optional filters: a parameter given as None matches every row.
    event_type = bindparam("event_type", type_=_w.event_type.type)
    status = bindparam("status", type_=_w.status.type)
    filtered = (account, or_(event_type.is_(None), _w.event_type == event_type),
                or_(status.is_(None), _w.status == status))
    # Parameters named apart from the columns of an UPDATE: SQLAlchemy reads a parameter named like
    # a column as a SET of it.
    subscription_id = _w.id == bindparam("subscription_id")
    with_event = webhook_deliveries.join(webhook_events, _e.id == _d.event_id)
    now = bindparam("now", type_=_d.next_attempt_at.type)

    # Leases due deliveries, each the oldest pending one of an ACTIVE subscription: only the head of
    # a subscription's queue is ever claimed, and a claimed one stays the head until it is recorded,
    # so one subscription's events go out one at a time, in order, from whichever worker holds the
    # lease. SKIP LOCKED lets PostgreSQL workers claim side by side; SQLite's writes are serial.
    due, older = webhook_deliveries.alias("due"), webhook_deliveries.alias("older")
    due_ids = (
        select(due.c.id)
        .join(webhook_subscriptions, _w.id == due.c.subscription_id)
        .where(
            due.c.state == "pending",
            due.c.next_attempt_at <= now,
            due.c.lease_until.is_(None) | (due.c.lease_until < now),
            _w.status == "ACTIVE",
            ~select(older.c.id)
            .where(older.c.subscription_id == due.c.subscription_id, older.c.state == "pending",
                   older.c.id < due.c.id)
            .exists(),
        )
        .order_by(due.c.next_attempt_at, due.c.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(of=due, skip_locked=True)
    )
    token = bindparam("token", type_=_d.lease_token.type)

    # Erasure: the events that hold a contact (its object's `uuid` as the JSON text given as
    # `owner`): their email field set to null and the email cut out of any other field of theirs (a
    # source that holds it); what receivers answered to their deliveries dropped.
    owner = bindparam("owner", type_=_e.body.type)
    owned_events = select(_e.id).where(_e.account_id == bindparam("account_id"), contains(dialect, _e.body, owner))
    erase_from_events = (
        update(webhook_events)
        .where(_e.id.in_(owned_events.scalar_subquery()))
        .values(body=func.replace(
            func.replace(_e.body, bindparam("email_field", type_=_e.body.type), '"email":null'),
            bindparam("email_text", type_=_e.body.type), "",
        ))
    )
    erase_from_deliveries = (
        update(webhook_deliveries)
        .where(_d.event_id.in_(owned_events.scalar_subquery()), _d.last_response_body.is_not(None))
        .values(last_response_body=None)
    )

    return WebhookStatements(
        erase_from_events=statement(erase_from_events, bulk=True),
        erase_from_deliveries=statement(erase_from_deliveries, bulk=True),
        insert_subscription=statement(
            insert(webhook_subscriptions)
            .values(binds(webhook_subscriptions, "uuid", "account_id", "name", "event_type", "url", "secret",
                          "status", "consecutive_failures", "created_at"))
            .returning(*webhook_subscriptions.c),
            Subscription,
        ),
        get_subscription=statement(
            select(*webhook_subscriptions.c).where(account, _w.uuid == bindparam("uuid")), Subscription
        ),
        count_subscriptions=statement(select(func.count().label("count")).select_from(webhook_subscriptions)
                                      .where(*filtered)),
        subscription_page=statement(
            paged(select(*webhook_subscriptions.c).where(*filtered).order_by(_w.created_at.desc(), _w.id.desc())),
            Subscription,
        ),
        # Each field set when given (not None), kept otherwise: one statement for every update.
        update_subscription=statement(
            update(webhook_subscriptions)
            .where(subscription_id)
            .values({
                name: func.coalesce(bindparam(f"new_{name}", type_=_w[name].type), _w[name])
                for name in ("name", "url", "status", "consecutive_failures")
            })
            .returning(*webhook_subscriptions.c),
            Subscription,
        ),
        delete_subscription=statement(delete(webhook_subscriptions).where(subscription_id)),
        active_ids=statement(_active_ids(bindparam("account_id", type_=_w.account_id.type), event_type)),
        insert_event=statement(
            insert(webhook_events).values(binds(webhook_events, "uuid", "account_id", "type", "body", "created_at",
                                                "request_id"))
        ),
        # A delivery of the event given by uuid: the events of a batch go in with one executemany,
        # and need not hand their ids back.
        insert_delivery=statement(
            insert(webhook_deliveries).from_select(
                ["uuid", "subscription_id", "event_id", "state", "attempts", "next_attempt_at", "created_at"],
                select(
                    bindparam("delivery_uuid", type_=_d.uuid.type),
                    bindparam("subscription_id", type_=_d.subscription_id.type),
                    _e.id,
                    literal("pending", _d.state.type),
                    literal(0, _d.attempts.type),
                    now,
                    now,
                ).where(_e.uuid == bindparam("event_uuid", type_=_e.uuid.type)),
            )
        ),
        count_deliveries=statement(
            select(func.count().label("count")).select_from(webhook_deliveries)
            .where(_d.subscription_id == bindparam("subscription_id"))
        ),
        delivery_page=statement(
            paged(select(*_DELIVERY).select_from(with_event)
                  .where(_d.subscription_id == bindparam("subscription_id")).order_by(_d.id.desc())),
            Delivery,
        ),
        get_delivery=statement(
            select(*_DELIVERY)
            .select_from(with_event)
            .where(_d.subscription_id == bindparam("subscription_id"), _d.uuid == bindparam("uuid")),
            Delivery,
        ),
        # Due now; `reopen` also turns a failed or succeeded delivery back to pending for one more attempt.
        make_due=statement(
            update(webhook_deliveries)
            .where(_d.id == bindparam("delivery_id"))
            .values(next_attempt_at=now, state=func.coalesce(bindparam("new_state", type_=_d.state.type), _d.state))
        ),
        resume_pending=statement(
            update(webhook_deliveries)
            .where(_d.subscription_id == bindparam("subscription_id"), _d.state == "pending")
            .values(next_attempt_at=now),
            bulk=True,
        ),
        lease_due=statement(
            update(webhook_deliveries)
            .where(_d.id.in_(due_ids.scalar_subquery()))
            .values(lease_until=bindparam("lease_until", type_=_d.lease_until.type), lease_token=token)
        ),
        leased=statement(
            select(_d.id, _d.attempts, _e.uuid.label("event_uuid"), _e.body, _e.request_id,
                   _w.id.label("subscription_id"), _w.url, _w.secret)
            .select_from(with_event.join(webhook_subscriptions, _w.id == _d.subscription_id))
            .where(_d.lease_token == token)
            .order_by(_d.id),
            ClaimedDelivery,
        ),
        # An attempt's outcome, written only while the lease is still this worker's.
        record=statement(
            update(webhook_deliveries)
            .where(_d.id == bindparam("delivery_id"), _d.lease_token == token)
            .values(
                lease_until=None,
                lease_token=None,
                attempts=_d.attempts + 1,
                **{name: bindparam(f"new_{name}", type_=_d[name].type) for name in _OUTCOME_SET},
                **{name: func.coalesce(bindparam(f"new_{name}", type_=_d[name].type), _d[name])
                   for name in _OUTCOME_KEPT_UNLESS_GIVEN},
            )
        ),
        subscription_succeeded=statement(
            update(webhook_subscriptions).where(subscription_id).values(consecutive_failures=0)
        ),
        # Counts a delivery that ran out of attempts; the subscription goes INACTIVE at max_failures.
        subscription_failed=statement(
            update(webhook_subscriptions)
            .where(subscription_id)
            .values(
                consecutive_failures=_w.consecutive_failures + 1,
                status=case(
                    (_w.consecutive_failures + 1 >= bindparam("max_failures", type_=_w.consecutive_failures.type),
                     "INACTIVE"),
                    else_=_w.status,
                ),
            )
        ),
        deactivate=statement(update(webhook_subscriptions).where(subscription_id).values(status="INACTIVE")),
    )


STATEMENTS = per_dialect(_build)


class SubscriptionRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def insert(self, values: dict[str, Any]) -> Subscription:
        return await self.tx.fetchone(self.statements.insert_subscription, values)

    async def get(self, account_id: int, uuid: UUID) -> Subscription | None:
        return await self.tx.fetchrow(self.statements.get_subscription, {"account_id": account_id, "uuid": uuid})

    async def count(self, account_id: int, event_type: str | None, status: str | None) -> int:
        params = {"account_id": account_id, "event_type": event_type, "status": status}
        return await self.tx.fetchval(self.statements.count_subscriptions, params)

    async def page(
        self, account_id: int, event_type: str | None, status: str | None, limit: int, offset: int
    ) -> list[Subscription]:
        params = {"account_id": account_id, "event_type": event_type, "status": status, "limit": limit,
                  "offset": offset}
        return await self.tx.fetch(self.statements.subscription_page, params)

    async def update(self, id: int, changes: dict[str, Any]) -> Subscription:
        """Sets the fields given (name, url, status, consecutive_failures); the subscription as it now is."""
        params = {f"new_{name}": changes.get(name) for name in ("name", "url", "status", "consecutive_failures")}
        return await self.tx.fetchone(self.statements.update_subscription, {"subscription_id": id, **params})

    async def delete(self, id: int) -> None:
        await self.tx.execute(self.statements.delete_subscription, {"subscription_id": id})


class OutboxRepository:
    """Events and their deliveries, written in the transaction of the change they report."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def erase(self, account_id: int, owner: str, email_field: str, email_text: str) -> None:
        """In the account's events that hold `owner` (see contacts.service.erase), `email_field` becomes
        `"email":null` and `email_text` is cut out of what is left (pending deliveries send that); what
        receivers answered to their deliveries is dropped whole (a logged answer is cut at 4 KiB,
        maybe inside the email)."""
        await self.tx.execute(self.statements.erase_from_deliveries, {"account_id": account_id, "owner": owner})
        await self.tx.execute(self.statements.erase_from_events, {
            "account_id": account_id, "owner": owner, "email_field": email_field, "email_text": email_text})

    async def active_subscription_ids(self, account_id: int, event_type: str) -> list[int]:
        rows = await self.tx.fetch(self.statements.active_ids, {"account_id": account_id, "event_type": event_type})
        return [row.id for row in rows]

    async def add_events(self, events: list[dict[str, Any]], deliveries: list[dict[str, Any]]) -> None:
        """Events (uuid, account_id, type, body, created_at), then their deliveries (delivery_uuid,
        subscription_id, event_uuid, now)."""
        await self.tx.executemany(self.statements.insert_event, events)
        await self.tx.executemany(self.statements.insert_delivery, deliveries)


class DeliveryRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.statements = STATEMENTS[tx.dialect]

    async def count(self, subscription_id: int) -> int:
        return await self.tx.fetchval(self.statements.count_deliveries, {"subscription_id": subscription_id})

    async def page(self, subscription_id: int, limit: int, offset: int) -> list[Delivery]:
        params = {"subscription_id": subscription_id, "limit": limit, "offset": offset}
        return await self.tx.fetch(self.statements.delivery_page, params)

    async def get(self, subscription_id: int, uuid: UUID) -> Delivery | None:
        return await self.tx.fetchrow(self.statements.get_delivery, {"subscription_id": subscription_id, "uuid": uuid})

    async def make_due(self, id: int, now: datetime, *, reopen: bool) -> None:
        """Due now; `reopen` also turns a failed delivery back to pending for one more attempt."""
        params = {"delivery_id": id, "now": now, "new_state": "pending" if reopen else None}
        await self.tx.execute(self.statements.make_due, params)

    async def resume_pending(self, subscription_id: int, now: datetime) -> None:
        await self.tx.execute(self.statements.resume_pending, {"subscription_id": subscription_id, "now": now})

    async def claim(self, now: datetime, lease_until: datetime, token: UUID, limit: int) -> list[ClaimedDelivery]:
        """Leases up to `limit` due deliveries to `token` (see lease_due); what sending them needs."""
        params = {"now": now, "lease_until": lease_until, "token": token, "limit": limit}
        if not await self.tx.execute(self.statements.lease_due, params):
            return []
        return await self.tx.fetch(self.statements.leased, {"token": token})

    async def record(self, id: int, token: UUID, outcome: dict[str, Any]) -> bool:
        """Writes an attempt's outcome if this worker still holds the lease; False when it lapsed."""
        params = {"delivery_id": id, "token": token,
                  **{f"new_{name}": outcome.get(name) for name in (*_OUTCOME_SET, *_OUTCOME_KEPT_UNLESS_GIVEN)}}
        return await self.tx.execute(self.statements.record, params) == 1

    async def subscription_succeeded(self, subscription_id: int) -> None:
        await self.tx.execute(self.statements.subscription_succeeded, {"subscription_id": subscription_id})

    async def subscription_failed(self, subscription_id: int, max_failures: int) -> None:
        params = {"subscription_id": subscription_id, "max_failures": max_failures}
        await self.tx.execute(self.statements.subscription_failed, params)

    async def deactivate(self, subscription_id: int) -> None:
        await self.tx.execute(self.statements.deactivate, {"subscription_id": subscription_id})
