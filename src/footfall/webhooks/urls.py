"""Where webhooks may go: http(s) URLs whose host is a public address (unless private ones are allowed)."""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


NOT_PUBLIC = ("Must not point to a loopback, private, link-local or otherwise non-public address "
              "(FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS=1 allows them, e.g. for a receiver on this machine).")


class RefusedUrl(ValueError):
    pass


def check_url_form(url: str) -> str:
    """The URL's host, or RefusedUrl when the URL is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        parts.port  # raises on a malformed port
    except ValueError:
        raise RefusedUrl("Must be a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("Must be an http or https URL.")
    if not parts.hostname:
        raise RefusedUrl("Must name a host.")
    if parts.username or parts.password:
        raise RefusedUrl("Must not carry credentials.")
    return parts.hostname


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


@dataclass(frozen=True)
class Target:
    """Where a webhook is sent: the URL to connect to, whose host is the address that was checked,
    and what keeps the name the subscription gave for the receiver: the Host header and, for https,
    the TLS server name (the certificate is checked against it)."""

    url: str
    host_header: str | None = None
    server_name: str | None = None


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolves the URL's host once and refuses it when any address is loopback, private, link-local
    or otherwise non-public; the connection then goes to the address checked, so a name that resolves
    elsewhere the second time (DNS rebinding) cannot reach a private address.

    A host that does not resolve is refused too, as nothing could be delivered to it.
    """
    host = check_url_form(url)
    if allow_private:
        return Target(url)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if not _is_public(host):
            raise RefusedUrl(NOT_PUBLIC)
        return Target(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RefusedUrl(f"The host {host} does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    if not addresses or not all(_is_public(address) for address in addresses):
        raise RefusedUrl(NOT_PUBLIC)
    given = httpx.URL(url)
    return Target(str(given.copy_with(host=addresses[0])), host_header=given.netloc.decode("ascii"),
                  server_name=host if given.scheme == "https" else None)


async def check_url_target(url: str, *, allow_private: bool) -> None:
    """Refuses what resolve_target refuses (a subscription's URL, when it is given)."""
    await resolve_target(url, allow_private=allow_private)
