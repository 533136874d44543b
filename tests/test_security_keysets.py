"""Hostile key sets and issuers: each answer is refused with a clear log line, and a good cached key set stays.

The pattern of every warm case: fetch a good key set, make the issuer hostile, force a refresh, then check the
log, that genuine tokens still validate, and that nobody else was asked. Cold cases (no key set yet) must be a
503 through every door, never a 500. docs/security.md maps these to RFC 8725 and OIDC Discovery.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from jwt.algorithms import RSAAlgorithm

from jwtguard import exceptions, validate_token
from jwtguard.conf import get_settings
from jwtguard.jwks import MAX_KEYS, KeyProvider, get_provider
from jwtguard.testing import FakeIssuer, Fault, SigningKey, generate_key
from tests.support.doors import ACCEPTED, Outcome, outcomes
from tests.support.keypool import KeyPool, reset
from tests.support.rawhttp import ScriptedServer, answer, raw
from tests.support.tokens import b64

Configure = Callable[..., None]
UNAVAILABLE = Outcome(503, "signing keys unavailable — the token is not at fault", "jwks_unavailable")
KEEPS = "serving the last good key set"
TIMEOUT = 1.0
#: What "within the deadline" allows beyond HTTP_TIMEOUT on a shared, busy 2-core machine.
MARGIN = 1.0
SMALL_CAP = 4096


@pytest.fixture
def key_pool() -> KeyPool:
    """Where this test's issuers take their new keys from (``FakeIssuer(key_factory=...)``)."""
    return KeyPool()


@pytest.fixture(scope="module")
def _servers() -> Iterator[list[tuple[FakeIssuer, list[SigningKey]]]]:
    with FakeIssuer("RS256") as first, FakeIssuer("RS256") as second:
        yield [(first, list(first.keys)), (second, list(second.keys))]


@pytest.fixture
def issuer(_servers: list[tuple[FakeIssuer, list[SigningKey]]], key_pool: KeyPool) -> FakeIssuer:
    """The issuer on 127.0.0.1 (conftest's, kept for the module and reset for each test)."""
    return reset(*_servers[0], key_pool)


@pytest.fixture
def other(_servers: list[tuple[FakeIssuer, list[SigningKey]]], key_pool: KeyPool) -> FakeIssuer:
    """Another server on 127.0.0.1, where a hostile answer tries to send us; it must never be asked."""
    return reset(*_servers[1], key_pool)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="jwtguard")
    return caplog


def provider() -> KeyProvider:
    return get_provider(get_settings().issuers[0])


@dataclass
class Warm:
    """A deployment that holds a good key set of ``issuer`` (one JWKS request so far)."""

    issuer: FakeIssuer
    provider: KeyProvider

    def refresh_keeps_the_set(self, log: pytest.LogCaptureFixture, reason: str) -> None:
        """Force a refresh against the now hostile issuer: the same set comes back, the log says why."""
        before = self.provider.read_shared_keyset()
        assert before is not None
        log.clear()
        started = time.monotonic()
        with pytest.raises(exceptions.KeySetUnavailable) as refused:
            self.provider.refresh("security-test")
        assert time.monotonic() - started < TIMEOUT + MARGIN
        assert reason in refused.value.reason
        after = self.provider.read_shared_keyset()
        assert after is not None
        assert after.fetched_at == before.fetched_at
        assert after.keys == before.keys
        failures = [r.getMessage() for r in log.records if "failed" in r.getMessage() and r.levelno >= logging.WARNING]
        assert len(failures) == 1, log.text
        assert reason in failures[0]
        assert KEEPS in failures[0]
        self.still_serves()

    def still_serves(self) -> None:
        requests = self.issuer.jwks_requests
        seen = outcomes(f"Bearer {self.issuer.mint()}")
        assert seen == dict.fromkeys(seen, ACCEPTED)
        assert self.issuer.jwks_requests == requests  # served from the cached set, no new fetch
        assert not self.provider.cache.is_down


