"""X-Request-Id: taken from the request when sane, made otherwise, answered on every response
(errors of the middlewares included) and carried onto the webhook deliveries the request causes."""

import re

import pytest

from footfall.testing.receiver import Receiver
from tests.webhooks.test_delivery import create_visit, drain, subscribe, worker_for

MADE = re.compile(r"^[0-9a-f]{32}$")


async def test_a_sane_id_is_answered_back(client, tenant):
    response = await client.get("/visits", headers={**tenant.headers, "X-Request-Id": "till-7:4f2a-b9"})
    assert response.headers["x-request-id"] == "till-7:4f2a-b9"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "new\\nline", "caf\u00e9"])
async def test_an_absent_or_insane_id_is_replaced_by_a_new_one(client, tenant, given):
    headers = dict(tenant.headers)
    if given is not None:
        headers["X-Request-Id"] = given.encode("utf-8") if not given.isascii() else given
    first = await client.get("/visits", headers=headers)
    second = await client.get("/visits", headers=headers)
    assert MADE.match(first.headers["x-request-id"]) and first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_errors_carry_the_id_too(client, tenant):
    for response in (
        await client.get("/nothing", headers={**tenant.headers, "X-Request-Id": "r-404"}),
        await client.get("/visits", headers={"X-Request-Id": "r-401"}),
        await client.post("/visits", content=b"{}", headers={**tenant.headers, "X-Request-Id": "r-415",
                                                             "Content-Type": "text/plain"}),
    ):
        assert response.status_code >= 400 and response.headers["x-request-id"].startswith("r-")


async def test_a_delivery_carries_the_id_of_the_request_that_caused_it(app, client, tenant):
    with Receiver() as receiver:
        await subscribe(client, tenant, receiver.url("/traced"))
        await create_visit(client, tenant)  # no id given: one is made
        response = await client.post("/visits",
                                     json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
                                     headers={**tenant.headers, "X-Request-Id": "pos-till-7-000123"})
        worker = worker_for(app)
        try:
            await drain(worker)
        finally:
            await worker.close()
        received = receiver.on("/traced")
    assert response.headers["x-request-id"] == "pos-till-7-000123"
    ids = [delivery.headers["x-request-id"] for delivery in received]
    assert len(ids) == 2 and MADE.match(ids[0]) and ids[1] == "pos-till-7-000123"
