"""Which URLs jwtguard fetches from, written once: ``conf`` accepts, ``checks`` displays, ``fetch`` enforces.

https anywhere; plain http only to a loopback address (a development issuer on this machine), since anyone
on the path of a plain http fetch could swap the keys.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # "http://[::1"
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        return None  # "https://[::1/jwks", "https://host:99999/"
    return parts


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL with a host and a valid port (what a URL setting must be)."""
    parts = _split(url)
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)


def is_remote_plain_http(url: str) -> bool:
    """Whether ``url`` is plain http to a host that is not loopback: never fetched."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return False  # not a URL at all: no fetch either
    return scheme == "http" and not is_loopback_url(url)


def may_fetch(url: str) -> bool:
    """Whether jwtguard fetches ``url``: https, or plain http to a loopback address."""
    return is_http_url(url) and not is_remote_plain_http(url)


def may_follow(discovery_url: str, jwks_uri: str) -> bool:
    """Whether a discovery document at ``discovery_url`` may send us to ``jwks_uri`` (itself ``may_fetch``):
    an https issuer's document must not send us to plain http, even on this host."""
    return urlsplit(jwks_uri).scheme == "https" or is_loopback_url(discovery_url)
