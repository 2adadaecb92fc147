"""Fetch an image from a URL a user gave, without letting the URL reach inside our network.

Only http and https; the host must resolve to public addresses only, and the connection goes to
the address that was checked (so a second DNS answer cannot swap it); every redirect is checked
again; size and time are capped; the bytes must decode as an image. Hosts listed in
IMAGE_FETCH_ALLOWED_HOSTS (the simulator in development and tests) skip the address check.
"""

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

from . import images

MAX_BYTES = 50 * 1024 * 1024
DEADLINE_SECONDS = 30.0
MAX_REDIRECTS = 3


class FetchRefused(ValueError):
    """The URL cannot be used; the message says why."""


def fetch_image(url: str) -> images.EncodedImage:
    """The image at `url`, decoded and re-encoded."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    for _ in range(MAX_REDIRECTS + 1):
        response_url, status, location, content = _get(url, deadline)
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(response_url, location)
            continue
        if status != 200:
            raise FetchRefused(f"the address answered HTTP {status}.")
        try:
            return images.reencode(content)
        except images.InvalidImage as error:
            raise FetchRefused(f"the address did not give an image: {error}") from error
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
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                shown = host if host == address else f"{host} ({address})"
                raise FetchRefused(f"{shown} is a private or local address.")
    return host, addresses[0], port


def _get(url: str, deadline: float) -> tuple[str, int, str, bytes]:
    host, ip, port = checked_address(url)
    parts = urlsplit(url)
    netloc_ip = f"[{ip}]" if ":" in ip else ip
    pinned = urlunsplit((parts.scheme, f"{netloc_ip}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"}
    try:
        remaining = max(deadline - time.monotonic(), 0.1)
        timeout = httpx.Timeout(min(10.0, remaining))
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            request = http.build_request(
                "GET", pinned, headers=headers, extensions={"sni_hostname": host}
            )
            response = http.send(request, stream=True)
            try:
                if response.is_redirect:
                    return url, response.status_code, response.headers.get("location", ""), b""
                try:
                    content = read_capped(response, deadline, MAX_BYTES)
                except TooLarge as error:
                    raise FetchRefused(
                        f"the image is larger than {MAX_BYTES // 1024 // 1024} MB."
                    ) from error
                except TooSlow as error:
                    raise FetchRefused("the address took too long to send the image.") from error
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
