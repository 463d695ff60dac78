"""Where webhooks may go: http(s) URLs whose host is a public address (unless private ones are allowed)."""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

NOT_PUBLIC = ("Must not point to a loopback, private, link-local or otherwise non-public address "
              "(FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS=1 allows them, e.g. for a receiver on this machine).")


class RefusedUrl(ValueError):
    pass


def parse_url(url: str) -> httpx.URL:
    """The URL as the delivery worker's client reads it (httpx), or RefusedUrl when it is not an
    absolute http(s) URL that client can send to. One parser for both: a URL that passed a different
    one (a tab, DEL, CR, LF or ESC in it) would be stored, then never sent."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):  # ValueError: an IDNA label or a lone surrogate
        raise RefusedUrl("Must be a valid URL.") from None
    if parsed.scheme not in ("http", "https"):
        raise RefusedUrl("Must be an http or https URL.")
    if not parsed.raw_host:
        raise RefusedUrl("Must name a host.")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise RefusedUrl("Must be a valid URL.")
    if parsed.userinfo:
        raise RefusedUrl("Must not carry credentials.")
    return parsed


def check_url_form(url: str) -> str:
    """The URL's host (its ASCII form, as DNS is asked), or RefusedUrl (see parse_url)."""
    return parse_url(url).raw_host.decode("ascii")


# Where an IPv6 address carries an IPv4 one that a packet to it ends up at: the address is judged by
# that IPv4 address. IPv4-mapped (::ffff:0:0/96), 6to4 (2002::/16) and Teredo (2001::/32, whose
# client is the last 32 bits inverted) are the ipaddress module's; NAT64's well-known prefix and the
# deprecated IPv4-compatible form keep the IPv4 address in the last 32 bits. NAT64's local-use prefix
# (64:ff9b:1::/48) is refused whatever it holds: it is the network's own translator (RFC 8215), and
# where it puts the IPv4 address depends on the prefix length the network chose.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        ip = _embedded_ipv4(ip) or ip
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
    given = parse_url(url)
    if allow_private:
        return Target(url)
    host = given.raw_host.decode("ascii")
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
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(_is_public(address) for address in addresses):
        raise RefusedUrl(NOT_PUBLIC)
    return Target(str(given.copy_with(host=addresses[0])), host_header=given.netloc.decode("ascii"),
                  server_name=host if given.scheme == "https" else None)


async def check_url_target(url: str, *, allow_private: bool) -> None:
    """Refuses what resolve_target refuses (a subscription's URL, when it is given)."""
    await resolve_target(url, allow_private=allow_private)
