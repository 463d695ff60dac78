"""The delivery worker: claims due deliveries from the database, sends them signed, records the outcome.

Any number of workers, in any number of processes, share the work through the database: a claim is a
lease (lease_until, lease_token) taken in one short transaction, the HTTP request runs outside any
transaction, and the outcome is written only while the lease is still this worker's. A worker killed
mid-delivery leaves a lease that lapses, and the delivery goes out again: delivery is at least once.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from uuid import UUID, uuid4

import httpx

from footfall import __version__, metrics
from footfall.config import Settings
from footfall.db import Database
from footfall.kit import requestid
from footfall.kit.time import pause, utcnow
from footfall.webhooks.repository import ClaimedDelivery, DeliveryRepository
from footfall.webhooks.signing import signature_headers
from footfall.webhooks.urls import RefusedUrl, resolve_target

log = logging.getLogger("footfall.webhooks")

RESPONSE_BODY_LIMIT = 4096  # bytes of a receiver's answer read and kept


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None
    body: str | None = None
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        # Redirects are not followed: a 3xx is a failed attempt, as Standard Webhooks advises.
        self.client = client or httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout)

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Delivers until `stop` is set; what is in flight then is finished, not dropped."""
        failing_since: float | None = None
        while not stop.is_set():
            try:
                sent = await self.run_once()
                failing_since = None
            except Exception:
                # A database that is down or restarting: keep trying, and say so once a minute.
                if failing_since is None or time.monotonic() - failing_since > 60:
                    log.exception("webhook worker: claiming deliveries failed; retrying")
                    failing_since = time.monotonic()
                sent = 0
            if sent == 0:
                await pause(stop, self.settings.webhook_poll_interval)

    async def run_once(self) -> int:
        """Claims one batch of due deliveries, sends them side by side, records each; returns how many."""
        claimed, token = await self._claim()
        await asyncio.gather(*(self._attempt(row, token) for row in claimed))
        return len(claimed)

    async def _claim(self) -> tuple[list[ClaimedDelivery], UUID]:
        now = utcnow()
        token = uuid4()
        lease_until = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        async with self.database.transaction(write=True) as tx:
            rows = await DeliveryRepository(tx).claim(now, lease_until, token, self.settings.webhook_concurrency)
        return rows, token

    async def _attempt(self, row: ClaimedDelivery, token: UUID) -> None:
        # The delivery's log lines carry the id of the request that caused its event (each attempt
        # runs in a task of its own, so this stays in it).
        requestid.current.set(row.request_id)
        started = time.perf_counter()
        outcome = await self._send(row)
        try:
            result = await self._record(row, token, outcome)
        except Exception:
            # The lease lapses and another attempt follows: at least once, never lost.
            log.exception("webhook worker: recording delivery %s failed", row.id)
            return
        if result is None:
            return
        if metrics.current is not None:
            metrics.current.delivery_attempts.labels(result).inc()
        log.info("webhook delivery attempt", extra={
            "delivery_id": row.id, "event_uuid": str(row.event_uuid), "attempt": row.attempts + 1,
            "outcome": result, "status": outcome.status_code, "error": outcome.error,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        })

    async def _send(self, row: ClaimedDelivery) -> Outcome:
        """The attempt's outcome; never raises. Whatever keeps a delivery from being sent (a URL or
        secret stored by an older version, a body the client refuses) is a failed attempt with its
        error, retried on schedule like any other, so it neither stays pending unseen nor stops the
        batch's other deliveries."""
        try:
            return await self._post(row)
        except RefusedUrl as error:
            return Outcome(error=f"refused: {error}")
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(error=f"timeout after {self.settings.webhook_timeout:g} s")
        except Exception as error:
            # Kept as text either database takes: at most 1000 characters, no NUL and no lone
            # surrogate (PostgreSQL refuses both).
            text = f"{type(error).__name__}: {error}"[:1000].replace("\x00", "")
            return Outcome(error=text.encode("utf-8", "backslashreplace").decode("utf-8"))

    async def _post(self, row: ClaimedDelivery) -> Outcome:
        target = await resolve_target(row.url, allow_private=self.settings.webhook_allow_private_urls)
        body = row.body.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": f"Footfall-Webhooks/{__version__}",
            **signature_headers(row.secret, str(row.event_uuid), int(time.time()), body),
        }
        if row.request_id:
            headers["x-request-id"] = row.request_id
        if target.host_header:
            headers["host"] = target.host_header
        extensions = {"sni_hostname": target.server_name} if target.server_name else {}
        async with asyncio.timeout(self.settings.webhook_timeout):
            async with self.client.stream("POST", target.url, content=body, headers=headers,
                                          extensions=extensions) as response:
                kept = bytearray()
                async for chunk in response.aiter_raw():
                    kept += chunk
                    if len(kept) >= RESPONSE_BODY_LIMIT:
                        break
                return Outcome(
                    status_code=response.status_code,
                    body=bytes(kept[:RESPONSE_BODY_LIMIT]).decode("utf-8", "replace").replace("\x00", ""),
                    retry_after=parse_retry_after(response.headers.get("retry-after"), utcnow()),
                )

    async def _record(self, row: ClaimedDelivery, token: UUID, outcome: Outcome) -> str | None:
        """Writes the attempt's outcome: succeeded, retrying or failed (for good); None when the lease
        lapsed and another worker has the delivery now."""
        now = utcnow()
        values: dict[str, Any] = {
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error if outcome.error else (
                None if outcome.succeeded else f"HTTP {outcome.status_code}"
            ),
            "last_response_body": outcome.body,
        }
        schedule = self.settings.webhook_retry_schedule
        attempts = row.attempts + 1
        if outcome.succeeded:
            values |= {"state": "succeeded", "delivered_at": now}
        elif attempts < len(schedule):
            delay = schedule[attempts]
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, max(schedule)))
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        else:
            values["state"] = "failed"
        async with self.database.transaction(write=True) as tx:
            repository = DeliveryRepository(tx)
            if not await repository.record(row.id, token, values):
                return None
            if outcome.succeeded:
                await repository.subscription_succeeded(row.subscription_id)
            elif outcome.status_code == 410:
                await repository.deactivate(row.subscription_id)  # the receiver says: gone for good
            if values.get("state") == "failed":
                await repository.subscription_failed(row.subscription_id,
                                                     self.settings.webhook_max_consecutive_failures)
        return values.get("state", "retrying")