@pytest.fixture
def warm(issuer: FakeIssuer, configure: Configure) -> Warm:
    configure(issuer, HTTP_TIMEOUT=TIMEOUT, JWKS_MAX_BYTES=SMALL_CAP * 8)
    validate_token(issuer.mint())
    assert issuer.jwks_requests == 1
    return Warm(issuer, provider())


def good_jwk(issuer: FakeIssuer) -> dict[str, Any]:
    return issuer.signing_key.public_jwk()


def assert_unavailable(issuer: FakeIssuer, **claims: Any) -> None:
    seen = outcomes(f"Bearer {issuer.mint(**claims)}")
    assert seen == dict.fromkeys(seen, UNAVAILABLE)


# -- size and shape -----------------------------------------------------------------------------------------


class TestHugeKeySets:
    """A key set over JWKS_MAX_BYTES is refused, whether it says so (Content-Length) or just streams."""

    def huge(self, issuer: FakeIssuer) -> bytes:
        padding = [{"kty": "RSA", "kid": f"pad-{n}", "n": "x" * 500, "e": "AQAB"} for n in range(600)]
        return json.dumps({"keys": [good_jwk(issuer), *padding]}).encode()

    def test_declared_by_content_length(self, warm: Warm, log: pytest.LogCaptureFixture) -> None:
        warm.issuer.fault = Fault(body=self.huge(warm.issuer))
        warm.refresh_keeps_the_set(log, f"over the {SMALL_CAP * 8}-byte cap")

    def test_streamed_without_content_length(
        self, configure: Configure, log: pytest.LogCaptureFixture, key_pool: KeyPool
    ) -> None:
        with FakeIssuer(key_factory=key_pool) as issuer:
            body = self.huge(issuer)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            with ScriptedServer({"/jwks": raw(head + body)}) as server:
                configure(issuer, JWKS_URL=f"{server.url}/jwks", HTTP_TIMEOUT=TIMEOUT, JWKS_MAX_BYTES=SMALL_CAP)
                assert_unavailable(issuer)
        assert f"body is over the {SMALL_CAP}-byte cap" in log.text

    def test_a_huge_set_when_cold_is_a_503(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, JWKS_MAX_BYTES=SMALL_CAP)
        issuer.fault = Fault(body=self.huge(issuer))
        assert_unavailable(issuer)


class TestDeeplyNestedKeySets:
    """JSON nested deeper than a key set needs is refused before it is parsed into keys or cached."""

    def test_nesting_beyond_the_parser(self, warm: Warm, log: pytest.LogCaptureFixture) -> None:
        warm.issuer.fault = Fault(body=b'{"keys":' + b"[" * 10_000 + b"]" * 10_000 + b"}")
        warm.refresh_keeps_the_set(log, "not valid JSON")

    def test_nesting_that_the_parser_reads_but_the_cache_cannot_store(
        self, warm: Warm, log: pytest.LogCaptureFixture
    ) -> None:
        """600 levels parse, but pickling them for the shared cache overflows the stack: without a depth
        limit the set was used by this process only, the cache reported as down, and every process fetched."""
        junk = b'{"kty":"junk","kid":"junk","x":' + b"[" * 600 + b"]" * 600 + b"}"
        body = b'{"keys":[' + json.dumps(good_jwk(warm.issuer)).encode() + b"," + junk + b"]}"
        warm.issuer.fault = Fault(body=body)
        warm.refresh_keeps_the_set(log, "nested deeper than")
        assert "failed on set" not in log.text
        entry = caches["default"].get(warm.provider.entry_key)
        current = warm.provider.read_shared_keyset()
        assert entry is not None
        assert current is not None
        assert entry["fetched_at"] == current.fetched_at

    def test_a_key_set_of_ordinary_depth_is_read(self, warm: Warm) -> None:
        jwk = {**good_jwk(warm.issuer), "x5c": ["Y2VydA=="], "key_ops": ["verify"]}
        warm.issuer.jwks_document = {"keys": [jwk], "meta": {"a": {"b": [{"c": [1]}]}}}
        keyset = warm.provider.refresh("security-test")
        assert warm.issuer.signing_key.kid in keyset.keys


