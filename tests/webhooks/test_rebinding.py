"""DNS rebinding: a webhook's host that answers a public address when it is checked and 127.0.0.1
when it is connected to. The connection goes to the address checked, so nothing reaches loopback."""

import ipaddress
import socket

import httpx
import pytest

from footfall.app import API_PREFIX, create_app
from footfall.config import Settings
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
        await attempt_where_private_urls_are_refused(app)
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


# IPv6 forms that carry an IPv4 address, each around a private one: judged by that address.
REFUSED = {
    "sixtofour": "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "sixtofour-private": "2002:a00:1::",  # 10.0.0.1
    "teredo": "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, its client (inverted) 127.0.0.1
    "nat64": "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "nat64-local": "64:ff9b:1::5db8:d70e",  # the local-use NAT64 prefix: refused whatever it holds
    "mapped": "::ffff:a00:1",  # IPv4-mapped 10.0.0.1
    "compatible": "::7f00:1",  # IPv4-compatible 127.0.0.1
}
# The same forms around a public address (PUBLIC, 93.184.215.14) reach it and nothing else.
PUBLIC_INSIDE = {
    "sixtofour": "2002:5db8:d70e::",
    "teredo": "2001:0:4136:e378:8000:63bf:a247:28f1",
    "nat64": "64:ff9b::5db8:d70e",
    "mapped": "::ffff:5db8:d70e",
    "compatible": "::5db8:d70e",
}


@pytest.fixture
def transition_dns(monkeypatch):
    """A resolver for <form>.private.example and <form>.public.example: the form's IPv6 address, to
    the check and the connection alike. Other hosts resolve as ever."""
    real = socket.getaddrinfo
    names = {f"{form}.private.example": address for form, address in REFUSED.items()}
    names |= {f"{form}.public.example": address for form, address in PUBLIC_INSIDE.items()}

    def getaddrinfo(host, port, *args, **kwargs):
        address = names.get(host.decode() if isinstance(host, bytes) else host)
        if address is None:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 0, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
async def strict_client(app, database_url):
    """A client of an app that refuses private URLs (the session's app allows them)."""
    strict = create_app(Settings(database_url=database_url, webhook_worker=False))
    assert not strict.state.settings.webhook_allow_private_urls
    transport = httpx.ASGITransport(app=strict)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://footfall.test{API_PREFIX}") as client:
        yield client
    await strict.state.database.close()


async def test_transition_forms_around_a_private_address_are_refused_as_literals_and_as_dns_answers(
    strict_client, tenant, transition_dns
):
    created = await strict_client.post("/webhook-subscriptions", headers=tenant.headers, json={
        "name": "public", "event_type": "visit_created", "url": "https://sixtofour.public.example/hook"})
    assert created.status_code == 201, created.text
    uuid = created.json()["data"]["uuid"]
    for form, address in REFUSED.items():
        for url in (f"http://[{address}]/hook", f"https://{form}.private.example/hook"):
            response = await strict_client.post("/webhook-subscriptions", headers=tenant.headers, json={
                "name": form, "event_type": "visit_created", "url": url})
            assert response.status_code == 422, (url, response.text)
            assert response.json()["code"] == 1003 and list(response.json()["errors"]) == ["url"], url
            assert "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS" in response.json()["errors"]["url"][0], url
            response = await strict_client.put(f"/webhook-subscriptions/{uuid}", headers=tenant.headers,
                                               json={"url": url})
            assert response.status_code == 422 and list(response.json()["errors"]) == ["url"], url


async def test_transition_forms_around_a_public_address_are_accepted(transition_dns):
    for form, address in PUBLIC_INSIDE.items():
        literal = await resolve_target(f"http://[{address}]:8080/hook", allow_private=False)
        assert literal.url == f"http://[{address}]:8080/hook"
        named = await resolve_target(f"https://{form}.public.example/hook", allow_private=False)
        assert named.url == f"https://[{address}]/hook"
        assert (named.host_header, named.server_name) == (f"{form}.public.example", f"{form}.public.example")


async def test_a_name_answering_a_transition_form_of_loopback_is_refused_at_send_time(
    client, app, tenant, transition_dns
):
    """Accepted where private URLs are allowed, then sent by a worker where they are not: the worker
    checks the DNS answer again, and never connects to it."""
    subscription = await subscribe(client, tenant, "http://sixtofour.private.example/hook")
    await create_visit(client, tenant)
    await attempt_where_private_urls_are_refused(app)
    [delivery] = await deliveries(client, tenant, subscription)
    assert delivery["attempts"] == 1 and delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("refused: ") and "ALLOW_PRIVATE_URLS" in delivery["last_error"]


async def attempt_where_private_urls_are_refused(app) -> None:
    """One attempt at every due delivery, by a worker that refuses private addresses."""
    worker = worker_for(app, webhook_allow_private_urls=False, webhook_retry_schedule=[60], webhook_timeout=2)
    try:
        await drain(worker)
    finally:
        await worker.close()
