"""`footfall webhooks listen`: the README's webhook walk-through, offline. A real `footfall serve`
delivers to the listener, which prints each delivery with both signatures verified."""

import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from footfall.app import API_PREFIX
from footfall.testing.serving import footfall_json, free_port, running_server
from footfall.webhooks.signing import generate_secret, signature_headers

SECRET = generate_secret()


@pytest.fixture
def listening():
    """(its URL, a function reading what it printed so far)."""
    port = free_port()
    output = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", "footfall", "webhooks", "listen", "--port", str(port),
                                "--secret", SECRET], stdout=output, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None, "the listener did not start"
            time.sleep(0.1)

    def printed() -> str:
        output.seek(0)
        return output.read()

    try:
        yield url, printed
    finally:
        process.terminate()
        process.wait(timeout=10)
        output.close()


def test_a_delivery_from_footfall_arrives_verified(database_url, listening):
    url, printed = listening
    demo = footfall_json("demo", database_url=database_url)
    env = {"FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
           "FOOTFALL_RATE_LIMIT": "0"}
    with running_server(database_url, env=env) as base_url:
        headers = {"Authorization": f"Bearer {demo['token']}"}
        api = f"{base_url}{API_PREFIX}"
        subscribed = httpx.post(f"{api}/webhook-subscriptions", headers=headers, json={
            "name": "listen", "event_type": "visit_created", "url": f"{url}/hooks", "secret": SECRET})
        assert subscribed.status_code == 201, subscribed.text
        visit = httpx.post(f"{api}/visits", headers=headers, json={
            "contact_uuid": demo["contact_uuid"], "shop_uuid": demo["shop_uuid"], "source": "Listen"}).json()["data"]
        deadline = time.monotonic() + 20
        while visit["uuid"] not in printed() and time.monotonic() < deadline:
            time.sleep(0.2)
        httpx.delete(f"{api}/webhook-subscriptions/{subscribed.json()['data']['uuid']}", headers=headers)
    lines = printed().splitlines()
    at = next(n for n, line in enumerate(lines) if visit["uuid"] in line)
    assert "/hooks  visit_created" in lines[at - 1]
    assert "webhook-signature: verified  signature: verified" in lines[at - 1]


def test_a_wrong_signature_is_answered_400_and_said(listening):
    url, printed = listening
    body = b'{"id":"e1","type":"visit_created","data":{}}'
    signed = signature_headers(generate_secret(), "e1", int(time.time()), body)
    response = httpx.post(f"{url}/x", content=body, headers=signed)
    assert (response.status_code == 400
            and response.json()["signatures"] == {"webhook-signature": False, "signature": False})
    assert "webhook-signature: WRONG  signature: WRONG" in printed()
    good = httpx.post(f"{url}/x", content=body, headers=signature_headers(SECRET, "e1", int(time.time()), body))
    assert good.status_code == 200 and good.json() == {"received": True}