class TestDuplicateKids:
    """RFC 7517 4.5: kids should be unique. A set full of duplicates is read only so far (MAX_KEYS usable
    keys out of at most 4 * MAX_KEYS entries) and logged; per kid and alg, the first key is the one tried."""

    def test_a_set_full_of_one_kid(
        self, issuer: FakeIssuer, configure: Configure, log: pytest.LogCaptureFixture
    ) -> None:
        configure(issuer)
        impostor = generate_key("RS256", kid="dup")
        copies = [impostor.public_jwk() for _ in range(MAX_KEYS * 4 + 10)]
        issuer.jwks_document = {"keys": [*copies, good_jwk(issuer)]}
        forged = issuer.mint(key=generate_key("RS256", kid="dup"))
        seen = outcomes(f"Bearer {forged}")
        assert seen == dict.fromkeys(seen, Outcome(401, "Bearer token is invalid", "invalid_signature"))
        assert f"more than {MAX_KEYS} usable keys" in log.text
        assert "keys share kid 'dup'" in log.text
        # Only the first MAX_KEYS * 4 entries are read: the genuine key, published after them, is not.
        seen = outcomes(f"Bearer {issuer.mint()}")
        assert {o.code for o in seen.values()} == {"unknown_kid"}

    def test_duplicates_do_not_hide_the_other_kids(self, warm: Warm, log: pytest.LogCaptureFixture) -> None:
        impostor = generate_key("RS256", kid="dup")
        warm.issuer.jwks_document = {"keys": [impostor.public_jwk()] * 10 + [good_jwk(warm.issuer)]}
        warm.provider.refresh("security-test")
        assert "10 keys share kid 'dup'" in log.text
        warm.still_serves()


# -- keys that cannot be used -------------------------------------------------------------------------------


def rsa_with(issuer: FakeIssuer, **members: Any) -> dict[str, Any]:
    return {**good_jwk(issuer), "kid": "bad", **members}


UNUSABLE: dict[str, Callable[[FakeIssuer], Any]] = {
    "kty-unknown": lambda issuer: {"kty": "XYZ", "kid": "bad", "n": "AQAB"},
    "kty-missing": lambda issuer: {k: v for k, v in rsa_with(issuer).items() if k != "kty"},
    "kty-number": lambda issuer: rsa_with(issuer, kty=3),
    "crv-unknown": lambda issuer: {**generate_key("ES256").public_jwk(), "kid": "bad", "crv": "P-192"},
    "n-not-base64": lambda issuer: rsa_with(issuer, n="!!!"),
    "n-number": lambda issuer: rsa_with(issuer, n=12345),
    "n-with-space": lambda issuer: rsa_with(issuer, n=good_jwk(issuer)["n"][:8] + " " + good_jwk(issuer)["n"][8:]),
    "e-too-big": lambda issuer: rsa_with(issuer, e=b64(b"\xff" * 600)),
    "e-not-base64": lambda issuer: rsa_with(issuer, e="!!"),
    "x-not-base64": lambda issuer: {**generate_key("ES256").public_jwk(), "kid": "bad", "x": "not base64!"},
    "y-short": lambda issuer: {**(jwk := generate_key("ES256").public_jwk()), "kid": "bad", "y": jwk["y"][:-4]},
    "off-curve": lambda issuer: {**generate_key("ES256").public_jwk(), "kid": "bad", "y": b64(b"\x01" * 32)},
    "use-enc": lambda issuer: rsa_with(issuer, use="enc"),
    "key-ops-encrypt": lambda issuer: rsa_with(issuer, key_ops=["encrypt"]),
    "alg-other": lambda issuer: rsa_with(issuer, alg="RS512"),
    "alg-hs256": lambda issuer: rsa_with(issuer, alg="HS256"),
    "no-kid": lambda issuer: {k: v for k, v in rsa_with(issuer).items() if k != "kid"},
    "kid-number": lambda issuer: rsa_with(issuer, kid=7),
    "not-an-object": lambda issuer: ["RSA"],
}


