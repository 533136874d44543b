"""``jwtguard.fetch``: the one place that does HTTP, against real sockets on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import jwtguard
from jwtguard.exceptions import FetchError
from jwtguard.fetch import (
    FetchResult,
    check_url_allowed,
    discover_jwks_url,
    fetch_json,
    parse_max_age,
)
from jwtguard.testing import FakeIssuer, Fault
from jwtguard.testing.issuer import DISCOVERY_PATH, JWKS_PATH
from tests.support.loopback import free_port
from tests.support.rawhttp import FRAMINGS, ScriptedServer, answer, frame, framed_json, hang, json_answer, raw

CAP = 256 * 1024
TIMEOUT = 0.5
#: What "within HTTP_TIMEOUT" may overrun by on a loaded 2-core machine.
MARGIN = 0.5


def fetch(url: str, **kwargs: Any) -> FetchResult:
    return fetch_json(url, **{"timeout": TIMEOUT, "max_bytes": CAP, **kwargs})


def refused_within_timeout(url: str, match: str, **kwargs: Any) -> FetchError:
    started = time.monotonic()
    with pytest.raises(FetchError, match=match) as caught:
        fetch(url, **kwargs)
    assert time.monotonic() - started < TIMEOUT + MARGIN
    return caught.value


class TestAnswers:
    def test_returns_the_document_and_its_validators(self, issuer: FakeIssuer) -> None:
        issuer.cache_control = "public, max-age=120"
        result = fetch(issuer.jwks_url)
        assert result.status == 200
        assert result.url == issuer.jwks_url
        assert result.document == issuer.jwks()
        assert result.etag is not None
        assert result.etag.startswith('"')
        assert result.max_age == 120

    def test_sends_its_user_agent_and_asks_for_plain_json(self) -> None:
        with ScriptedServer({"/jwks": json_answer({"keys": []})}) as server:
            fetch(server.url + "/jwks")
        [request] = server.requests
        assert request.headers["user-agent"] == f"jwtguard/{jwtguard.__version__}"
        assert request.headers["accept"] == "application/json"
        assert request.headers["accept-encoding"] == "identity"
        assert "if-none-match" not in request.headers

    def test_a_conditional_get_answered_304_has_no_document(self, issuer: FakeIssuer) -> None:
        first = fetch(issuer.jwks_url)
        again = fetch(issuer.jwks_url, etag=first.etag)
        assert again.status == 304
        assert again.document is None
        assert again.etag == first.etag
        assert issuer.jwks_requests == 2

    def test_sends_both_validators(self) -> None:
        with ScriptedServer({"/jwks": answer(304)}) as server:
            result = fetch(server.url + "/jwks", etag='"v1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
        assert result.status == 304
        assert result.last_modified == "Mon, 01 Jan 2024 00:00:00 GMT"
        assert server.requests[0].headers["if-none-match"] == '"v1"'
        assert server.requests[0].headers["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"

    def test_a_304_that_was_not_asked_for_is_an_error(self) -> None:
        with ScriptedServer({"/jwks": answer(304)}) as server, pytest.raises(FetchError, match="HTTP 304"):
            fetch(server.url + "/jwks")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            ("", None),
            ("public", None),
            ("max-age=60", 60.0),
            ('public, MAX-AGE="30", must-revalidate', 30.0),
            ("s-maxage=5, max-age=90", 90.0),
            ("no-cache", 0.0),
            ("private, no-store", 0.0),
        ],
    )
    def test_cache_control_max_age(self, value: str | None, expected: float | None) -> None:
        assert parse_max_age(value) == expected


class TestPolicy:
    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com/.well-known/jwks.json",
            "http://10.0.0.1/jwks",
            "http://localhost.example.com/jwks",
            "ftp://127.0.0.1/jwks",
            "file:///etc/passwd",
            "https:///no-host",
            "//127.0.0.1/jwks",
        ],
    )
    def test_refuses_without_connecting(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        def no_connection(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a refused URL must not be connected to")

        monkeypatch.setattr(socket, "create_connection", no_connection)
        monkeypatch.setattr("jwtguard.fetch.resolve", no_connection)
        with pytest.raises(FetchError, match="refusing"):
            fetch(url)

    @pytest.mark.parametrize(
        "url", ["https://idp.example.com/jwks", "http://127.0.0.1:8000/jwks", "http://localhost/jwks", "http://[::1]/"]
    )
    def test_allows_https_and_loopback_http(self, url: str) -> None:
        check_url_allowed(url)

    def test_does_not_follow_redirects(self) -> None:
        with (
            ScriptedServer(
                {"/jwks": answer(302, headers=(("Location", "/elsewhere"),)), "/elsewhere": json_answer({"keys": []})}
            ) as server,
            pytest.raises(FetchError, match="HTTP 302"),
        ):
            fetch(server.url + "/jwks")
        assert server.paths() == ["/jwks"]


class TestCleanErrors:
    """Missing, non-JSON, oversized or hanging endpoints: a FetchError, always within the timeout."""

    def test_not_found(self, issuer: FakeIssuer) -> None:
        refused_within_timeout(issuer.url + "/missing.json", "HTTP 404")

    def test_server_error(self, issuer: FakeIssuer) -> None:
        issuer.fault = Fault(status=500)
        refused_within_timeout(issuer.jwks_url, "HTTP 500")

    def test_connection_refused(self) -> None:
        refused_within_timeout(f"http://127.0.0.1:{free_port()}/jwks", "ConnectionRefusedError")

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            (b"<html>Service Unavailable</html>", "not valid JSON"),
            (b"", "not valid JSON"),
            (b"\xff\xfe{}", "not valid JSON"),
            (b'{"keys": NaN}', "not valid JSON"),
            (b"[" * 100_000, "not valid JSON"),
            (b'[{"keys": []}]', "JSON body is a list"),
            (b'"keys"', "JSON body is a str"),
        ],
    )
    def test_not_a_json_object(self, issuer: FakeIssuer, body: bytes, match: str) -> None:
        issuer.fault = Fault(body=body)
        refused_within_timeout(issuer.jwks_url, match)

    def test_oversized_by_content_length(self, issuer: FakeIssuer) -> None:
        issuer.fault = Fault(body=b" " * (5 * 1024 * 1024))
        refused_within_timeout(issuer.jwks_url, f"body of {5 * 1024 * 1024} bytes is over the {CAP}-byte cap")

    def test_oversized_by_streamed_body_without_content_length(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        with ScriptedServer({"/jwks": raw(head + b'{"keys": [' + b" " * (5 * 1024 * 1024))}) as server:
            refused_within_timeout(server.url + "/jwks", f"body is over the {CAP}-byte cap")

    def test_oversized_by_chunked_body(self) -> None:
        chunk = b" " * 65536
        stream = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(80))
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        with ScriptedServer({"/jwks": raw(head + stream + b"0\r\n\r\n")}) as server:
            refused_within_timeout(server.url + "/jwks", f"body is over the {CAP}-byte cap")

    def test_a_body_under_the_cap_streamed_in_chunks_is_read(self) -> None:
        body = json.dumps({"keys": [], "pad": " " * 100_000}).encode()
        stream = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:50_000], body[50_000:]))
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        with ScriptedServer({"/jwks": raw(head + stream + b"0\r\n\r\n")}) as server:
            assert fetch(server.url + "/jwks").document == {"keys": [], "pad": " " * 100_000}

    def test_a_body_cut_short_is_not_parsed(self) -> None:
        # The prefix `{"keys": []}` is valid JSON; the declared length says there was more.
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
        with ScriptedServer({"/jwks": raw(head + b'{"keys": []}')}) as server:
            refused_within_timeout(server.url + "/jwks", "short of its Content-Length")

    def test_hanging_before_the_status_line(self, issuer: FakeIssuer) -> None:
        issuer.fault = Fault(delay=5)
        refused_within_timeout(issuer.jwks_url, "within")

    def test_hanging_after_the_headers(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"
        with ScriptedServer({"/jwks": raw(head, then_hang=True)}) as server:
            refused_within_timeout(server.url + "/jwks", "within")

    def test_hanging_without_reading_anything(self) -> None:
        with ScriptedServer({"/jwks": hang()}) as server:
            refused_within_timeout(server.url + "/jwks", "within")

    def test_slow_loris_body(self, issuer: FakeIssuer) -> None:
        issuer.fault = Fault(body=json.dumps(issuer.jwks()).encode(), trickle_interval=0.05)
        refused_within_timeout(issuer.jwks_url, "within")

    def test_slow_loris_status_line_and_headers(self) -> None:
        # Every byte arrives well within a socket timeout, so only a deadline on the whole exchange stops it.
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n{}"
        with ScriptedServer({"/jwks": raw(head, interval=0.02)}) as server:
            refused_within_timeout(server.url + "/jwks", "within")


class TestDiscovery:
    def test_finds_the_jwks_uri(self, issuer: FakeIssuer) -> None:
        assert discover_jwks_url(issuer.issuer, timeout=TIMEOUT, max_bytes=CAP) == issuer.jwks_url
        assert issuer.requests[DISCOVERY_PATH] == 1
        assert issuer.jwks_requests == 0

    def test_an_issuer_without_trailing_slash_is_found_too(self) -> None:
        with FakeIssuer(issuer=None) as fake:
            fake._issuer = fake.url  # no trailing slash
            assert discover_jwks_url(fake.url, timeout=TIMEOUT, max_bytes=CAP) == fake.jwks_url

    def test_refuses_a_document_naming_another_issuer(self, issuer: FakeIssuer) -> None:
        issuer.discovery_document = {**issuer.discovery(), "issuer": "https://evil.example/"}
        with pytest.raises(FetchError, match="names issuer 'https://evil.example/'"):
            discover_jwks_url(issuer.issuer, timeout=TIMEOUT, max_bytes=CAP)

    def test_refuses_a_document_without_jwks_uri(self, issuer: FakeIssuer) -> None:
        issuer.discovery_document = {"issuer": issuer.issuer}
        with pytest.raises(FetchError, match="no jwks_uri"):
            discover_jwks_url(issuer.issuer, timeout=TIMEOUT, max_bytes=CAP)

    @pytest.mark.parametrize("jwks_uri", ["http://keys.example.com/jwks.json", "file:///etc/passwd", 42])
    def test_refuses_a_jwks_uri_that_is_not_https_off_loopback(self, issuer: FakeIssuer, jwks_uri: Any) -> None:
        issuer.discovery_document = {"issuer": issuer.issuer, "jwks_uri": jwks_uri}
        with pytest.raises(FetchError, match="refusing|no jwks_uri"):
            discover_jwks_url(issuer.issuer, timeout=TIMEOUT, max_bytes=CAP)
        assert issuer.jwks_requests == 0

    def test_an_https_issuer_may_not_send_us_to_plain_http_on_loopback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # No TLS server on loopback here, so the discovery answer is handed in; the check is what is tested.
        def answer_discovery(url: str, **kwargs: Any) -> FetchResult:
            assert url == "https://idp.example.com/.well-known/openid-configuration"
            document = {"issuer": "https://idp.example.com/", "jwks_uri": "http://127.0.0.1:8080/jwks"}
            return FetchResult(url, 200, document, None, None, None)

        monkeypatch.setattr("jwtguard.fetch.fetch_json", answer_discovery)
        with pytest.raises(FetchError, match="is not https"):
            discover_jwks_url("https://idp.example.com/", timeout=TIMEOUT, max_bytes=CAP)

    def test_a_failing_discovery_endpoint_is_a_fetch_error(self, issuer: FakeIssuer) -> None:
        with pytest.raises(FetchError, match="HTTP 404"):
            discover_jwks_url(issuer.url + "/tenant/", timeout=TIMEOUT, max_bytes=CAP)
        assert issuer.requests["/tenant" + DISCOVERY_PATH] == 1
        assert JWKS_PATH not in issuer.requests


# Egress proxy: a CONNECT proxy and an HTTPS issuer, both on 127.0.0.1. The issuer's name never resolves:
# only the proxy knows where it is, so a fetch that reaches it went through the proxy.

IDP = "idp.jwtguard.test"
KEYS = {"keys": [{"kty": "oct", "kid": "through-the-tunnel"}]}
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
#: No helper loop or wait outlives this many seconds.
HELPER_LIMIT = 5.0
#: What the brief allows a fetch cut at its deadline: the timeout plus a second.
CUT_WITHIN = TIMEOUT + 1.0


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_pki(directory: Path) -> Pki:
    """A CA, and a server certificate it signs for IDP and 127.0.0.1; another CA that signs nothing here."""
    ca_key, ca = _ca("jwtguard test CA")
    _, other_ca = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, IDP)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(IDP), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "other-ca.pem", directory / "idp.pem", directory / "idp.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.other_ca.write_bytes(other_ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


def read_head(conn: socket.socket) -> bytes:
    """Bytes up to the blank line ending a request head (at most 64 KiB; the socket's timeout bounds each read)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class _Helper:
    """A daemon thread serving a listening socket on 127.0.0.1 one connection at a time, stopped and joined."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._thread.join(HELPER_LIMIT)
        self._listener.close()
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class TLSIssuer(_Helper):
    """HTTPS with the certificate of IDP: GET /jwks answers KEYS, GET /moved a redirect to /jwks."""

    def __init__(self, pki: Pki) -> None:
        super().__init__()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(pki.cert, pki.key)
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: How the answer's end is told (tests.support.rawhttp.FRAMINGS).
        self.framing = "close"

    def handle(self, conn: socket.socket) -> None:
        with self._context.wrap_socket(conn, server_side=True) as tls:
            request_line, *lines = read_head(tls).decode("latin-1").split("\r\n")
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines) if value}
            self.requests.append((request_line, headers))
            if request_line.startswith("GET /moved "):
                tls.sendall(b"HTTP/1.1 302 Found\r\nLocation: /jwks\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            data, keep = frame(json.dumps(KEYS).encode(), self.framing)
            tls.sendall(data)
            if keep:
                with contextlib.suppress(OSError):
                    read_head(tls)  # until the client closes the connection (the socket's timeout bounds it)


class ConnectProxy(_Helper):
    """A CONNECT proxy that tunnels to 127.0.0.1:``target_port`` whatever host the CONNECT names.

    ``mode``: "tunnel" pipes bytes both ways; "hang" answers 200, then says nothing; "trickle" sends its answer
    to CONNECT a byte per 20 ms; "trickle-tunnel" tunnels, the server's bytes one per 10 ms. With ``credentials``
    ("user:password") a CONNECT without them is answered 407; with ``status`` every CONNECT is answered that.
    """

    def __init__(
        self, target_port: int, *, mode: str = "tunnel", credentials: str | None = None, status: int | None = None
    ) -> None:
        super().__init__()
        self._target_port = target_port
        self._mode = mode
        self._status = status
        self._expected = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None
        self.connects: list[str] = []
        self.authorizations: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, client: socket.socket) -> None:
        until = time.monotonic() + HELPER_LIMIT
        request_line, *lines = read_head(client).decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        assert method == "CONNECT"
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines) if value}
        self.connects.append(target)
        self.authorizations.append(headers.get("proxy-authorization"))
        if self._expected and headers.get("proxy-authorization") != self._expected:
            client.sendall(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\n\r\n')
            return
        if self._status:
            client.sendall(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % self._status)
            return
        established = b"HTTP/1.1 200 Connection established\r\n"
        if self._mode == "trickle":
            for byte in established + b"X-Padding: " + b"x" * 1000:
                if self.stopping.is_set() or time.monotonic() > until:
                    return
                client.sendall(bytes([byte]))
                time.sleep(0.02)
            return
        client.sendall(established + b"\r\n")
        if self._mode == "hang":
            self._drain_until_closed(client, until)
            return
        with socket.create_connection(("127.0.0.1", self._target_port), timeout=1.0) as upstream:
            self._pipe(client, upstream, until, trickle=self._mode == "trickle-tunnel")

    def _drain_until_closed(self, client: socket.socket, until: float) -> None:
        while not self.stopping.is_set() and time.monotonic() < until:
            readable, _, _ = select.select([client], [], [], 0.05)
            if readable and not client.recv(65536):
                return

    def _pipe(self, client: socket.socket, upstream: socket.socket, until: float, *, trickle: bool) -> None:
        while not self.stopping.is_set() and time.monotonic() < until:
            readable, _, _ = select.select([client, upstream], [], [], 0.05)
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                if source is client:
                    upstream.sendall(data)
                elif not trickle:
                    client.sendall(data)
                else:
                    for byte in data:
                        if self.stopping.is_set() or time.monotonic() > until:
                            return
                        client.sendall(bytes([byte]))
                        time.sleep(0.01)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_issuer(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[TLSIssuer]:
    """The HTTPS issuer, trusted through SSL_CERT_FILE (OpenSSL's default verify paths read it at each
    ``ssl.create_default_context()``); no proxy variable of the machine running the tests leaks in."""
    for name in PROXY_VARIABLES + NO_PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    with TLSIssuer(pki) as server:
        yield server


def use_proxy(monkeypatch: pytest.MonkeyPatch, setting: str, variable: str = "HTTPS_PROXY") -> None:
    monkeypatch.setenv(variable, setting)


class TestProxy:
    @pytest.mark.parametrize(
        ("variable", "setting"),
        [("HTTPS_PROXY", "http://127.0.0.1:{port}"), ("https_proxy", "127.0.0.1:{port}"), ("HTTPS_PROXY", "{url}/")],
    )
    @pytest.mark.parametrize(("port", "host_header"), [("", IDP), (":8443", f"{IDP}:8443")])
    def test_fetches_through_the_proxy(
        self,
        tls_issuer: TLSIssuer,
        monkeypatch: pytest.MonkeyPatch,
        variable: str,
        setting: str,
        port: str,
        host_header: str,
    ) -> None:
        monkeypatch.setenv("NO_PROXY", "localhost,.example.com,jwtguard.test.example")
        with ConnectProxy(tls_issuer.port) as proxy:
            use_proxy(monkeypatch, setting.format(port=proxy.port, url=proxy.url), variable)
            result = fetch(f"https://{IDP}{port}/jwks")
        assert result.document == KEYS
        assert proxy.connects == [f"{IDP}:{port[1:] or 443}"]
        assert proxy.authorizations == [None]
        [(request_line, headers)] = tls_issuer.requests
        assert request_line == "GET /jwks HTTP/1.1"
        assert headers["host"] == host_header
        assert "proxy-authorization" not in headers

    def test_a_redirect_through_the_proxy_is_not_followed(
        self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with ConnectProxy(tls_issuer.port) as proxy:
            use_proxy(monkeypatch, proxy.url)
            with pytest.raises(FetchError, match="HTTP 302"):
                fetch(f"https://{IDP}/moved")
        assert proxy.connects == [f"{IDP}:443"]
        assert [line for line, _ in tls_issuer.requests] == ["GET /moved HTTP/1.1"]

    @pytest.mark.parametrize(
        ("no_proxy", "port"),
        [
            ("jwtguard.test", ""),
            (".jwtguard.test", ""),
            (IDP, ""),
            ("*", ""),
            (f"example.com, {IDP}:8443", ":8443"),  # host:port entries match a URL naming that port, as in urllib
        ],
    )
    def test_no_proxy_goes_direct(
        self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch, no_proxy: str, port: str
    ) -> None:
        # Direct means resolving IDP, which would be a DNS query off this machine: the resolver answers here,
        # as it would for a name that does not exist, and says which address was asked for.
        asked: list[tuple[str, int]] = []

        def unresolvable(host: str, port: int, timeout: float) -> list[Any]:
            asked.append((host, port))
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        with ConnectProxy(tls_issuer.port) as proxy:
            use_proxy(monkeypatch, proxy.url)
            monkeypatch.setenv("no_proxy", no_proxy)
            monkeypatch.setattr("jwtguard.fetch.resolve", unresolvable)
            with pytest.raises(FetchError, match="gaierror"):
                fetch(f"https://{IDP}{port}/jwks")
        assert asked == [(IDP, int(port[1:] or 443))]
        assert proxy.connects == []

    def test_sends_the_proxy_credentials(self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
        with ConnectProxy(tls_issuer.port, credentials="alice:s3cret@pass") as proxy:
            use_proxy(monkeypatch, f"http://alice:s3cret%40pass@127.0.0.1:{proxy.port}")
            assert fetch(f"https://{IDP}/jwks").document == KEYS
        assert proxy.authorizations == ["Basic " + base64.b64encode(b"alice:s3cret@pass").decode()]
        assert "proxy-authorization" not in tls_issuer.requests[0][1]

    def test_a_407_names_the_proxy_status_and_never_the_password(
        self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        with ConnectProxy(tls_issuer.port, credentials="alice:s3cret") as proxy:
            use_proxy(monkeypatch, f"http://alice:wr0ng-pw@127.0.0.1:{proxy.port}")
            error = refused_within_timeout(
                f"https://{IDP}/jwks", rf"proxy http://127\.0\.0\.1:{proxy.port} answered CONNECT with HTTP 407"
            )
        assert proxy.connects == [f"{IDP}:443"]
        assert tls_issuer.requests == []
        encoded = base64.b64encode(b"alice:wr0ng-pw").decode()
        said = [str(error), repr(error), str(error.__cause__), caplog.text]
        assert not [text for text in said if "wr0ng-pw" in text or encoded in text]

    @pytest.mark.parametrize("status", [403, 502])
    def test_a_refused_connect_names_the_proxy_status(
        self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch, status: int
    ) -> None:
        with ConnectProxy(tls_issuer.port, status=status) as proxy:
            use_proxy(monkeypatch, proxy.url)
            refused_within_timeout(f"https://{IDP}/jwks", f"answered CONNECT with HTTP {status} Refused")
        assert tls_issuer.requests == []

    @pytest.mark.parametrize(
        "setting", ["https://127.0.0.1:3128", "socks5://127.0.0.1:1080", "socks5h://bob:pw-secret@127.0.0.1:1080"]
    )
    def test_only_http_proxies(self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
        def no_connection(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a refused proxy must not be connected to")

        use_proxy(monkeypatch, setting)
        monkeypatch.setattr(socket, "create_connection", no_connection)
        monkeypatch.setattr("jwtguard.fetch.resolve", no_connection)
        with pytest.raises(FetchError, match=r"proxy; only http:// proxies are supported") as caught:
            fetch(f"https://{IDP}/jwks")
        assert "pw-secret" not in str(caught.value)

    @pytest.mark.parametrize("mode", ["hang", "trickle", "trickle-tunnel"])
    def test_a_stalling_proxy_is_cut_at_the_deadline(
        self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch, mode: str
    ) -> None:
        with ConnectProxy(tls_issuer.port, mode=mode) as proxy:
            use_proxy(monkeypatch, proxy.url)
            started = time.monotonic()
            with pytest.raises(FetchError, match="within"):
                fetch(f"https://{IDP}/jwks")
            assert time.monotonic() - started < CUT_WITHIN
        assert proxy.connects == [f"{IDP}:443"]

    @pytest.mark.parametrize(
        ("host", "trusted", "match"),
        [("other.jwtguard.test", "ca", "Hostname mismatch"), (IDP, "other_ca", "unable to get local issuer")],
    )
    def test_the_real_host_certificate_is_verified_through_the_tunnel(
        self, tls_issuer: TLSIssuer, pki: Pki, monkeypatch: pytest.MonkeyPatch, host: str, trusted: str, match: str
    ) -> None:
        monkeypatch.setenv("SSL_CERT_FILE", str(getattr(pki, trusted)))
        with ConnectProxy(tls_issuer.port) as proxy:
            use_proxy(monkeypatch, proxy.url)
            refused_within_timeout(f"https://{host}/jwks", f"CERTIFICATE_VERIFY_FAILED.*{match}")
        assert proxy.connects == [f"{host}:443"]
        assert tls_issuer.requests == []

    def test_loopback_is_never_proxied(
        self, tls_issuer: TLSIssuer, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with ConnectProxy(tls_issuer.port) as proxy:
            for variable in PROXY_VARIABLES:
                use_proxy(monkeypatch, proxy.url, variable)
            assert fetch(f"https://127.0.0.1:{tls_issuer.port}/jwks").document == KEYS
            assert fetch(issuer.jwks_url).document == issuer.jwks()
        assert proxy.connects == []
        assert len(tls_issuer.requests) == 1


class TestFraming:
    """Every way an answer's end can be told is read to the end, on every Python: from 3.13 on, http.client
    closes a response (and with "Connection: close" its socket) as soon as the last byte is read."""

    @pytest.mark.parametrize("framing", FRAMINGS)
    def test_a_key_set(self, framing: str) -> None:
        with ScriptedServer({"/jwks": framed_json(KEYS, framing)}) as server:
            result = fetch(server.url + "/jwks")
        assert result.document == KEYS

    @pytest.mark.parametrize("framing", FRAMINGS)
    def test_discovery_then_its_key_set(self, framing: str) -> None:
        with ScriptedServer() as server:
            server.routes[DISCOVERY_PATH] = framed_json(
                {"issuer": server.url, "jwks_uri": server.url + "/jwks"}, framing
            )
            server.routes["/jwks"] = framed_json(KEYS, framing)
            jwks_uri = discover_jwks_url(server.url, timeout=TIMEOUT, max_bytes=CAP)
            result = fetch(jwks_uri)
        assert result.document == KEYS
        assert server.paths() == [DISCOVERY_PATH, "/jwks"]

    @pytest.mark.parametrize("framing", FRAMINGS)
    def test_through_the_proxy(self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch, framing: str) -> None:
        tls_issuer.framing = framing
        with ConnectProxy(tls_issuer.port) as proxy:
            use_proxy(monkeypatch, proxy.url)
            result = fetch(f"https://{IDP}/jwks")
        assert result.document == KEYS
        assert proxy.connects == [f"{IDP}:443"]


class TestNameResolution:
    """HTTP_TIMEOUT covers the name lookup too: the system resolver cannot be interrupted, so it runs aside."""

    def test_a_stalled_resolver_does_not_hold_the_fetch_past_its_deadline(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        release = threading.Event()

        def stalled(*args: Any, **kwargs: Any) -> Any:
            release.wait(HELPER_LIMIT)  # a resolver that answers only after the fetch gave up
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

        monkeypatch.setattr(socket, "getaddrinfo", stalled)
        try:
            refused_within_timeout(f"https://{IDP}/jwks", "no complete answer within")
        finally:
            release.set()

    def test_a_resolver_error_is_a_fetch_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def unknown(*args: Any, **kwargs: Any) -> Any:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", unknown)
        refused_within_timeout(f"https://{IDP}/jwks", "gaierror")

    def test_a_name_idna_cannot_encode_is_a_fetch_error_at_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def too_long(*args: Any, **kwargs: Any) -> Any:
            # What socket.getaddrinfo raises for a label over 63 characters: a UnicodeError, not an OSError.
            raise UnicodeError("encoding with 'idna' codec failed (UnicodeError: label empty or too long)")

        monkeypatch.setattr(socket, "getaddrinfo", too_long)
        started = time.monotonic()
        with pytest.raises(FetchError, match="UnicodeError: encoding with 'idna' codec failed"):
            fetch(f"https://{'a' * 64}.example.com/jwks", timeout=5)
        assert time.monotonic() - started < 1, "refused at once, not when the deadline passes"

    @pytest.mark.parametrize("host", ["idp .example.com", "idp\x00.example.com", "idp\x7f.example.com"])
    def test_a_host_http_client_refuses_is_a_fetch_error(self, host: str, monkeypatch: pytest.MonkeyPatch) -> None:
        # A jwks_uri is the issuer's to write; http.client refuses such a host before any connection.
        def no_lookup(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a host http.client refuses must not be looked up")

        monkeypatch.setattr("jwtguard.fetch.resolve", no_lookup)
        with pytest.raises(FetchError, match="InvalidURL"):
            fetch(f"https://{host}/jwks")

    def test_each_address_is_tried_in_turn(self, tls_issuer: TLSIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
        closed = free_port()
        addresses = [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", closed)),
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", tls_issuer.port)),
        ]
        asked: list[tuple[str, int]] = []

        def two_addresses(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
            asked.append((host, port))
            return addresses

        monkeypatch.setattr("jwtguard.fetch.resolve", two_addresses)
        assert fetch(f"https://{IDP}:{tls_issuer.port}/jwks").document == KEYS
        assert asked == [(IDP, tls_issuer.port)]

    def test_resolve_answers_for_loopback(self) -> None:
        from jwtguard.fetch import resolve

        assert {info[4][0] for info in resolve("127.0.0.1", 443, 1.0)} == {"127.0.0.1"}
