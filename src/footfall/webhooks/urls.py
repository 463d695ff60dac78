"""Where webhooks may go: http(s) URLs whose host is a public address (unless private ones are allowed)."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


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


async def check_url_target(url: str, *, allow_private: bool) -> None:
    """Refuses a URL whose host resolves to a loopback, private, link-local or other non-public address.

    A host that does not resolve is refused too, as nothing could be delivered to it.
    """
    host = check_url_form(url)
    if allow_private:
        return
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise RefusedUrl(f"The host {host} does not resolve.") from None
        addresses = [info[4][0] for info in infos]
    if not addresses or not all(_is_public(address) for address in addresses):
        raise RefusedUrl("Must not point to a loopback, private, link-local or otherwise non-public address.")
