"""Fetch an image from a URL a user gave, without letting the URL reach inside our network.

Only http and https; the host must resolve to public addresses only, and the connection goes to
the address that was checked (so a second DNS answer cannot swap it); every redirect is checked
again; size and time are capped; the bytes must decode as an image. Hosts listed in
IMAGE_FETCH_ALLOWED_HOSTS (the simulator in development and tests) skip the address check.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

from . import images

MAX_BYTES = 50 * 1024 * 1024
# All the image URLs of one edit together: one deadline, one byte and one pixel budget, so
# that many slow, large or huge URLs cannot hold a web process for longer or make it bigger.
DEADLINE_SECONDS = 30.0
BUDGET_BYTES = 200 * 1024 * 1024
MAX_REDIRECTS = 3


class FetchRefused(ValueError):
    """The URL cannot be used; the message says why."""


@dataclass
class Budget:
    """What all the fetches of one edit may use together; each fetch spends from it."""

    ends: float = field(default_factory=lambda: time.monotonic() + DEADLINE_SECONDS)
    bytes_left: int = field(default_factory=lambda: BUDGET_BYTES)
    pixels_left: int = images.EDIT_MAX_PIXELS


def fetch_image(url: str, budget: Budget | None = None) -> images.EncodedImage:
    """The image at `url`, decoded and re-encoded, within `budget` (a fresh one if None)."""
    budget = budget or Budget()
    for _ in range(MAX_REDIRECTS + 1):
        response_url, status, location, content = _get(url, budget)
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(response_url, location)
            continue
        if status != 200:
            raise FetchRefused(f"the address answered HTTP {status}.")
        try:
            image = images.reencode(content, max_pixels=budget.pixels_left)
        except images.InvalidImage as error:
            raise FetchRefused(f"the address did not give an image: {error}") from error
        budget.pixels_left -= image.width * image.height
        return image
    raise FetchRefused("the address redirects too many times.")


def checked_address(url: str) -> tuple[str, str, int]:
    """(host, ip, port) that `url` may be fetched from, or FetchRefused saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused("only http and https addresses can be used.")
    host = parts.hostname
    if not host:
        raise FetchRefused("the address has no host name.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise FetchRefused("the address has an invalid port.") from error
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchRefused(f"the host name {host} could not be resolved.") from error
    addresses = [info[4][0] for info in infos]
    if f"{host}:{port}" not in settings.IMAGE_FETCH_ALLOWED_HOSTS:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%")[0])):
                shown = host if host == address else f"{host} ({address})"
                raise FetchRefused(f"{shown} is a private or local address.")
    return host, addresses[0], port


# Ranges that Python's is_global still calls global although no public host answers there:
# deprecated or returned (6to4 relay anycast, IPv6 site-local, the 6bone).
NOT_PUBLIC = [
    ipaddress.ip_network(network) for network in ("192.88.99.0/24", "fec0::/10", "3ffe::/16")
]
# IPv6 forms whose last 32 bits are an IPv4 address: IPv4-compatible (deprecated), SIIT's
# IPv4-translated, and NAT64's well-known prefix (a NAT64 gateway connects to that IPv4).
LAST_32_BITS_ARE_IPV4 = [
    ipaddress.ip_network(network) for network in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
]
ISATAP_INTERFACE_IDS = (0x00005EFE, 0x02005EFE)


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is an address on the public internet, and so is any IPv4 address it
    embeds: a private IPv4 address wrapped in IPv6 reaches the private host all the same."""
    if ip.is_multicast or not ip.is_global or any(ip in network for network in NOT_PUBLIC):
        return False
    embedded = embedded_ipv4(ip) if ip.version == 6 else None
    return embedded is None or is_public(embedded)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms that carry one."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]  # the client behind the Teredo server
    last_32_bits = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in network for network in LAST_32_BITS_ARE_IPV4):
        return last_32_bits
    if (int(ip) >> 32) & 0xFFFFFFFF in ISATAP_INTERFACE_IDS:
        return last_32_bits
    return None


def _get(url: str, budget: Budget) -> tuple[str, int, str, bytes]:
    host, ip, port = checked_address(url)
    parts = urlsplit(url)
    netloc_ip = f"[{ip}]" if ":" in ip else ip
    pinned = urlunsplit((parts.scheme, f"{netloc_ip}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"}
    try:
        remaining = budget.ends - time.monotonic()
        if remaining <= 0:
            raise FetchRefused(
                f"there was no time left to fetch it (all the image URLs of one edit get "
                f"{DEADLINE_SECONDS:g} seconds in all)."
            )
        timeout = httpx.Timeout(min(10.0, remaining))
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            request = http.build_request(
                "GET", pinned, headers=headers, extensions={"sni_hostname": host}
            )
            response = http.send(request, stream=True)
            try:
                if response.is_redirect:
                    return url, response.status_code, response.headers.get("location", ""), b""
                cap = min(MAX_BYTES, budget.bytes_left)
                try:
                    content = read_capped(response, budget.ends, cap)
                except TooLarge as error:
                    if cap < MAX_BYTES:
                        raise FetchRefused(
                            f"the image URLs of one edit may give {BUDGET_BYTES // 2**20} MB in "
                            "all, and this one goes past that."
                        ) from error
                    raise FetchRefused(
                        f"the image is larger than {MAX_BYTES // 2**20} MB."
                    ) from error
                except TooSlow as error:
                    raise FetchRefused(
                        f"the address took too long to send the image (all the image URLs of one "
                        f"edit get {DEADLINE_SECONDS:g} seconds in all)."
                    ) from error
                budget.bytes_left -= len(content)
                return url, response.status_code, "", content
            finally:
                response.close()
    except httpx.HTTPError as error:
        raise FetchRefused(f"{host} could not be reached.") from error


class TooLarge(Exception):
    pass


class TooSlow(Exception):
    pass


def read_capped(response: httpx.Response, deadline: float, cap: int) -> bytes:
    """The whole body, or TooLarge past `cap` bytes, or TooSlow past the `deadline` (a
    time.monotonic() value): httpx's timeouts apply to each read, so a server that drips bytes
    would never trip them."""
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > cap:
            raise TooLarge
        if time.monotonic() > deadline:
            raise TooSlow
        chunks.append(chunk)
    return b"".join(chunks)
