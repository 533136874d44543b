"""The only module that does HTTP: a guarded GET of a JWKS or an OIDC discovery document.

Guards: https only (plain http only to loopback, for development), one total deadline for connect,
headers and body (a server that trickles bytes cannot hold a worker), a size cap, no redirects,
JSON objects only. Standard library only; nothing runs at import time.

Egress proxy: an https URL goes through the ``HTTPS_PROXY`` / ``https_proxy`` of the environment (read at each
fetch, as urllib and PyJWKClient read it) unless ``NO_PROXY`` / ``no_proxy`` names its host or it is loopback:
a CONNECT tunnel to the proxy, then TLS to the real host, verified against the real host, inside the deadline.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from jwtguard import __version__
from jwtguard.clock import elapsed, time_left
from jwtguard.exceptions import FetchError
from jwtguard.strictjson import reject_constant
from jwtguard.urlpolicy import is_loopback_url, may_fetch, may_follow

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
    """Refuse anything but https, and plain http to a loopback address (``jwtguard.urlpolicy.may_fetch``).

    A jwks_uri from a discovery document is the issuer's to write: "host:99999" or "[::1" included.
    """
    if may_fetch(url):
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


@dataclass(frozen=True)
class _Proxy:
    """An http:// proxy from the environment; ``str()`` never shows its credentials."""

    host: str
    port: int
    authorization: str | None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _proxy_for(url: str) -> _Proxy | None:
    """The proxy the environment sets for ``url`` at this moment, or None: never for http or a loopback host."""
    parts = urlsplit(url)
    if parts.scheme != "https" or is_loopback_url(url):
        return None
    setting = urllib.request.getproxies().get("https")
    # As urllib does: NO_PROXY entries may name the host alone or host:port.
    if not setting or urllib.request.proxy_bypass(parts.netloc.rpartition("@")[2]):
        return None
    # The setting may hold a password: no message below quotes it.
    where = "the https proxy of the environment (HTTPS_PROXY / https_proxy)"
    setting = setting.strip()
    if "://" not in setting:
        setting = "http://" + setting  # "proxy:3128", as curl and urllib take it
    try:
        proxy = urlsplit(setting)
        port = proxy.port or 80
    except ValueError:
        raise FetchError(f"{url}: {where} is not a valid URL") from None
    if proxy.scheme != "http":
        raise FetchError(f"{url}: {where} is a {proxy.scheme}:// proxy; only http:// proxies are supported")
    if not proxy.hostname:
        raise FetchError(f"{url}: {where} names no host")
    authorization = None
    if proxy.username is not None:
        credentials = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return _Proxy(proxy.hostname, port, authorization)


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS, direct or through a CONNECT tunnel, whose every step the deadline bounds.

    The TCP socket is handed to the watchdog as soon as it exists (so a proxy that trickles its answer to
    CONNECT is cut), and TLS is set up with the time left, the watchdog holding the TLS socket too.
    """

    def __init__(
        self,
        host: str,
        port: int | None,
        *,
        server_name: str,
        timeout: float,
        deadline: float,
        held: list[socket.socket],
    ) -> None:
        self._tls_context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls_context)
        self._server_name = server_name
        self._deadline = deadline
        self._held = held
        self._create_connection = self._create_held_connection

    def _create_held_connection(self, address: tuple[str, int], timeout: float, source: Any = None) -> socket.socket:
        # socket.create_connection, but the name lookup is bounded by the deadline too (the watchdog cannot
        # interrupt getaddrinfo), and each socket is held by the watchdog before it connects.
        host, port = address
        error: OSError = OSError(f"no address for {host!r}")
        for family, kind, proto, _name, sockaddr in resolve(host, port, time_left(self._deadline, self._server_name)):
            sock = socket.socket(family, kind, proto)
            self._held.append(sock)
            try:
                # Checked once held: had the watchdog fired before, it could not have seen this socket.
                sock.settimeout(time_left(self._deadline, self._server_name))
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                if isinstance(exc, TimeoutError):
                    raise
                error = exc
                continue
            return sock
        raise error

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, then CONNECT when a tunnel is set; TLS below
        assert self.sock is not None
        # Verified against the real host (not the proxy), as HTTPSConnection.connect would.
        tls = self._tls_context.wrap_socket(self.sock, server_hostname=self._server_name, do_handshake_on_connect=False)
        self.sock = tls
        self._held.append(tls)
        tls.settimeout(time_left(self._deadline, self._server_name))
        tls.do_handshake()


def resolve(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` for a TCP connection, given up after ``timeout`` seconds.

    The lookup runs in a daemon thread because nothing can interrupt the system resolver; a slow one is left
    to finish on its own while the fetch fails in time (as ``HTTP_TIMEOUT`` promises).
    """
    answer: list[Any] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode (a label over 63)
            answer.append(exc)

    worker = threading.Thread(target=lookup, name="jwtguard-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if not answer:
        raise TimeoutError(f"resolving {host!r} took longer than the time left")
    if isinstance(answer[0], Exception):
        raise answer[0]
    result: list[tuple[Any, ...]] = answer[0]
    return result


def _connection(
    url: str, proxy: _Proxy | None, timeout: float, deadline: float, held: list[socket.socket]
) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        # Through a proxy: TCP to the proxy, CONNECT to the real host, TLS verified against the real host.
        to_host, to_port = (host, parts.port) if proxy is None else (proxy.host, proxy.port)
        conn = _HTTPSConnection(to_host, to_port, server_name=host, timeout=timeout, deadline=deadline, held=held)
        if proxy is not None:
            tunnel_headers = {"User-Agent": USER_AGENT}
            if proxy.authorization:
                tunnel_headers["Proxy-Authorization"] = proxy.authorization
            conn.set_tunnel(host, parts.port or http.client.HTTPS_PORT, headers=tunnel_headers)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    return conn, path


def _cut(conn: http.client.HTTPConnection, held: list[socket.socket]) -> None:
    """Shut the connection's socket so that a read blocked in another thread returns at once."""
    for sock in (conn.sock, *held):
        if sock is not None:
            # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would unwrap it under the reader.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


@dataclass
class _Exchange:
    """One GET in progress: what it asks for, and what bounds it."""

    url: str
    timeout: float
    max_bytes: int
    proxy: _Proxy | None
    deadline: float
    #: Every socket of the exchange, for the watchdog to cut.
    held: list[socket.socket] = field(default_factory=list)

    def time_left(self) -> float:
        return time_left(self.deadline, self.url)


def fetch_json(
    url: str, *, timeout: float, max_bytes: int, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    """GET ``url`` and return its JSON object, or raise ``FetchError`` saying why not.

    ``timeout`` bounds the whole exchange, not each socket read: a watchdog cuts the connection at the
    deadline, so a server that trickles its status line or headers a byte at a time is cut off too.
    """
    check_url_allowed(url)
    exchange = _Exchange(url, timeout, max_bytes, _proxy_for(url), elapsed() + timeout)
    try:
        conn, path = _connection(url, exchange.proxy, timeout, exchange.deadline, exchange.held)
    except http.client.InvalidURL as exc:  # a host with a space or a control character in it
        raise _failure(exchange, exc) from exc
    watchdog = threading.Timer(timeout, _cut, args=(conn, exchange.held))
    watchdog.daemon = True
    watchdog.start()
    try:
        response, sock = _get(conn, path, _request_headers(etag, last_modified), exchange)
        if response.status == 304:
            return FetchResult(url, 304, None, etag, last_modified, parse_max_age(response.getheader("Cache-Control")))
        body = _read_body(response, sock, exchange)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # A FetchError of ours passes untouched; the deadline passing (DeadlinePassed) is a TimeoutError.
        raise _failure(exchange, exc) from exc
    finally:
        watchdog.cancel()
        conn.close()
    return FetchResult(
        url,
        200,
        _json_document(url, body),
        response.getheader("ETag"),
        response.getheader("Last-Modified"),
        parse_max_age(response.getheader("Cache-Control")),
    )


def _request_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str], exchange: _Exchange
) -> tuple[http.client.HTTPResponse, socket.socket]:
    """Connect, send the GET and read the status line and headers: a 200, or a 304 to a conditional GET."""
    conn.connect()
    # Our own reference: on "Connection: close" http.client hands the socket to the response (conn.sock = None).
    sock = conn.sock
    assert sock is not None
    exchange.held.append(sock)
    conn.request("GET", path, headers=headers)
    sock.settimeout(exchange.time_left())
    response = conn.getresponse()
    if response.status == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
        return response, sock
    if response.status != 200:
        # Redirects included: following one would let the answer come from a host nobody configured.
        raise FetchError(f"{exchange.url}: HTTP {response.status} {response.reason}")
    return response, sock