class TestUnusableKeys:
    """Keys of unknown kty or crv, invalid base64 in n/e/x/y, off-curve points, encryption keys: skipped."""

    @pytest.mark.parametrize("name", sorted(UNUSABLE))
    def test_a_set_of_only_unusable_keys_keeps_the_cached_set(
        self, warm: Warm, log: pytest.LogCaptureFixture, name: str
    ) -> None:
        warm.issuer.jwks_document = {"keys": [UNUSABLE[name](warm.issuer)]}
        warm.refresh_keeps_the_set(log, "has no usable key")

    @pytest.mark.parametrize("name", sorted(UNUSABLE))
    def test_an_unusable_key_beside_a_good_one_is_skipped(
        self, issuer: FakeIssuer, configure: Configure, name: str
    ) -> None:
        configure(issuer, ALGORITHMS=["RS256", "ES256"])
        issuer.jwks_document = {"keys": [UNUSABLE[name](issuer), good_jwk(issuer)]}
        seen = outcomes(f"Bearer {issuer.mint()}")
        assert seen == dict.fromkeys(seen, ACCEPTED)
        forged = outcomes(f"Bearer {issuer.mint(key=generate_key('RS256', kid='bad'))}")
        assert {o.status for o in forged.values()} == {401}

    def test_the_reasons_are_logged(
        self, issuer: FakeIssuer, configure: Configure, log: pytest.LogCaptureFixture
    ) -> None:
        configure(issuer, ALGORITHMS=["RS256", "ES256"])
        issuer.jwks_document = {"keys": [UNUSABLE[name](issuer) for name in sorted(UNUSABLE)]}
        assert_unavailable(issuer)
        text = log.text
        assert "has unsupported kty/crv 'XYZ'/None; skipped" in text
        assert "has unsupported kty/crv 'EC'/'P-192'; skipped" in text
        assert "cannot be loaded" in text
        # The off-curve point, in cryptography's words (which changed after cryptography 41, our floor).
        assert "Point is not on the curve" in text or "(Invalid EC key.)" in text
        assert "is not an object; skipped" in text


class TestPrivateKeyMaterial:
    """A JWKS that publishes private members (d, p, q, ..., or an oct key's k) is a leak: never used, logged
    as an error naming the kid."""

    def test_a_private_key_is_never_used_and_logged_as_a_leak(
        self, issuer: FakeIssuer, configure: Configure, log: pytest.LogCaptureFixture
    ) -> None:
        configure(issuer)
        key = generate_key("RS256", kid="leaked")
        leaked = {**RSAAlgorithm.to_jwk(key.private_key, as_dict=True), "kid": "leaked", "alg": "RS256", "use": "sig"}
        assert "d" in leaked
        issuer.jwks_document = {"keys": [good_jwk(issuer), leaked]}
        forged = issuer.mint(key=key)  # a genuine signature, by the key the issuer leaked
        seen = outcomes(f"Bearer {forged}")
        assert seen == dict.fromkeys(seen, Outcome(401, "JWT does not have a valid Key ID", "unknown_kid"))
        errors = [r for r in log.records if r.levelno == logging.ERROR]
        assert errors, log.text
        assert all("publishes PRIVATE key material" in r.getMessage() for r in errors)
        assert "(kid 'leaked')" in errors[0].getMessage()
        assert "Rotate it now" in errors[0].getMessage()

    @pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth"])
    def test_any_private_member_is_enough(self, warm: Warm, log: pytest.LogCaptureFixture, member: str) -> None:
        jwk = {**good_jwk(warm.issuer), member: "AQAB"}
        warm.issuer.jwks_document = {"keys": [jwk]}
        warm.refresh_keeps_the_set(log, "has no usable key")
        assert "publishes PRIVATE key material" in log.text

    def test_a_symmetric_key_is_a_leaked_secret(self, warm: Warm, log: pytest.LogCaptureFixture) -> None:
        warm.issuer.jwks_document = {"keys": [{"kty": "oct", "kid": "hmac", "k": b64(b"secret"), "alg": "HS256"}]}
        warm.refresh_keeps_the_set(log, "has no usable key")
        assert "(kid 'hmac') publishes PRIVATE key material" in log.text


# -- the issuer's HTTP ----------------------------------------------------------------------------------------


