"""Webhook verification against deliveries Footfall really sent, and Leat's documented shapes."""

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from footfall_client import Client, Page, Visit, WebhookVerificationError, webhooks
from footfall_client.models import Page as PageModel


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def wait_for(received, count):
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(received) >= count


@pytest.mark.parametrize("secret", [None, "a-leat-receiver-secret"])
def test_verify_checks_deliveries_footfall_sent(footfall, receiver, secret):
    base_url, demo = footfall
    url, received = receiver
    with Client(base_url, demo["token"]) as client:
        subscription = client.webhook_subscriptions.create("verify", "visit_created", url, secret=secret)
        secret = subscription.secret
        visit = client.visits.create(demo["contacts"][0], demo["shops"][0], source="verified")
        wait_for(received, 1)
        client.webhook_subscriptions.delete(subscription.uuid)
    headers, body = received[0]
    event = webhooks.verify(headers, body, secret)
    assert event["type"] == "visit_created" and event["data"]["uuid"] == visit.uuid
    leat_only = {k: v for k, v in headers.items() if not k.lower().startswith("webhook-")}
    assert webhooks.verify(leat_only, body, secret)["data"]["source"] == "verified"
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(headers, body + b" ", secret)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(leat_only, body, secret + "x")
    with pytest.raises(WebhookVerificationError):
        webhooks.verify({}, body, secret)


def test_verify_refuses_an_old_timestamp():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"type": "visit_created", "data": {}}'
    old = int(time.time()) - 3600
    signature = base64.b64encode(hmac.new(b"k" * 32, f"msg_1.{old}.".encode() + body, hashlib.sha256).digest())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(old), "webhook-signature": f"v1,{signature.decode()}"}
    with pytest.raises(WebhookVerificationError, match="too old"):
        webhooks.verify(headers, body, secret)
    assert webhooks.verify(headers, body, secret, tolerance=7200)["type"] == "visit_created"


# The examples of Leat's Visits API page, their trailing commas removed.
LEAT_LIST = """{"data": [{"uuid": "87824d97-a0a0-4764-9cd2-9df88579fd47", "contact": {"uuid":
"6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92", "email": "spongebob@bikinibottom.sea"}, "external_id":
"1a10fef3-cbee-47cb-af4c-8bfbd09d88af", "source": "Website", "starts_at": "2001-01-23T00:00:00+00:00",
"ends_at": "2002-02-24T00:00:00+00:00", "created_at": "2025-04-07T13:47:34+00:00"}, {"uuid":
"af0078fb-39d4-4ffe-a9a8-2b86edd6f71e", "contact": {"uuid": "3da1b8ed-161e-4733-909d-fc3e65205be3", "email":
"mrkrabs@bikinibottom.sea"}, "external_id": "f1e86b94-eb91-4f20-88ec-67d6cb68f034", "source": "Kiosk", "starts_at":
"2024-05-01T20:00:00+00:00", "ends_at": "2024-05-01T22:30:00+00:00", "created_at": "2024-04-25T13:35:09+00:00"}],
"meta": {"current_page": 1, "last_page": 1, "per_page": 30, "total": 5}}"""
LEAT_SHOW = """{"data": {"uuid": "1e32b995-b339-4da8-93a1-f2783b2c80c4", "contact": {"uuid":
"6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92", "email": "spongebob@bikinibottom.sea"}, "external_id":
"b100ce2c-6abb-4670-b416-abe41bf680c0", "source": "Kiosk", "starts_at": "2001-01-23T00:00:00+00:00", "ends_at":
"2002-02-24T00:00:00+00:00", "created_at": "2025-04-07T13:47:34+00:00"}, "meta": []}"""


def test_leats_documented_answers_parse():
    page = PageModel.from_json(json.loads(LEAT_LIST), Visit.from_json)
    assert isinstance(page, Page) and (page.current_page, page.last_page, page.per_page, page.total) == (1, 1, 30, 5)
    assert [v.source for v in page.items] == ["Website", "Kiosk"]
    assert page.items[1].ends_at == datetime(2024, 5, 1, 22, 30, tzinfo=UTC)
    assert page.items[0].contact.email == "spongebob@bikinibottom.sea"
    visit = Visit.from_json(json.loads(LEAT_SHOW)["data"])
    assert visit.uuid == "1e32b995-b339-4da8-93a1-f2783b2c80c4" and visit.starts_at.year == 2001
