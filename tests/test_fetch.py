"""``jwtguard.fetch``: the one place that does HTTP, against real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

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
from tests.conftest import free_port
from tests.rawhttp import ScriptedServer, answer, hang, json_answer, raw

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
