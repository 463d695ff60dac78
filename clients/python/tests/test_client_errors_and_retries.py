"""Error answers become exceptions; retries are safe (Idempotency-Key) and honour Retry-After."""

import json
import uuid

import pytest

from footfall_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    FootfallError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)


def fast(client):
    client._policy.sleep_scale = 0.01  # the waits of a test, not of production
    return client


def test_each_error_status_has_its_exception(footfall):
    base_url, demo = footfall
    with Client(base_url, "ffpat_wrong") as client, pytest.raises(AuthenticationError) as error:
        client.visits.list()
    assert (error.value.status_code, error.value.code, error.value.message) == (401, 90401, "Unauthenticated.")
    with Client(base_url, demo["read_only_token"]) as client, pytest.raises(PermissionDeniedError) as error:
        client.contacts.create("ro@x.sea")
    assert error.value.code == 90403
    with Client(base_url, demo["token"]) as client:
        with pytest.raises(NotFoundError) as error:
            client.visits.get(str(uuid.uuid4()))
        assert error.value.code == 91001
        with pytest.raises(NotFoundError) as error:
            client.visits.create(str(uuid.uuid4()), demo["shops"][0])
        assert (error.value.code, error.value.message) == (55031, "Contact not found.")
        with pytest.raises(ValidationError) as error:
            client.visits.create(demo["contacts"][0], demo["shops"][0], starts_at="someday")
        assert error.value.code == 1003 and list(error.value.errors) == ["starts_at"]
        client.visits.create(demo["contacts"][0], demo["shops"][0], external_id="err-1", source="A")
        with pytest.raises(ConflictError) as error:
            client.visits.create(demo["contacts"][0], demo["shops"][0], external_id="err-1", source="B")
        assert error.value.code == 91002
        # A server without webhook subscriptions (Leat) answers its own 404: an error, not a crash.
        with pytest.raises(NotFoundError):
            client.webhook_subscriptions.get(str(uuid.uuid4()))


def test_429_and_5xx_and_foreign_bodies(proxy, footfall):
    _, demo = footfall
    with fast(Client(proxy.url, demo["token"], max_retries=0)) as client:
        proxy.plan = [("status", 429, {"Retry-After": "7", "content-type": "application/json"},
                       json.dumps({"status_code": 429, "code": 90429, "message": "Too many requests."}).encode())]
        with pytest.raises(RateLimitError) as error:
            client.visits.list()
        assert error.value.retry_after == 7 and error.value.code == 90429
        proxy.plan = [("status", 500, {}, b'{"status_code": 500, "code": 90500, "message": "Server error."}')]
        with pytest.raises(ServerError) as error:
            client.shops.list()
        assert error.value.code == 90500
        proxy.plan = [("status", 502, {"content-type": "text/html"}, b"<html>Bad gateway</html>")]
        with pytest.raises(ServerError) as error:
            client.shops.list()
        assert error.value.status_code == 502 and error.value.code is None and "Bad gateway" in error.value.body
        proxy.plan = [("status", 418, {}, b"teapot")]
        with pytest.raises(FootfallError) as error:
            client.shops.list()
        assert type(error.value) is FootfallError and error.value.status_code == 418


def test_reads_are_retried_through_5xx_429_and_broken_connections(proxy, footfall):
    _, demo = footfall
    with fast(Client(proxy.url, demo["token"], max_retries=3)) as client:
        proxy.plan = [("status", 503, {}), ("status", 429, {"Retry-After": "1"}), ("drop",)]
        assert len(client.shops.list()) == 3
        assert len(proxy.seen) == 4
        proxy.plan = [("status", 503, {})] * 4
        with pytest.raises(ServerError):
            client.shops.list()


def test_a_create_whose_answer_was_lost_is_retried_without_a_second_visit(proxy, footfall):
    base_url, demo = footfall
    with fast(Client(proxy.url, demo["token"], max_retries=3)) as client:
        before = client.visits.list(limit=0).total
        proxy.plan = [("drop",), ("status", 503, {})]  # the first create reached Footfall; its answer did not
        visit = client.visits.create(demo["contacts"][3], demo["shops"][0], source="lost-answer")
        assert client.visits.list(limit=0).total == before + 1
        keys = {headers.get("Idempotency-Key") for method, _, headers in proxy.seen if method == "POST"}
        assert len(keys) == 1 and None not in keys  # one key, generated once, sent on every attempt
        assert client.visits.get(visit.uuid).source == "lost-answer"
        # A caller's own key is used as given.
        proxy.plan = [("drop",)]
        again = client.visits.update(visit.uuid, source="mine", idempotency_key="my-key-1")
        assert again.source == "mine" and proxy.seen[-1][2]["Idempotency-Key"] == "my-key-1"


async def test_the_async_client_retries_too(proxy, footfall):
    _, demo = footfall
    async with AsyncClient(proxy.url, demo["token"], max_retries=2) as client:
        client._policy.sleep_scale = 0.01
        proxy.plan = [("drop",), ("status", 502, {})]
        visit = await client.visits.create(demo["contacts"][4], demo["shops"][1], source="async-retry")
        assert (await client.visits.get(visit.uuid)).source == "async-retry"
        posts = [h.get("Idempotency-Key") for m, _, h in proxy.seen if m == "POST"]
        assert len(posts) == 3 and len(set(posts)) == 1