class TestRedirects:
    """A redirect is never followed: the key set would come from a host nobody configured."""

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_warm(self, warm: Warm, other: FakeIssuer, log: pytest.LogCaptureFixture, status: int) -> None:
        warm.issuer.fault = Fault(status=status, body=b"", headers=(("Location", other.jwks_url),))
        warm.refresh_keeps_the_set(log, f"HTTP {status}")
        assert sum(other.requests.values()) == 0

    def test_cold(self, issuer: FakeIssuer, configure: Configure, other: FakeIssuer) -> None:
        configure(issuer)
        issuer.fault = Fault(status=302, body=b"", headers=(("Location", other.jwks_url),))
        assert_unavailable(issuer)
        assert sum(other.requests.values()) == 0

    def test_of_the_discovery_document(self, settings: Any, other: FakeIssuer, log: pytest.LogCaptureFixture) -> None:
        moved = answer(302, b"", (("Location", other.url + "/.well-known/openid-configuration"),))
        with ScriptedServer({"/.well-known/openid-configuration": moved}) as server:
            settings.JWTGUARD = {**other.settings(), "ISSUER": server.url + "/", "JWKS_URL": None}
            assert_unavailable(other, iss=server.url + "/")
        assert sum(other.requests.values()) == 0
        assert "HTTP 302" in log.text


class TestSlowLoris:
    """HTTP_TIMEOUT bounds the whole exchange, not each read: a server that trickles bytes fast enough to
    never trip a per-read timeout is cut off at the deadline."""

    def test_a_trickled_body(self, warm: Warm, log: pytest.LogCaptureFixture) -> None:
        warm.issuer.fault = Fault(trickle_interval=0.05)  # the whole key set, a byte every 50 ms: ~20 s
        warm.refresh_keeps_the_set(log, "no complete answer within")

    def test_trickled_headers(self, warm: Warm, settings: Any, log: pytest.LogCaptureFixture) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 400 + b"\r\n\r\n{}"
        with ScriptedServer({"/jwks": raw(head, interval=0.05)}) as server:
            settings.JWTGUARD = {**settings.JWTGUARD, "JWKS_URL": f"{server.url}/jwks"}
            slow = Warm(warm.issuer, provider())
            held = warm.provider.read_shared_keyset()
            assert held is not None
            slow.provider.cache.set(slow.provider.entry_key, held.to_entry(), 600)
            slow.refresh_keeps_the_set(log, "no complete answer within")

    def test_silence(self, warm: Warm, log: pytest.LogCaptureFixture) -> None:
        warm.issuer.fault = Fault(delay=10)
        warm.refresh_keeps_the_set(log, "no complete answer within")

    def test_cold_the_request_gets_its_503_within_the_deadline(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, HTTP_TIMEOUT=TIMEOUT)
        issuer.fault = Fault(trickle_interval=0.05)
        started = time.monotonic()
        with pytest.raises(exceptions.KeySetUnavailable):
            validate_token(issuer.mint())
        assert time.monotonic() - started < TIMEOUT + MARGIN


# -- discovery ------------------------------------------------------------------------------------------------


@pytest.fixture
def discovering(issuer: FakeIssuer, configure: Configure) -> Warm:
    """A deployment that found its key set by OIDC discovery, and holds it."""
    configure(issuer, JWKS_URL=None, HTTP_TIMEOUT=TIMEOUT)
    validate_token(issuer.mint())
    assert issuer.requests["/.well-known/openid-configuration"] == 1
    return Warm(issuer, provider())


def forget_discovery(warm: Warm) -> None:
    """The remembered jwks_uri expires (it is kept an hour): the next refresh reads discovery again."""
    caches["default"].delete(warm.provider.discovery_key)
    warm.provider.cache.local.delete(warm.provider.discovery_key)


