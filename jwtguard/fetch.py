"""The only module that does HTTP: a guarded GET of a JWKS or an OIDC discovery document.

Guards: https only (plain http only to loopback, for development), one total deadline for connect,
headers and body (a server that trickles bytes cannot hold a worker), a size cap, no redirects,
JSON objects only. Standard library only; nothing runs at import time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jwtguard import __version__
from jwtguard.conf import is_loopback_url
from jwtguard.exceptions import FetchError

USER_AGENT = f"jwtguard/{__version__}"
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)
_CHUNK = 16 * 1024
#: Deeper than any JWKS or discovery document needs (they use 3 or 4 levels), far below what the cache's
#: pickling can store: at about 500 levels the shared cache write fails and every process fetches for itself.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class FetchResult:
    """One answer: ``document`` is None on 304 Not Modified."""

    url: str
    status: int
    document: dict[str, Any] | None
    etag: str | None
    last_modified: str | None
    max_age: float | None


def check_url_allowed(url: str) -> None:
    """Refuse anything but https, and plain http to a loopback address (a local development issuer)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        # A jwks_uri from a discovery document is the issuer's to write: "host:99999" or "[::1" included.
        pass
    else:
        if parts.hostname and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(url))):
            return
    raise FetchError(f"refusing to fetch {url!r}: only https, or http to a loopback address, is allowed")


def parse_max_age(cache_control: str | None) -> float | None:
    """The freshness an issuer allows by ``Cache-Control``: 0 for no-cache/no-store, None when unsaid."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    return conn, path


def _remaining(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"{url}: no complete answer within the deadline")
    return left


def _cut(conn: http.client.HTTPConnection, held: list[socket.socket]) -> None:
    """Shut the connection's socket so that a read blocked in another thread returns at once."""
    for sock in (conn.sock, *held):
        if sock is not None:
            # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would unwrap it under the reader.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def fetch_json(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchResult:
    """GET ``url`` and return its JSON object, or raise ``FetchError`` saying why not.

    ``timeout`` bounds the whole exchange, not each socket read: a watchdog cuts the connection at the
    deadline, so a server that trickles its status line or headers a byte at a time is cut off too.
    """
    check_url_allowed(url)
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    conn, path = _connection(url, timeout)
    held: list[socket.socket] = []
    watchdog = threading.Timer(timeout, _cut, args=(conn, held))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.connect()
        # Our own reference: on "Connection: close" http.client hands the socket to the response (conn.sock = None).
        sock = conn.sock
        assert sock is not None
        held.append(sock)
        conn.request("GET", path, headers=headers)
        sock.settimeout(_remaining(deadline, url))
        response = conn.getresponse()
        if response.status == 304 and (etag or last_modified):
            return FetchResult(url, 304, None, etag, last_modified, parse_max_age(response.getheader("Cache-Control")))
        if response.status != 200:
            # Redirects included: following one would let the answer come from a host nobody configured.
            raise FetchError(f"{url}: HTTP {response.status} {response.reason}")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"{url}: body of {declared} bytes is over the {max_bytes}-byte cap")
        body = bytearray()
        while True:
            sock.settimeout(_remaining(deadline, url))
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"{url}: body is over the {max_bytes}-byte cap")
        # A body cut short (by the watchdog or the server) is never parsed: a prefix can be valid JSON.
        _remaining(deadline, url)
        if response.length:
            raise FetchError(f"{url}: body ended {response.length} bytes short of its Content-Length")
        result_etag = response.getheader("ETag")
        result_last_modified = response.getheader("Last-Modified")
        max_age = parse_max_age(response.getheader("Cache-Control"))
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if isinstance(exc, (socket.timeout, TimeoutError)) or time.monotonic() >= deadline:
            raise FetchError(f"{url}: no complete answer within {timeout}s") from exc
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    finally:
        watchdog.cancel()
        conn.close()
    try:
        document = json.loads(bytes(body).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FetchError(f"{url}: body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise FetchError(f"{url}: JSON body is a {type(document).__name__}, not an object")
    if _too_deep(document, MAX_JSON_DEPTH):
        raise FetchError(f"{url}: JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    return FetchResult(url, 200, document, result_etag, result_last_modified, max_age)


def _too_deep(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iteratively: no recursion to overflow)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def discover_jwks_url(issuer: str, *, timeout: float, max_bytes: int) -> str:
    """The ``jwks_uri`` of ``issuer``'s OIDC discovery document, checked as OIDC Discovery 4.3 asks."""
    discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = fetch_json(discovery_url, timeout=timeout, max_bytes=max_bytes).document
    assert document is not None
    if document.get("issuer") != issuer:
        raise FetchError(
            f"{discovery_url}: discovery names issuer {document.get('issuer')!r}, not the configured {issuer!r}"
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError(f"{discovery_url}: discovery document has no jwks_uri")
    check_url_allowed(jwks_uri)
    if urlsplit(jwks_uri).scheme != "https" and not is_loopback_url(discovery_url):
        # An https issuer's document must not send us to plain http, even on this host.
        raise FetchError(f"{discovery_url}: jwks_uri {jwks_uri!r} is not https")
    return jwks_uri
