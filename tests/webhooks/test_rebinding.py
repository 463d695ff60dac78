"""DNS rebinding: a webhook's host that answers a public address when it is checked and 127.0.0.1
when it is connected to. The connection goes to the address checked, so nothing reaches loopback."""

import ipaddress
import socket

import pytest

from footfall.testing.receiver import Receiver
from footfall.webhooks.urls import RefusedUrl, resolve_target
from tests.webhooks.test_delivery import create_visit, deliveries, drain, subscribe, worker_for

PUBLIC = "93.184.215.14"  # a global address; nothing answers it from here


@pytest.fixture
def rebinding(monkeypatch):
    """A resolver for rebind.example: the public address to a lookup without a port (the check's),
    127.0.0.1 to one with a port (a connection's). Other hosts resolve as ever."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) != "rebind.example":  # anyio sends bytes
            return real(host, port, *args, **kwargs)
        address = PUBLIC if port is None else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def test_a_delivery_goes_to_the_address_checked_and_never_reaches_loopback(client, app, tenant, rebinding):
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        subscription = await subscribe(client, tenant, f"http://rebind.example:{port}/hook")
        await create_visit(client, tenant)
        worker = worker_for(app, webhook_allow_private_urls=False, webhook_retry_schedule=[60], webhook_timeout=2)
        try:
            await drain(worker)
        finally:
            await worker.close()
        assert receiver.on("/hook") == []
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["attempts"] == 1 and delivery["last_status_code"] is None and delivery["last_error"]


async def test_the_target_keeps_the_name_for_host_and_tls(rebinding):
    target = await resolve_target("https://rebind.example:8443/hooks?x=1", allow_private=False)
    assert target.url == f"https://{PUBLIC}:8443/hooks?x=1"
    assert (target.host_header, target.server_name) == ("rebind.example:8443", "rebind.example")
    plain = await resolve_target("http://rebind.example/hooks", allow_private=False)
    assert plain.url == f"http://{PUBLIC}/hooks" and plain.host_header == "rebind.example" and plain.server_name is None
    assert (await resolve_target(f"http://{PUBLIC}/x", allow_private=False)).url == f"http://{PUBLIC}/x"


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://[::1]/x", "http://10.0.0.8/x", "http://localhost/x"])
async def test_private_addresses_are_refused_naming_the_setting(url):
    with pytest.raises(RefusedUrl) as refused:
        await resolve_target(url, allow_private=False)
    assert "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS" in str(refused.value)
    assert ipaddress.ip_address(PUBLIC).is_global