class TestDiscovery:
    """OIDC Discovery 4.3: the document's issuer must be exactly ISSUER; its jwks_uri must be https (or
    loopback http for development). A hostile document is refused and the known key set kept."""

    @pytest.mark.parametrize("variant", ["other", "no-slash", "upper", "missing", "number", "list"])
    def test_an_issuer_that_is_not_ours(
        self, discovering: Warm, other: FakeIssuer, log: pytest.LogCaptureFixture, variant: str
    ) -> None:
        issuer = discovering.issuer
        value = {
            "other": other.issuer,
            "no-slash": issuer.issuer.rstrip("/"),
            "upper": issuer.issuer.upper(),
            "missing": None,
            "number": 7,
            "list": [issuer.issuer],
        }[variant]
        issuer.discovery_document = {"issuer": value, "jwks_uri": other.jwks_url}
        forget_discovery(discovering)
        discovering.refresh_keeps_the_set(log, "discovery names issuer")
        assert sum(other.requests.values()) == 0

    @pytest.mark.parametrize(
        ("jwks_uri", "reason"),
        [
            ("http://jwks.example.invalid/keys", "refusing to fetch"),
            ("http://127.0.0.1.example.invalid/keys", "refusing to fetch"),
            ("http://localhost.example.invalid/keys", "refusing to fetch"),
            ("http://127.0.0.1@jwks.example.invalid/keys", "refusing to fetch"),
            ("ftp://127.0.0.1/keys", "refusing to fetch"),
            ("file:///etc/passwd", "refusing to fetch"),
            ("//jwks.example.invalid/keys", "refusing to fetch"),
            ("https:///keys", "refusing to fetch"),
            ("", "refusing to fetch"),
            ("http://127.0.0.1:99999/keys", "refusing to fetch"),
            ("http://127.0.0.1:port/keys", "refusing to fetch"),
            ("https://[::1/keys", "refusing to fetch"),
            (None, "no jwks_uri"),
            (7, "no jwks_uri"),
            (["https://a.example/"], "no jwks_uri"),
        ],
        ids=repr,
    )
    def test_a_jwks_uri_that_is_not_https(
        self, discovering: Warm, log: pytest.LogCaptureFixture, jwks_uri: Any, reason: str
    ) -> None:
        discovering.issuer.discovery_document = {"issuer": discovering.issuer.issuer, "jwks_uri": jwks_uri}
        forget_discovery(discovering)
        discovering.refresh_keeps_the_set(log, reason)

    def test_cold_an_unparsable_jwks_uri_is_a_503_and_discovery_is_not_asked_again(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        # A bad port or bracket made urllib raise ValueError: a 401 or a 500 depending on the door, and no
        # backoff, so every request read the discovery document again.
        configure(issuer, JWKS_URL=None)
        issuer.discovery_document = {"issuer": issuer.issuer, "jwks_uri": "http://127.0.0.1:99999/keys"}
        assert_unavailable(issuer)
        with pytest.raises(exceptions.KeySetUnavailable):
            validate_token(issuer.mint())
        assert issuer.requests["/.well-known/openid-configuration"] == 1
        assert issuer.jwks_requests == 0

    def test_cold_a_mismatched_issuer_is_a_503_and_no_key_set_is_fetched(
        self, issuer: FakeIssuer, other: FakeIssuer, configure: Configure
    ) -> None:
        configure(issuer, JWKS_URL=None)
        issuer.discovery_document = {"issuer": other.issuer, "jwks_uri": other.jwks_url}
        assert_unavailable(issuer)
        assert issuer.jwks_requests == 0
        assert sum(other.requests.values()) == 0


def test_an_unknown_kid_refreshes_against_a_hostile_issuer_and_keeps_the_set(
    issuer: FakeIssuer, configure: Configure, log: pytest.LogCaptureFixture
) -> None:
    """The other road to a refresh: a token under a new kid, when the cooldown allows one."""
    configure(issuer, HTTP_TIMEOUT=TIMEOUT)
    validate_token(issuer.mint())
    issuer.fault = Fault(body=b'{"keys":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    stranger = issuer.mint(key=generate_key("RS256", kid="new-kid"))
    seen = outcomes(f"Bearer {stranger}")
    assert seen == dict.fromkeys(seen, Outcome(401, "JWT does not have a valid Key ID", "unknown_kid"))
    assert issuer.jwks_requests == 2  # the failed refresh armed the backoff: the other doors did not ask again
    assert "body is not valid JSON" in log.text
    assert KEEPS in log.text
    Warm(issuer, provider()).still_serves()