def _read_body(response: http.client.HTTPResponse, sock: socket.socket, exchange: _Exchange) -> bytes:
    """The whole body, within the size cap and the deadline; a body cut short is refused, never returned."""
    url, max_bytes = exchange.url, exchange.max_bytes
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url}: body of {declared} bytes is over the {max_bytes}-byte cap")
    body = bytearray()
    # From Python 3.13 the response closes itself on reading its last byte (with "Connection: close" the
    # socket too): a closed response is the end of the body, and its socket must not be touched again.
    while not response.isclosed():
        sock.settimeout(exchange.time_left())
        chunk = response.read1(_CHUNK)
        if not chunk:
            break
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"{url}: body is over the {max_bytes}-byte cap")
    # A body cut short (by the watchdog or the server) is never parsed: a prefix can be valid JSON.
    exchange.time_left()
    if response.length:
        raise FetchError(f"{url}: body ended {response.length} bytes short of its Content-Length")
    return bytes(body)


def _failure(exchange: _Exchange, exc: Exception) -> FetchError:
    """The ``FetchError`` for what the socket or http.client raised, in words an operator can act on."""
    url, proxy = exchange.url, exchange.proxy
    via = f" (through proxy {proxy})" if proxy else ""
    if isinstance(exc, (socket.timeout, TimeoutError)) or elapsed() >= exchange.deadline:
        return FetchError(f"{url}: no complete answer within {exchange.timeout}s{via}")
    refusal = str(exc).partition("Tunnel connection failed:")[2].strip()
    if proxy and refusal:
        # http.client's words for a CONNECT answered other than 200: 407, 403, 502 ...
        return FetchError(f"{url}: proxy {proxy} answered CONNECT with HTTP {refusal}")
    return FetchError(f"{url}: {type(exc).__name__}: {exc}{via}")


def _json_document(url: str, body: bytes) -> dict[str, Any]:
    """The body as a JSON object of bounded depth (standard JSON only: no NaN, no Infinity)."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FetchError(f"{url}: body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise FetchError(f"{url}: JSON body is a {type(document).__name__}, not an object")
    if _too_deep(document, MAX_JSON_DEPTH):
        raise FetchError(f"{url}: JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    return document


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
    if not may_follow(discovery_url, jwks_uri):
        raise FetchError(f"{discovery_url}: jwks_uri {jwks_uri!r} is not https")
    return jwks_uri
