"""``KeyProvider``: the issuer's keys shared by every process, against a real issuer over HTTP.

In-process tests use fakeredis (and the real Redis where marked); two ``KeyProvider`` instances on one cache
stand for two processes when a race has to be set up exactly. ``TestAcrossProcesses`` runs real OS
processes (``tests/support/workers.py``) on a real Redis.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.core.cache import caches
from django.dispatch import Signal

from jwtguard import jwks, signals, validate_token
from jwtguard.conf import get_settings
from jwtguard.exceptions import (
    AlgorithmNotAllowed,
    FetchError,
    KeySetUnavailable,
    MissingKeyId,
    UnknownKeyId,
)
from jwtguard.jwks import KeyProvider, get_provider, parse_jwks
from jwtguard.testing import FakeIssuer, Fault, generate_key
from tests.support import replica
from tests.support.loopback import RedisServer, real_redis_cache, require_real_redis
from tests.support.rawhttp import ScriptedServer, delayed, json_answer
from tests.support.workers import Cluster, totals

HTTP_TIMEOUT = 0.5
#: What "within HTTP_TIMEOUT" may overrun by on a loaded 2-core machine.
MARGIN = 0.5
#: The same for bounds measured across several processes, which a busy machine may leave unscheduled a while.
PROCESS_SLACK = 1.0

Make = Callable[..., KeyProvider]


@pytest.fixture
def make(issuer: FakeIssuer, configure: Callable[..., None]) -> Make:
    """``make(**JWTGUARD overrides)``: this process's provider for the test issuer (HTTP_TIMEOUT 0.5 s)."""

    def build(**overrides: Any) -> KeyProvider:
        configure(issuer, **{"HTTP_TIMEOUT": HTTP_TIMEOUT, **overrides})
        return get_provider(get_settings().issuers[0])

    return build


def another_process(provider: KeyProvider) -> KeyProvider:
    """A provider with its own memory (L1) on the same shared cache: what a second worker has."""
    return KeyProvider(provider.config)


def forged(issuer: FakeIssuer) -> str:
    """A token signed by the issuer's key but naming a kid nobody published."""
    return issuer.mint(headers={"kid": f"forged-{uuid.uuid4().hex}"})


@pytest.fixture
def sent() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every jwtguard signal sent during the test, as (name, arguments)."""
    records: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for name in ("jwks_fetched", "jwks_fetch_failed", "token_rejected"):
        signal: Signal = getattr(signals, name)

        def receive(sender: Any, signal: Any = None, _name: str = name, **kwargs: Any) -> None:
            records.append((_name, {"sender": sender, **kwargs}))

        signal.connect(receive, weak=False)
        receivers.append((signal, receive))
    yield records
    for signal, receive in receivers:
        signal.disconnect(receive)


def fetches(records: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [kwargs["reason"] for name, kwargs in records if name == "jwks_fetched"]


def settled(provider: KeyProvider) -> None:
    """Wait for the provider's unknown-kid fetch, if one still runs: its signal must not land in the next test."""
    wait_for(lambda: provider._kid_fetch is None or provider._kid_fetch.is_set())


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# -- parsing ----------------------------------------------------------------------------------------------


class TestParseJwks:
    def jwk(self, algorithm: str = "RS256", **members: Any) -> dict[str, Any]:
        return {**generate_key(algorithm, kid=members.pop("kid", None)).public_jwk(), **members}

    def test_keeps_usable_signature_keys_by_kid(self) -> None:
        rsa, ec = self.jwk("RS256", kid="r"), self.jwk("ES256", kid="e")
        keys = parse_jwks({"keys": [rsa, ec]}, ("RS256", "ES256"), source="test")
        assert sorted(keys) == ["e", "r"]
        assert keys["r"][0].algorithms == frozenset({"RS256"})
        assert keys["e"][0].kty == "EC"

    def test_a_key_without_alg_serves_every_allowed_algorithm_of_its_type(self) -> None:
        rsa = self.jwk("RS256", kid="r")
        del rsa["alg"]
        [key] = parse_jwks({"keys": [rsa]}, ("RS256", "PS256", "ES256"), source="test")["r"]
        assert key.algorithms == frozenset({"RS256", "PS256"})

    @pytest.mark.parametrize(
        ("members", "allowed"),
        [
            ({"use": "enc"}, ("RS256",)),
            ({"key_ops": ["encrypt"]}, ("RS256",)),
            ({"key_ops": "verify"}, ("RS256",)),
            ({"alg": "RS512"}, ("RS256",)),  # declared for an algorithm we do not allow
            ({"alg": "ES256"}, ("RS256", "ES256")),  # declared for an algorithm its kty cannot do
            ({"alg": 256}, ("RS256",)),
            ({}, ("ES256",)),  # an RSA key when only ES256 is allowed: its kty cannot serve it
            ({"kty": "oct", "k": "c2VjcmV0"}, ("RS256",)),  # a shared secret in a JWKS
            ({"kty": "EC", "crv": "secp256k1"}, ("ES256",)),
            ({"kid": ""}, ("RS256",)),
            ({"kid": 7}, ("RS256",)),
            ({"n": "AQAB"}, ("RS256",)),  # a 17-bit modulus
            ({"n": "%%%"}, ("RS256",)),  # not base64url
            ({"d": "private"}, ("RS256",)),  # private key material: never used
        ],
    )
    def test_skips_what_cannot_verify_the_allowed_algorithms(
        self, members: dict[str, Any], allowed: tuple[str, ...]
    ) -> None:
        jwk = {**self.jwk("RS256", kid="k"), **members}
        assert parse_jwks({"keys": [jwk, "not an object", None]}, allowed, source="test") == {}

    @pytest.mark.parametrize(
        ("algorithm", "allowed", "serves"),
        [
            ("Ed25519", ("Ed25519",), {"Ed25519"}),
            ("Ed448", ("EdDSA", "Ed448"), {"Ed448"}),
            ("EdDSA", ("EdDSA", "Ed25519"), {"EdDSA"}),
        ],
    )
    def test_rfc_9864_names_keep_a_key_that_publishes_them(
        self, algorithm: str, allowed: tuple[str, ...], serves: set[str]
    ) -> None:
        jwk = self.jwk(algorithm, kid="ed")
        assert jwk["alg"] == algorithm
        [key] = parse_jwks({"keys": [jwk]}, allowed, source="test")["ed"]
        assert (key.kty, key.algorithms) == ("OKP", frozenset(serves))

    @pytest.mark.parametrize(
        ("algorithm", "members", "allowed", "logged"),
        [
            ("Ed25519", {}, ("EdDSA",), "serves ['Ed25519'], none of ALGORITHMS ['EdDSA']; skipped"),
            ("EdDSA", {}, ("Ed25519",), "serves ['EdDSA'], none of ALGORITHMS ['Ed25519']; skipped"),
            ("Ed448", {"alg": "Ed25519"}, ("Ed25519",), "declares alg 'Ed25519', which jwtguard does not accept"),
            ("ES256", {"alg": "ESP256"}, ("ES256",), "declares alg 'ESP256', which jwtguard does not accept"),
            ("RS256", {}, ("ES256",), "serves ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'], none of"),
        ],
    )
    def test_a_key_skipped_for_its_alg_is_logged(
        self,
        caplog: pytest.LogCaptureFixture,
        algorithm: str,
        members: dict[str, Any],
        allowed: tuple[str, ...],
        logged: str,
    ) -> None:
        jwk = {**self.jwk(algorithm, kid="skipped"), **members}
        if algorithm == "RS256":
            del jwk["alg"]
        with caplog.at_level(logging.INFO, logger="jwtguard"):
            assert parse_jwks({"keys": [jwk]}, allowed, source="https://idp/jwks") == {}
        assert logged in caplog.text
        assert "kid 'skipped'" in caplog.text

    def test_private_key_material_is_logged_as_an_error(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.ERROR, logger="jwtguard"):
            parse_jwks({"keys": [self.jwk(kid="leaked", d="x")]}, ("RS256",), source="https://idp/jwks")
        assert "publishes PRIVATE key material" in caplog.text
        assert "leaked" in caplog.text

    def test_keys_sharing_a_kid_are_each_tried_by_algorithm(self) -> None:
        keys = parse_jwks(
            {"keys": [self.jwk("RS256", kid="same"), self.jwk("ES256", kid="same")]}, ("RS256", "ES256"), source="t"
        )
        assert [k.kty for k in keys["same"]] == ["RSA", "EC"]
        keyset = jwks.KeySet(keys=keys, document={}, url="u", fetched_at=0.0, fresh_for=1.0, max_stale=0.0)
        assert keyset.find("same", "ES256") is keys["same"][1]
        assert keyset.find("other", "ES256") is None
        with pytest.raises(AlgorithmNotAllowed):
            keyset.find("same", "PS256")

    def test_at_most_max_keys_are_kept(self) -> None:
        one = self.jwk("ES256")
        many = [{**one, "kid": str(i)} for i in range(jwks.MAX_KEYS + 50)]
        assert len(parse_jwks({"keys": many}, ("ES256",), source="t")) == jwks.MAX_KEYS

    @pytest.mark.parametrize("document", [{}, {"keys": {}}, {"keys": "x"}, {"keys": None}])
    def test_a_document_without_a_keys_list_is_a_fetch_error(self, document: dict[str, Any]) -> None:
        with pytest.raises(FetchError, match="no 'keys' list"):
            parse_jwks(document, ("RS256",), source="t")


def _b64uint(value: int) -> str:
    return jwt.utils.base64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()


class TestKeyCostCaps:
    """RSA keys that would make each verification (a forged token's too) cost many times the usual are skipped,
    with a warning, and the rest of the set is still used. EC and OKP costs are fixed by the algorithm table."""

    def rsa(self, kid: str, *, bits: int | None = None, e: int | None = None) -> dict[str, Any]:
        jwk = generate_key("RS256", kid=kid).public_jwk()
        if bits is not None:
            # Any odd number of that length loads as a modulus: no need to generate a real 9000-bit key.
            filler = int.from_bytes(uuid.uuid4().bytes * (bits // 128 + 1), "big") % (1 << (bits - 1))
            jwk["n"] = _b64uint((1 << (bits - 1)) | filler | 1)
        if e is not None:
            jwk["e"] = _b64uint(e)
        return jwk

    def parse(self, *members: dict[str, Any]) -> dict[str, tuple[jwks.VerificationKey, ...]]:
        return parse_jwks({"keys": list(members)}, ("RS256", "ES256", "EdDSA"), source="https://idp/jwks")

    @pytest.mark.parametrize(
        ("members", "logged"),
        [
            ({"bits": 8200}, "is a 8200-bit RSA key, over 8192; skipped"),
            ({"bits": 16384}, "is a 16384-bit RSA key, over 8192; skipped"),
            ({"e": 2**32 + 1}, "has RSA public exponent 4294967297, not an odd number from 3 to 2**32"),
            ({"e": 2**64 + 1}, "has RSA public exponent of 65 bits, not an odd number from 3 to 2**32"),
            ({"e": 2**1000 + 1}, "has RSA public exponent of 1001 bits, not an odd number"),
        ],
    )
    def test_a_key_over_the_caps_is_skipped_with_a_warning_and_the_rest_is_used(
        self, caplog: pytest.LogCaptureFixture, members: dict[str, int], logged: str
    ) -> None:
        ec = generate_key("ES256", kid="ec").public_jwk()
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            keys = self.parse(self.rsa("costly", **members), self.rsa("good"), ec)
        assert sorted(keys) == ["ec", "good"]
        [record] = [r for r in caplog.records if "costly" in r.getMessage()]
        assert record.levelno == logging.WARNING
        assert logged in record.getMessage()

    @pytest.mark.parametrize("e", [1, 2, 4, 65536])
    def test_an_exponent_that_is_even_or_under_3_is_never_used(self, e: int) -> None:
        assert sorted(self.parse(self.rsa("bad", e=e), self.rsa("good"))) == ["good"]

    @pytest.mark.parametrize(("bits", "e"), [(8192, 65537), (2048, 3), (2048, 2**32 - 1), (4096, 65537)])
    def test_the_largest_and_smallest_allowed_keys_are_kept(self, bits: int, e: int) -> None:
        [key] = self.parse(self.rsa("edge", bits=bits, e=e))["edge"]
        assert (key.key.key_size, key.key.public_numbers().e) == (bits, e)

    def test_a_genuine_token_still_verifies_beside_a_capped_key(self, jwtguard_settings: FakeIssuer) -> None:
        issuer = jwtguard_settings
        issuer.jwks_document = {"keys": [self.rsa("costly", e=2**40 + 1), issuer.signing_key.public_jwk()]}
        assert validate_token(issuer.mint(sub="alice")).subject == "alice"
        with pytest.raises(UnknownKeyId):
            validate_token(issuer.mint(key=generate_key("RS256", kid="costly")))


# -- the ordinary path ------------------------------------------------------------------------------------


class TestSteadyState:
    def test_one_fetch_then_memory(self, make: Make, issuer: FakeIssuer, shared_cache: str) -> None:
        make()
        for _ in range(50):
            validate_token(issuer.mint())
        assert issuer.jwks_requests == 1

    def test_the_steady_state_does_no_cache_io(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make(JWKS_L1_RECHECK=60)
        validate_token(issuer.mint())
        calls: Counter[str] = Counter()
        for name in ("get", "set", "add", "delete"):
            real = getattr(provider.cache, name)
            monkeypatch.setattr(
                provider.cache, name, lambda *a, _real=real, _name=name: calls.update([_name]) or _real(*a)
            )
        for _ in range(100):
            validate_token(issuer.mint())
        assert calls == Counter()
        assert provider.counters().l1_hits >= 100

    def test_other_processes_use_the_shared_entry(self, make: Make, issuer: FakeIssuer, shared_cache: str) -> None:
        provider = make()
        provider.usable_keyset()
        for _ in range(5):
            other = another_process(provider)
            assert other.get_key(issuer.signing_key.kid, "RS256").kid == issuer.signing_key.kid
        assert issuer.jwks_requests == 1

    def test_a_token_with_no_kid_never_triggers_a_fetch(self, make: Make, issuer: FakeIssuer) -> None:
        make()
        claims = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "s", "exp": int(time.time()) + 60}
        without_kid = jwt.encode(claims, issuer.signing_key.private_key, algorithm="RS256")
        null_kid = issuer.mint(headers={"kid": None})
        for raw in (without_kid, null_kid) * 20:
            with pytest.raises(MissingKeyId):
                validate_token(raw)
        assert issuer.jwks_requests == 0  # cold: still no fetch
        validate_token(issuer.mint())
        for raw in (without_kid, null_kid) * 20:
            with pytest.raises(MissingKeyId):
                validate_token(raw)
        assert issuer.jwks_requests == 1

    def test_the_token_alg_must_match_the_key_alg(self, make: Make, issuer: FakeIssuer) -> None:
        make(ALGORITHMS=["RS256", "PS256"])
        key = issuer.signing_key  # published with "alg": "RS256"
        body = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "s", "exp": int(time.time()) + 60}
        as_ps256 = jwt.encode(body, key.private_key, algorithm="PS256", headers={"kid": key.kid})
        with pytest.raises(AlgorithmNotAllowed):
            validate_token(as_ps256)
        validate_token(issuer.mint())
        assert issuer.jwks_requests == 1  # a known kid with the wrong alg is no reason to refetch

    def test_keys_that_cannot_serve_the_allowed_algorithms_are_skipped(self, make: Make, issuer: FakeIssuer) -> None:
        ec = issuer.add_key("ES256")
        enc = issuer.add_key("RS256")
        issuer.jwks_document = {
            "keys": [issuer.keys[0].public_jwk(), ec.public_jwk(), {**enc.public_jwk(), "use": "enc"}]
        }
        provider = make(ALGORITHMS=["RS256"])
        assert sorted(provider.usable_keyset().keys) == [issuer.keys[0].kid]
        with pytest.raises(UnknownKeyId):
            validate_token(issuer.mint(key=enc))

    def test_a_key_set_with_no_usable_key_is_a_failed_fetch(self, make: Make, issuer: FakeIssuer) -> None:
        issuer.jwks_document = {"keys": [{**issuer.signing_key.public_jwk(), "use": "enc"}]}
        provider = make()
        with pytest.raises(KeySetUnavailable):
            provider.usable_keyset()
        assert "no usable key" in (provider.last_error or "")


class TestUnknownKid:
    def test_a_new_key_used_at_once_is_accepted(
        self, make: Make, issuer: FakeIssuer, shared_cache: str, sent: list[Any]
    ) -> None:
        make()
        validate_token(issuer.mint())
        issuer.add_key()
        for _ in range(20):
            validate_token(issuer.mint())
        assert fetches(sent) == ["cold", "unknown_kid"]

    def test_a_flood_of_unknown_kids_costs_one_fetch_per_cooldown(
        self, make: Make, issuer: FakeIssuer, shared_cache: str
    ) -> None:
        provider = make(JWKS_REFRESH_COOLDOWN=30)
        validate_token(issuer.mint())
        for _ in range(500):
            with pytest.raises(UnknownKeyId):
                validate_token(forged(issuer))
        assert issuer.jwks_requests == 2
        assert provider.counters().unknown_kid_refused == 499
        validate_token(issuer.mint())

    def test_the_cooldown_is_cluster_wide(self, make: Make, issuer: FakeIssuer, shared_cache: str) -> None:
        provider = make(JWKS_REFRESH_COOLDOWN=30)
        provider.usable_keyset()
        others = [another_process(provider) for _ in range(4)]
        for other in [provider, *others] * 10:
            with pytest.raises(UnknownKeyId):
                other.get_key(f"forged-{uuid.uuid4().hex}", "RS256")
        assert issuer.jwks_requests == 2

    def test_after_a_long_cooldown_an_unknown_kid_may_refresh_again(self, make: Make, issuer: FakeIssuer) -> None:
        make(JWKS_REFRESH_COOLDOWN=2)
        validate_token(issuer.mint())
        with pytest.raises(UnknownKeyId):
            validate_token(forged(issuer))
        issuer.add_key()
        started = time.monotonic()
        with pytest.raises(UnknownKeyId):
            validate_token(issuer.mint())  # the window reopens later than UNKNOWN_KID_WAIT: refused at once
        assert time.monotonic() - started < 0.2
        assert issuer.jwks_requests == 2
        time.sleep(2.1)
        validate_token(issuer.mint())
        assert issuer.jwks_requests == 3

    def test_a_new_kid_right_after_a_spent_window_is_accepted_once_it_reopens(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        # The defaults: a forged kid spent the window a moment before the issuer published a new key. The new
        # key's token is refused at once (nobody waits for a window that is over), and accepted from the next
        # window on, a cooldown after the forged kid's fetch ended.
        provider = make()
        assert provider.config.jwks_refresh_cooldown == 1
        validate_token(issuer.mint())
        with pytest.raises(UnknownKeyId):
            validate_token(forged(issuer))
        spent = time.monotonic()
        issuer.add_key()
        token = issuer.mint()
        with pytest.raises(UnknownKeyId):
            validate_token(token)
        assert time.monotonic() - spent < 0.2
        while True:
            try:
                validate_token(token)
                break
            except UnknownKeyId:
                assert time.monotonic() - spent < 1.0 + PROCESS_SLACK
                time.sleep(0.02)
        assert time.monotonic() - spent >= 0.9
        assert fetches(sent) == ["cold", "unknown_kid", "unknown_kid"]

    def test_the_next_window_opens_a_full_cooldown_after_a_slow_fetch_ends(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        # A fetch that outlasts the cooldown must not start the next one back to back.
        provider = make(JWKS_REFRESH_COOLDOWN=1, HTTP_TIMEOUT=3)
        provider.usable_keyset()
        issuer.fault = Fault(delay=1.5)
        with pytest.raises(UnknownKeyId):
            provider.get_key("forged-first", "RS256")  # waits UNKNOWN_KID_WAIT, the fetch goes on
        wait_for(lambda: fetches(sent) == ["cold", "unknown_kid"])
        ended = time.monotonic()
        issuer.fault = None
        for n in range(200):
            with pytest.raises(UnknownKeyId):
                provider.get_key(f"forged-{n}", "RS256")
            if issuer.jwks_requests == 3:
                break
            time.sleep(0.02)
        assert issuer.jwks_requests == 3
        assert time.monotonic() - ended >= 0.9

    def test_a_refresh_that_lands_while_we_look_at_the_cooldown_is_used(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # B has looked at the shared entry and found no new kid; before B tries the cooldown, A fetches the
        # new key set for that kid and marks the cooldown done. B must see A's set, not refuse the token.
        a = make(JWKS_L1_RECHECK=60)
        b = another_process(a)
        a.usable_keyset()
        b.usable_keyset()
        new = issuer.add_key()
        real_add = b.cache.add

        def add_after_a_has_fetched(key: str, value: Any, timeout: float) -> bool:
            if key == b.cooldown_key:
                assert a.get_key(new.kid, "RS256").kid == new.kid
            return real_add(key, value, timeout)

        monkeypatch.setattr(b.cache, "add", add_after_a_has_fetched)
        assert b.get_key(new.kid, "RS256").kid == new.kid
        assert issuer.jwks_requests == 2

    def test_a_process_waits_for_another_fetching_for_an_unknown_kid(self, make: Make, issuer: FakeIssuer) -> None:
        a = make(JWKS_L1_RECHECK=60)
        b = another_process(a)
        a.usable_keyset()
        b.usable_keyset()
        new = issuer.add_key()
        issuer.fault = Fault(delay=0.3)  # A's fetch is slow: B arrives while it runs
        found = []
        fetching = threading.Thread(target=lambda: found.append(a.get_key(new.kid, "RS256")))
        fetching.start()
        wait_for(lambda: str(a.cache.get(a.cooldown_key)).startswith("pending"))
        assert b.get_key(new.kid, "RS256").kid == new.kid
        fetching.join(5)
        assert found[0].kid == new.kid
        assert issuer.jwks_requests == 2

    def test_a_pending_cooldown_without_a_lock_yet_is_waited_for(self, make: Make, issuer: FakeIssuer) -> None:
        # A has added the cooldown ("pending") but not yet the lock: B must not take the missing lock for
        # "nobody is fetching" and refuse; it waits for A's fetch.
        a = make(JWKS_L1_RECHECK=60)
        b = another_process(a)
        a.usable_keyset()
        b.usable_keyset()
        new = issuer.add_key()
        assert a.cache.add(a.cooldown_key, f"pending {time.time()!r}", 30)

        def a_goes_on() -> None:
            time.sleep(0.3)
            a._refresh_for_kid(new.kid, a._keyset)
            a.cache.set(a.cooldown_key, "done", 30)

        going_on = threading.Thread(target=a_goes_on)
        going_on.start()
        assert b.get_key(new.kid, "RS256").kid == new.kid
        going_on.join(5)
        assert issuer.jwks_requests == 2

    def test_a_routine_refresh_in_flight_is_no_answer_for_a_kid_it_cannot_know(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        # C's TTL refresh asked the issuer before the new key existed; B, with a token of the new key, waits
        # for C's answer, which cannot have it: B must fetch once more rather than refuse for a whole cooldown.
        b = make(JWKS_L1_RECHECK=60)
        c = another_process(b)
        b.usable_keyset()
        c.usable_keyset()
        issuer.fault = Fault(delay=0.4, body=json.dumps(issuer.jwks()).encode())
        routine = threading.Thread(target=c.refresh)
        routine.start()
        wait_for(lambda: issuer.jwks_requests == 2)  # C's request is at the issuer
        issuer.fault = None
        new = issuer.add_key()
        assert b.get_key(new.kid, "RS256").kid == new.kid
        routine.join(5)
        assert fetches(sent) == ["cold", "manual", "unknown_kid"]

    def test_a_fetch_still_holding_its_lock_is_waited_out_before_fetching_for_the_kid(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        # C has written its answer (without the new key) but not yet released the lock. B, owning the
        # unknown-kid window, must wait for the release and then fetch itself, not wait on its own window.
        b = make(JWKS_L1_RECHECK=60, HTTP_TIMEOUT=2.0)
        c = another_process(b)
        b.usable_keyset()
        written, release = threading.Event(), threading.Event()

        def fetch_and_linger() -> None:
            with c._fetch_lock() as won:
                assert won
                c._fetch_and_store("manual", None)
                written.set()
                release.wait(5)

        routine = threading.Thread(target=fetch_and_linger)
        routine.start()
        assert written.wait(5)
        new = issuer.add_key()
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        assert b.get_key(new.kid, "RS256").kid == new.kid
        assert time.monotonic() - started < 2.0  # well under the lock's expiry (HTTP_TIMEOUT + 1)
        routine.join(5)
        assert fetches(sent) == ["cold", "manual", "unknown_kid"]

    def test_the_routine_ttl_refresh_does_not_arm_the_cooldown(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        provider = make(JWKS_CACHE_TTL=1, JWKS_REFRESH_COOLDOWN=60)
        validate_token(issuer.mint())
        time.sleep(1.1)
        validate_token(issuer.mint())
        assert provider.cache.get(provider.cooldown_key) is None
        issuer.add_key()
        validate_token(issuer.mint())  # published and used at once, right after a routine refresh
        assert fetches(sent) == ["cold", "expired", "unknown_kid"]


class TestForgedKidsDuringASlowFetch:
    """A slow issuer and forged kids: a forged kid waits at most UNKNOWN_KID_WAIT, one request per process (and
    per deployment) waits for another's fetch, and a token whose key is known never waits behind them."""

    def test_only_the_window_owner_and_one_waiter_are_kept(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make(HTTP_TIMEOUT=3)
        provider.usable_keyset()
        issuer.fault = Fault(delay=2.5)
        waited: list[float] = []

        def forged_request(n: int) -> None:
            started = time.monotonic()
            with pytest.raises(UnknownKeyId):
                provider.get_key(f"forged-{n}", "RS256")
            waited.append(time.monotonic() - started)

        threads = [threading.Thread(target=forged_request, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        started = time.monotonic()
        assert provider.get_key(issuer.signing_key.kid, "RS256")  # a known key: answered from memory
        known = time.monotonic() - started
        for thread in threads:
            thread.join(10)
        assert len(waited) == 8
        assert known < 0.05
        assert max(waited) < jwks.UNKNOWN_KID_WAIT + MARGIN
        assert sum(seconds > 0.3 for seconds in waited) <= 2  # the window's owner and the one waiter
        assert issuer.jwks_requests == 2
        settled(provider)

    def test_async_forged_kids_do_not_fill_the_default_executor(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import asyncio

        from jwtguard.edge import avalidate
        from jwtguard.validation import get_validator

        # L1 rechecked on every request: even the genuine token goes to a worker thread, behind the forged ones.
        provider = make(HTTP_TIMEOUT=3, JWKS_L1_RECHECK=0)
        validate_token(issuer.mint())
        issuer.fault = Fault(delay=2.5)
        forgeries = [forged(issuer) for _ in range(40)]
        genuine = issuer.mint()

        async def flood() -> float:
            async def one(raw: str) -> None:
                with pytest.raises(UnknownKeyId):
                    await avalidate(get_validator(), raw)

            tasks = [asyncio.ensure_future(one(raw)) for raw in forgeries]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await avalidate(get_validator(), genuine)
            latency = time.monotonic() - started
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
            return latency

        assert asyncio.run(flood()) < 0.5
        settled(provider)

    def test_a_replayed_forged_kid_waits_no_longer_than_the_bound(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make(HTTP_TIMEOUT=3)
        provider.usable_keyset()
        issuer.fault = Fault(delay=2.5)
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(UnknownKeyId):
                provider.get_key("forged-again", "RS256")
            assert time.monotonic() - started < jwks.UNKNOWN_KID_WAIT + MARGIN
        assert issuer.jwks_requests == 2
        settled(provider)


class TestReplicaReads:
    """Reads that a replica serves late or not at all (django-redis SentinelClient, Django's RedisCache with
    several LOCATIONs): lock, window, backoff and failures are decided by what writes answer on the primary,
    and a stale read costs at most a bounded wait or one more fetch, never a 503 or a refusal that lasts."""

    @pytest.fixture(autouse=True)
    def location(self, settings: Any) -> Iterator[str]:
        location = uuid.uuid4().hex
        settings.CACHES = {"default": {"BACKEND": "tests.support.replica.LaggingReplicaCache", "LOCATION": location}}
        yield location
        replica.empty(location)

    def test_a_cold_start_on_an_empty_replica_answers_every_process(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        issuer.fault = Fault(delay=0.2)
        outcomes: list[Any] = []

        def cold() -> None:
            try:
                outcomes.append(sorted(another_process(provider).usable_keyset().keys))
            except KeySetUnavailable:
                outcomes.append("503")

        threads = [threading.Thread(target=cold) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert outcomes == [[issuer.signing_key.kid]] * 4
        assert issuer.jwks_requests <= 4  # at most one fetch per process that cannot read the entry

    def test_the_lock_is_free_as_soon_as_its_fetch_ends(self, make: Make, issuer: FakeIssuer) -> None:
        a = make()
        b = another_process(a)
        a.refresh()
        started = time.monotonic()
        b.refresh()
        assert time.monotonic() - started < 0.3
        assert issuer.jwks_requests == 2

    def test_a_new_key_is_accepted_by_a_process_that_cannot_read_the_new_entry(
        self, make: Make, issuer: FakeIssuer, location: str, sent: list[Any]
    ) -> None:
        a = make(JWKS_L1_RECHECK=60)
        b = another_process(a)
        a.usable_keyset()
        replica.sync(location)
        b.usable_keyset()
        new = issuer.add_key()
        assert a.get_key(new.kid, "RS256").kid == new.kid
        started = time.monotonic()
        # b cannot read a's entry: refused until the next window, which it opens: the price of the lag.
        while True:
            try:
                assert b.get_key(new.kid, "RS256").kid == new.kid
                break
            except UnknownKeyId:
                assert time.monotonic() - started < 1.0 + PROCESS_SLACK
                time.sleep(0.02)
        assert fetches(sent) == ["cold", "unknown_kid", "unknown_kid"]

    def test_a_backoff_the_replica_never_saw_still_holds(self, make: Make, issuer: FakeIssuer) -> None:
        a = make()
        keyset = a.usable_keyset()
        issuer.fault = Fault(status=500)
        with pytest.raises(KeySetUnavailable):
            a.refresh()
        b = another_process(a)
        for _ in range(5):
            assert b._refresh("expired", keyset) is keyset
        assert issuer.jwks_requests == 2


# -- the issuer fails -------------------------------------------------------------------------------------


class TestIssuerFailures:
    @pytest.mark.parametrize(
        "fault",
        [
            Fault(status=404),
            Fault(status=500),
            Fault(body=b"<html>not json</html>"),
            Fault(body=b" " * (5 * 1024 * 1024)),
            Fault(delay=5),
            Fault(body=b'{"keys": []}', trickle_interval=0.2),
            Fault(body=b'{"keys": []}'),
        ],
        ids=["404", "500", "not-json", "5MiB", "hanging", "slow-loris", "no-usable-key"],
    )
    def test_cold_a_broken_endpoint_is_a_503_within_the_timeout(
        self, make: Make, issuer: FakeIssuer, fault: Fault
    ) -> None:
        provider = make()
        issuer.fault = fault
        started = time.monotonic()
        with pytest.raises(KeySetUnavailable) as caught:
            validate_token(issuer.mint())
        assert time.monotonic() - started < HTTP_TIMEOUT + MARGIN
        assert 1 <= caught.value.retry_after <= 2
        assert provider.last_error

    def test_cold_and_connection_refused(self, make: Make, issuer: FakeIssuer) -> None:
        make()
        token = issuer.mint()
        issuer.stop()
        started = time.monotonic()
        with pytest.raises(KeySetUnavailable):
            validate_token(token)
        assert time.monotonic() - started < HTTP_TIMEOUT + MARGIN

    @pytest.mark.parametrize(
        "fault",
        [
            Fault(status=404),
            Fault(body=b"nope"),
            Fault(body=b" " * (5 * 1024 * 1024)),
            Fault(delay=5),
            Fault(body=b'{"keys": []}', trickle_interval=0.2),
        ],
        ids=["404", "not-json", "5MiB", "hanging", "slow-loris"],
    )
    def test_warm_a_failed_fetch_keeps_the_cached_set(
        self, make: Make, issuer: FakeIssuer, fault: Fault, shared_cache: str
    ) -> None:
        provider = make(JWKS_CACHE_TTL=1)
        validate_token(issuer.mint())
        before = provider.cache.get(provider.entry_key)
        issuer.fault = fault
        time.sleep(1.05)
        started = time.monotonic()
        validate_token(issuer.mint())  # stale, but served
        assert time.monotonic() - started < HTTP_TIMEOUT + MARGIN
        assert provider.cache.get(provider.entry_key) == before
        assert provider.counters().stale_served >= 1

    def test_warm_connection_refused_keeps_the_cached_set(self, make: Make, issuer: FakeIssuer) -> None:
        make(JWKS_CACHE_TTL=1)
        validate_token(issuer.mint())
        tokens = [issuer.mint() for _ in range(20)]
        issuer.stop()
        time.sleep(1.05)
        for token in tokens:
            validate_token(token)

    def test_cold_retries_are_bounded_by_the_backoff(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        issuer.fault = Fault(status=500)
        for _ in range(50):
            with pytest.raises(KeySetUnavailable) as caught:
                provider.usable_keyset()
        assert issuer.jwks_requests == 1
        assert 1 <= caught.value.retry_after <= 2
        time.sleep(caught.value.retry_after)
        issuer.fault = None
        assert provider.usable_keyset().keys  # the issuer is back and the backoff is over: fetched

    def test_a_long_outage_keeps_its_backoff(self, make: Make, issuer: FakeIssuer) -> None:
        # Without keys the backoff is at most the cooldown, so the failure count passes 1024 within hours
        # (minutes with a cooldown of 0); 2 ** 1024 overflowed a float, and no backoff was armed after that.
        provider = make()
        provider.cache.set(provider.failures_key, 5000, 3600)
        issuer.fault = Fault(status=500)
        for _ in range(5):
            with pytest.raises(KeySetUnavailable):
                validate_token(issuer.mint())
        assert issuer.jwks_requests == 1
        assert provider.cache.get(provider.failures_key) == 5001

    def test_the_backoff_grows_with_keys_and_stays_short_without(self, make: Make) -> None:
        provider = make(JWKS_REFRESH_COOLDOWN=10)
        assert [provider._backoff(n, have_keys=True) for n in (1, 2, 3, 10)] == [10, 20, 40, jwks.MAX_BACKOFF]
        assert [provider._backoff(n, have_keys=False) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 8, 10, 10]

    def test_a_key_set_past_its_max_stale_is_no_reason_for_a_long_backoff(self, make: Make, issuer: FakeIssuer) -> None:
        # The old set can no longer verify anything: every second of backoff is now a second of 503s.
        provider = make(JWKS_CACHE_TTL=1, JWKS_MAX_STALE=0, JWKS_REFRESH_COOLDOWN=30)
        provider.usable_keyset()
        issuer.fault = Fault(status=500)
        time.sleep(1.1)
        with pytest.raises(KeySetUnavailable) as caught:
            provider.usable_keyset()
        assert caught.value.retry_after <= 2

    def test_a_dead_key_set_is_not_written_back_to_the_cache(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make(JWKS_CACHE_TTL=1, JWKS_MAX_STALE=0)
        provider.usable_keyset()
        issuer.fault = Fault(status=500)
        time.sleep(1.1)
        # This provider's keys only: clear() would flush the whole Redis database other suites may be using.
        for key in provider.cache_keys:
            provider.cache.delete(key)
        with pytest.raises(KeySetUnavailable):
            provider.usable_keyset()
        assert provider.cache.get(provider.entry_key) is None

    def test_serving_stale_does_no_cache_io_between_rechecks(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make(JWKS_CACHE_TTL=1, JWKS_L1_RECHECK=0.5)
        validate_token(issuer.mint())
        issuer.fault = Fault(status=500)
        time.sleep(1.05)
        validate_token(issuer.mint())  # the failed fetch: stale from now on
        reads = []
        real_get = provider.cache.get
        monkeypatch.setattr(provider.cache, "get", lambda key: reads.append(key) or real_get(key))
        for _ in range(50):
            validate_token(issuer.mint())
        assert reads == []
        # After the recheck interval the shared entry is looked at again: a set fetched by another process
        # (the issuer is back) is picked up from there, with no fetch of our own.
        issuer.fault = None
        other = another_process(provider)
        other.cache.delete(other.backoff_key)
        fresh = other.refresh()
        time.sleep(0.55)
        validate_token(issuer.mint())
        assert provider.usable_keyset().fetched_at == fresh.fetched_at
        assert provider.counters().fetches == 1

    def test_refresh_raises_when_the_fetch_fails_and_the_old_set_stays(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        first = provider.refresh()
        issuer.fault = Fault(status=502)
        with pytest.raises(KeySetUnavailable, match="HTTP 502"):
            provider.refresh()
        assert provider.usable_keyset() is first
        issuer.fault = None
        assert provider.refresh("deploy hook").fetched_at > first.fetched_at

    def test_stale_is_served_only_up_to_max_stale(self, make: Make, issuer: FakeIssuer) -> None:
        make(JWKS_CACHE_TTL=1, JWKS_MAX_STALE=1)
        validate_token(issuer.mint())
        token = issuer.mint()
        issuer.fault = Fault(status=500)
        time.sleep(1.1)
        validate_token(token)  # stale within max_stale
        time.sleep(1.0)
        with pytest.raises(KeySetUnavailable):
            validate_token(token)


class TestSlowIssuer:
    def test_the_fetching_request_waits_at_most_the_timeout_and_the_others_not_at_all(
        self, make: Make, issuer: FakeIssuer
    ) -> None:
        make(JWKS_CACHE_TTL=1)
        validate_token(issuer.mint())
        issuer.fault = Fault(delay=5)
        time.sleep(1.05)
        waited: list[float] = []

        def one_request() -> None:
            started = time.monotonic()
            validate_token(issuer.mint())
            waited.append(time.monotonic() - started)

        threads = [threading.Thread(target=one_request) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(waited) == 8
        assert max(waited) < HTTP_TIMEOUT + MARGIN
        assert sorted(waited)[-2] < 0.2  # only the one fetching waited
        assert issuer.jwks_requests == 2

    def test_cold_waiters_give_up_with_the_fetcher(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        issuer.fault = Fault(delay=5)
        outcomes: list[tuple[str, float]] = []

        def one_request() -> None:
            started = time.monotonic()
            try:
                another_process(provider).usable_keyset()
                outcomes.append(("keys", time.monotonic() - started))
            except KeySetUnavailable:
                outcomes.append(("503", time.monotonic() - started))

        threads = [threading.Thread(target=one_request) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert [o for o, _ in outcomes] == ["503"] * 6
        assert max(s for _, s in outcomes) < HTTP_TIMEOUT + MARGIN
        assert issuer.jwks_requests == 1

    def test_discovery_and_key_set_share_one_timeout(self, configure: Callable[..., None]) -> None:
        keys = FakeIssuer("RS256")
        with ScriptedServer() as server:
            keys._issuer = server.url + "/"
            server.routes.update(
                {
                    "/.well-known/openid-configuration": delayed(
                        0.35, json_answer({"issuer": keys.issuer, "jwks_uri": server.url + "/jwks"})
                    ),
                    "/jwks": delayed(0.35, json_answer(keys.jwks())),
                }
            )
            configure(keys, JWKS_URL=None, HTTP_TIMEOUT=HTTP_TIMEOUT)
            started = time.monotonic()
            with pytest.raises(KeySetUnavailable):
                validate_token(keys.mint())
            assert time.monotonic() - started < HTTP_TIMEOUT + 0.15

    def test_discovery_is_used_and_remembered(self, issuer: FakeIssuer, configure: Callable[..., None]) -> None:
        configure(issuer, JWKS_URL=None)
        validate_token(issuer.mint())
        jwks._forget_providers()
        validate_token(issuer.mint())
        assert issuer.requests["/.well-known/openid-configuration"] == 1
        assert issuer.jwks_requests == 1

    def test_a_lock_left_by_a_crashed_fetcher_blocks_no_longer_than_its_expiry(
        self, make: Make, issuer: FakeIssuer
    ) -> None:
        provider = make()
        provider.cache.add(provider.lock_key, "crashed", provider._lock_timeout())
        started = time.monotonic()
        with pytest.raises(KeySetUnavailable):
            provider.usable_keyset()
        waited = time.monotonic() - started
        assert waited <= provider._lock_timeout() + MARGIN
        assert issuer.jwks_requests == 0
        wait_for(lambda: provider.cache.get(provider.lock_key) is None, seconds=3)
        assert provider.usable_keyset().keys
        assert issuer.jwks_requests == 1

    def test_the_lock_is_released_only_by_its_owner(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make()
        # A fetch that outlives its lock (a process stalled past HTTP_TIMEOUT + 1): by its own clock, the owner
        # knows the lock may be another's by now, and leaves it alone without reading it back.
        monkeypatch.setattr(provider, "_lock_timeout", lambda: 0.6)
        issuer.fault = Fault(delay=0.3)
        fetching = threading.Thread(target=provider.refresh)
        fetching.start()
        wait_for(lambda: issuer.jwks_requests == 1)
        provider.cache.delete(provider.lock_key)
        assert provider.cache.add(provider.lock_key, "someone-else", 30)
        fetching.join(5)
        assert provider.cache.get(provider.lock_key) == "someone-else"

    def test_the_owner_releases_its_lock_without_reading_it(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make()
        read: list[str] = []
        real_get = provider.cache.get
        monkeypatch.setattr(provider.cache, "get", lambda key: read.append(key) or real_get(key))
        provider.refresh()
        assert provider.lock_key not in read
        assert provider.cache.add(provider.lock_key, "next", 1)


# -- conditional GET, Cache-Control, refresh-ahead -----------------------------------------------------------


class TestConditionalGet:
    def test_a_304_renews_the_set_without_parsing_it(
        self, make: Make, issuer: FakeIssuer, sent: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make()
        first = provider.usable_keyset()
        parses: list[str] = []
        real_parse = jwks.parse_jwks
        monkeypatch.setattr(jwks, "parse_jwks", lambda *a, **k: parses.append("parse") or real_parse(*a, **k))
        time.sleep(0.01)
        renewed = provider.refresh()
        assert renewed.fetched_at > first.fetched_at
        assert renewed.keys is first.keys
        assert renewed.etag == first.etag
        assert [kwargs["status"] for name, kwargs in sent if name == "jwks_fetched"] == [200, 304]
        assert parses == []
        # Another process adopts the renewed entry without parsing it either: same document, same keys.
        other = another_process(provider)
        other._keyset = first
        assert other.read_shared_keyset() is not None
        assert other.read_shared_keyset().fetched_at == renewed.fetched_at  # type: ignore[union-attr]
        assert parses == []

    def test_a_changed_set_is_fetched_whole(self, make: Make, issuer: FakeIssuer, sent: list[Any]) -> None:
        provider = make()
        first = provider.usable_keyset()
        issuer.add_key()
        assert provider.refresh().etag != first.etag
        assert [kwargs["status"] for name, kwargs in sent if name == "jwks_fetched"] == [200, 200]

    @pytest.mark.parametrize(
        ("cache_control", "fresh_for"),
        [
            ("max-age=120", 120.0),
            ("public, max-age=100000", 600.0),
            (None, 600.0),
            # Never below 30 s: an issuer's headers cannot make every process fetch every second.
            ("max-age=10", 30.0),
            ("max-age=0", 30.0),
            ("no-cache", 30.0),
        ],
    )
    def test_cache_control_max_age_is_honoured_when_shorter_never_longer(
        self, make: Make, issuer: FakeIssuer, cache_control: str | None, fresh_for: float
    ) -> None:
        issuer.cache_control = cache_control
        provider = make(JWKS_CACHE_TTL=600, JWKS_REFRESH_COOLDOWN=30)
        assert provider.usable_keyset().fresh_for == fresh_for
        assert provider.cache.get(provider.entry_key)["fresh_for"] == fresh_for

    @pytest.mark.parametrize("cooldown", [0, 1])
    def test_no_cache_keeps_a_set_30_seconds_whatever_the_cooldown(
        self, make: Make, issuer: FakeIssuer, cooldown: float
    ) -> None:
        issuer.cache_control = "no-store"
        assert make(JWKS_CACHE_TTL=600, JWKS_REFRESH_COOLDOWN=cooldown).usable_keyset().fresh_for == 30.0

    def test_a_ttl_under_30_seconds_is_kept_whatever_the_issuer_says(self, make: Make, issuer: FakeIssuer) -> None:
        issuer.cache_control = "no-cache"
        assert make(JWKS_CACHE_TTL=10).usable_keyset().fresh_for == 10.0


class TestRefreshAhead:
    def test_a_set_near_expiry_is_refreshed_in_the_background_by_one_process(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        a = make(JWKS_CACHE_TTL=2, JWKS_L1_RECHECK=60)
        b = another_process(a)
        first = a.usable_keyset()
        b.usable_keyset()
        time.sleep(2 * jwks.REFRESH_AHEAD_AT + 0.05)
        issuer.fault = Fault(delay=0.2)  # the background fetch is slow; requests must not notice
        for provider in (a, b):
            started = time.monotonic()
            provider.get_key(issuer.signing_key.kid, "RS256")
            assert time.monotonic() - started < 0.1
        wait_for(lambda: a.cache.get(a.entry_key)["fetched_at"] > first.fetched_at)
        time.sleep(0.1)  # the second process's background attempt, if any
        assert fetches(sent) == ["cold", "refresh_ahead"]
        assert issuer.jwks_requests == 2

    def test_peek_alone_refreshes_ahead_too(self, make: Make, issuer: FakeIssuer, sent: list[Any]) -> None:
        # The async middleware asks peek() first: a process serving only through it must renew its set too.
        provider = make(JWKS_CACHE_TTL=2, JWKS_L1_RECHECK=60)
        first = provider.usable_keyset()
        time.sleep(2 * jwks.REFRESH_AHEAD_AT + 0.05)
        assert provider.get_key_nowait(issuer.signing_key.kid, "RS256") is not None
        wait_for(lambda: provider.cache.get(provider.entry_key)["fetched_at"] > first.fetched_at)
        wait_for(lambda: len(fetches(sent)) == 2)  # the signal follows the shared write
        assert fetches(sent) == ["cold", "refresh_ahead"]

    def test_a_set_read_from_the_shared_entry_near_expiry_is_refreshed_ahead(
        self, make: Make, issuer: FakeIssuer, sent: list[Any]
    ) -> None:
        # With JWKS_L1_RECHECK at 0 every look-up reads L2: the refresh-ahead must start from there too.
        provider = make(JWKS_CACHE_TTL=2, JWKS_L1_RECHECK=0)
        first = provider.usable_keyset()
        time.sleep(2 * jwks.REFRESH_AHEAD_AT + 0.05)
        provider.usable_keyset()
        wait_for(lambda: provider.cache.get(provider.entry_key)["fetched_at"] > first.fetched_at)
        wait_for(lambda: len(fetches(sent)) == 2)  # the signal follows the shared write
        assert fetches(sent) == ["cold", "refresh_ahead"]


# -- the cache fails --------------------------------------------------------------------------------------


class TestCacheOutage:
    @pytest.fixture
    def broken_cache(self, settings: Any) -> None:
        settings.CACHES = {"default": {"BACKEND": "tests.test_cache.BrokenCache"}}

    def test_validation_goes_on_from_memory_and_direct_fetches(
        self, make: Make, issuer: FakeIssuer, broken_cache: None, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            provider = make(JWKS_CACHE_TTL=1, JWKS_L1_RECHECK=0, JWKS_REFRESH_COOLDOWN=30)
            for _ in range(20):
                validate_token(issuer.mint())
            time.sleep(1.05)
            for _ in range(20):
                validate_token(issuer.mint())
            issuer.add_key()
            validate_token(issuer.mint())
            for _ in range(20):
                with pytest.raises(UnknownKeyId):
                    validate_token(forged(issuer))
        assert issuer.jwks_requests == 3  # cold, expired, new kid; the forged kids meet the cooldown, held locally
        assert provider.cache.is_down
        assert sum("failed on" in r.getMessage() for r in caplog.records) == 1

    def test_the_shared_entry_comes_back_after_a_restart_without_a_fetch(
        self, make: Make, issuer: FakeIssuer, shared_cache: str
    ) -> None:
        provider = make(JWKS_L1_RECHECK=0)
        provider.usable_keyset()
        for key in provider.cache_keys:  # what a Redis restart looks like from here (not clear(): other
            provider.cache.delete(key)  # suites may share this Redis database)
        validate_token(issuer.mint())
        other = another_process(provider)
        assert other.usable_keyset().fetched_at == provider.usable_keyset().fetched_at
        assert issuer.jwks_requests == 1

    @pytest.mark.slow
    @pytest.mark.redis
    def test_a_new_process_on_a_silent_django_redis_answers_valid_tokens(
        self, issuer: FakeIssuer, redis_server: RedisServer
    ) -> None:
        """django-redis with IGNORE_EXCEPTIONS answers nothing while Redis is down (no error, no lock ever won):
        a process started then must still fetch for itself and accept valid tokens, not answer 503."""
        cache = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
        redis_server.stop()
        tokens = [issuer.mint(sub=f"user-{i}") for i in range(20)]
        with Cluster(1, cache=cache, jwtguard=issuer.settings(HTTP_TIMEOUT=HTTP_TIMEOUT)) as cluster:
            result = totals(cluster.ask("validate", {"tokens": tokens}))
        assert result == {**result, "valid": 20, "rejected": {}, "unavailable": 0, "errors": []}
        assert issuer.jwks_requests == 1


# -- signals and log lines -----------------------------------------------------------------------------------


class TestObservability:
    def test_jwks_fetched(self, make: Make, issuer: FakeIssuer, sent: list[Any]) -> None:
        make()
        validate_token(issuer.mint())
        [(name, kwargs)] = [s for s in sent if s[0] == "jwks_fetched"]
        assert kwargs.keys() == {"sender", "issuer", "url", "reason", "duration", "status", "kids"}
        assert kwargs["sender"] is KeyProvider
        assert kwargs["issuer"] == issuer.issuer
        assert kwargs["url"] == issuer.jwks_url
        assert kwargs["reason"] == "cold"
        assert 0 <= kwargs["duration"] < HTTP_TIMEOUT
        assert kwargs["status"] == 200
        assert kwargs["kids"] == [issuer.signing_key.kid]

    def test_jwks_fetch_failed(self, make: Make, issuer: FakeIssuer, sent: list[Any]) -> None:
        make()
        issuer.fault = Fault(status=503)
        with pytest.raises(KeySetUnavailable):
            validate_token(issuer.mint())
        [(name, kwargs)] = [s for s in sent if s[0] == "jwks_fetch_failed"]
        assert kwargs.keys() == {"sender", "issuer", "url", "reason", "duration", "error"}
        assert kwargs["issuer"] == issuer.issuer
        assert kwargs["url"] == issuer.jwks_url
        assert kwargs["reason"] == "cold"
        assert "HTTP 503" in kwargs["error"]

    def test_token_rejected(self, make: Make, issuer: FakeIssuer, sent: list[Any]) -> None:
        make()
        with pytest.raises(UnknownKeyId):
            validate_token(forged(issuer))
        rejected = [kwargs for name, kwargs in sent if name == "token_rejected"]
        assert rejected == [{"sender": rejected[0]["sender"], "code": "unknown_kid", "issuer": issuer.issuer}]

    def test_log_lines_name_issuer_reason_duration_and_result(
        self, make: Make, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
    ) -> None:
        make(JWKS_CACHE_TTL=1, JWKS_REFRESH_COOLDOWN=1)
        with caplog.at_level(logging.INFO, logger="jwtguard"):
            validate_token(issuer.mint())
            issuer.fault = Fault(status=500)
            time.sleep(1.05)
            validate_token(issuer.mint())
        fetched, failed = (r.getMessage() for r in caplog.records if "key set of" in r.getMessage())
        assert fetched.startswith(f"jwtguard: fetched key set of {issuer.issuer} from {issuer.jwks_url}")
        assert "(reason: cold)" in fetched
        assert " ms: HTTP 200, kids " in fetched
        assert failed.startswith(f"jwtguard: fetching key set of {issuer.issuer} (reason: expired) failed after ")
        assert "HTTP 500" in failed
        assert "serving the last good key set; next try in 1s" in failed


# -- the public surface, and nobody else reaching past it -------------------------------------------------


class TestPublicSurface:
    def test_status_is_what_this_process_holds_without_any_io(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make()
        keyset = provider.usable_keyset()
        calls: Counter[str] = Counter()
        for name in ("get", "set", "add", "delete"):
            real = getattr(provider.cache, name)
            monkeypatch.setattr(
                provider.cache, name, lambda *a, _real=real, _name=name: calls.update([_name]) or _real(*a)
            )
        status = provider.status()
        assert calls == Counter()
        assert (status.issuer, status.cache_alias, status.cache_key) == (issuer.issuer, "default", provider.entry_key)
        assert (status.jwks_url, status.discovered, status.keyset_url) == (issuer.jwks_url, False, issuer.jwks_url)
        assert (status.fetched_at, status.fresh_until, status.stale_until) == (
            keyset.fetched_at,
            keyset.fresh_until,
            keyset.stale_until,
        )
        assert status.kids == {issuer.signing_key.kid: ("RS256",)}
        assert (status.failures, status.retry_at, status.last_error) == (None, None, None)
        assert status.counters == jwks.KeySetCounters(fetches=1, l2_reads=1)
        assert status.state(keyset.fresh_until - 1) == "fresh"
        assert status.state(keyset.fresh_until) == "stale"
        assert status.state(keyset.stale_until) == "expired"

    def test_read_shared_status_is_what_every_process_sees(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        other = another_process(provider)
        assert other.read_shared_status().state(time.time()) == "none"
        keyset = provider.usable_keyset()
        seen = other.read_shared_status()
        assert (seen.fetched_at, seen.failures, seen.retry_at) == (keyset.fetched_at, 0, None)
        assert other.status().fetched_at == keyset.fetched_at, "the shared entry is now the other's L1 too"
        issuer.fault = Fault(status=503)
        with pytest.raises(KeySetUnavailable):
            provider.refresh()
        failed = other.read_shared_status()
        assert failed.failures == 1
        assert (failed.retry_at or 0) > time.time()
        assert failed.last_error is None, "last_error is this process's own; the failure happened in another"
        assert "503" in (provider.status().last_error or "")
        assert issuer.jwks_requests == 2

    def test_a_discovered_url_is_known_to_the_shared_status(
        self, issuer: FakeIssuer, configure: Callable[..., None]
    ) -> None:
        configure(issuer, JWKS_URL=None)
        provider = get_provider(get_settings().issuers[0])
        before = provider.read_shared_status()
        assert (before.jwks_url, before.discovered) == (None, True)
        assert before.discovery_url == issuer.url + "/.well-known/openid-configuration"
        provider.refresh()
        jwks._forget_providers()
        assert get_provider(get_settings().issuers[0]).read_shared_status().jwks_url == issuer.jwks_url

    def test_describe_is_plain_data(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        keyset = provider.usable_keyset()
        described = provider.status().describe(keyset.fetched_at + 10)
        assert json.loads(json.dumps(described)) == {
            "state": "fresh",
            "jwks_url": issuer.jwks_url,
            "age_seconds": 10.0,
            "fresh_for_seconds": round(keyset.fresh_for - 10, 1),
            "usable_for_seconds": round(keyset.fresh_for + keyset.max_stale - 10, 1),
            "kids": {issuer.signing_key.kid: ["RS256"]},
        }
        assert another_process(provider).status().describe(time.time()) == {"state": "none", "kids": {}}

    def test_cache_keys_are_every_key_the_provider_writes(
        self, make: Make, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = make(JWKS_URL=None, JWKS_REFRESH_COOLDOWN=30)
        written: set[str] = set()
        for name in ("set", "add", "incr"):
            real = getattr(provider.cache, name)
            monkeypatch.setattr(provider.cache, name, lambda key, *a, _real=real: written.add(key) or _real(key, *a))
        provider.usable_keyset()
        issuer.add_key()
        with pytest.raises(UnknownKeyId):
            provider.get_key("nobody-published-this", "RS256")  # the lock and the cooldown
        issuer.fault = Fault(status=500)
        with pytest.raises(KeySetUnavailable):
            provider.refresh()  # the failure count and the backoff
        assert written == set(provider.cache_keys)
        assert provider.cache_keys[0] == provider.status().cache_key
        assert len(provider.cache_keys) == 6

    def test_forget_drops_the_shared_entries_and_the_memory(
        self, make: Make, issuer: FakeIssuer, shared_cache: str
    ) -> None:
        provider = make()
        provider.usable_keyset()
        issuer.fault = Fault(status=500)
        with pytest.raises(KeySetUnavailable):
            provider.refresh()
        assert any(caches["default"].get(key) is not None for key in provider.cache_keys)
        provider.forget()
        assert [caches["default"].get(key) for key in provider.cache_keys] == [None] * len(provider.cache_keys)
        assert provider.status().fetched_at is None
        assert provider.status().last_error is None
        issuer.fault = None
        provider.usable_keyset()
        assert issuer.jwks_requests == 3, "forgotten: the next use fetches, with no backoff in the way"
        assert provider.counters().fetches == 2, "the counters keep counting"

    def test_providers_lists_this_process_providers(self, make: Make, issuer: FakeIssuer) -> None:
        provider = make()
        assert jwks.providers() == [provider]
        jwks._forget_providers()
        assert jwks.providers() == []

    def test_counters_add_up_field_by_field(self) -> None:
        total = jwks.KeySetCounters(fetches=1, l1_hits=2) + jwks.KeySetCounters(fetches=3, unknown_kid_refused=1)
        assert total == jwks.KeySetCounters(fetches=4, l1_hits=2, unknown_kid_refused=1)
        assert list(total.counters()) == list(jwks.KEYSET_COUNTERS)
        assert tuple(f.name for f in dataclasses.fields(jwks.KeySetCounters)) == jwks.KEYSET_COUNTERS


PACKAGE = Path(jwks.__file__).resolve().parent
#: The cache keys the issue names; read from jwks.py too, so a new one is covered without editing this list.
NAMED_CACHE_KEYS = {"entry_key", "lock_key", "cooldown_key", "backoff_key", "failures_key", "discovery_key"}


def _key_provider_class() -> ast.ClassDef:
    tree = ast.parse(Path(jwks.__file__).read_text())
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "KeyProvider"]
    return cls


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def key_provider_private_names() -> frozenset[str]:
    """The underscore names KeyProvider defines: its methods and its ``self._x`` attributes."""
    names = set()
    for node in ast.walk(_key_provider_class()):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and ast.unparse(node.value) == "self" and _is_private(node.attr):
            names.add(node.attr)
    return frozenset(names)


def key_provider_cache_key_names() -> frozenset[str]:
    """The ``self.<name>_key`` attributes KeyProvider sets: the names of its cache keys."""
    return frozenset(
        node.attr
        for node in ast.walk(_key_provider_class())
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and ast.unparse(node.value) == "self"
        and node.attr.endswith("_key")
    )


def _jwks_module_names(tree: ast.AST) -> tuple[set[str], list[str]]:
    """The names bound to the jwks module in ``tree``, and the private names imported from it."""
    names = {"jwtguard.jwks"}
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.asname for alias in node.names if alias.name == "jwtguard.jwks" and alias.asname)
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[-1] == "jwks":
                imported += [f"line {node.lineno}: imports {a.name}" for a in node.names if _is_private(a.name)]
            elif node.module == "jwtguard" or (node.level and node.module is None):
                names.update(alias.asname or alias.name for alias in node.names if alias.name == "jwks")
    return names, imported


def reaches_into_key_provider(source: str, private: frozenset[str], keys: frozenset[str]) -> list[str]:
    """Where ``source`` touches KeyProvider's private state or a cache key by name (empty when it does not)."""
    tree = ast.parse(source)
    module_names, problems = _jwks_module_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner, name = ast.unparse(node.value), node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            owner, name = ast.unparse(node.args[0]), node.args[1].value
        else:
            continue
        # A class's own ``self._x`` is its business; anything else's ``_x`` that KeyProvider defines is not.
        private_of_provider = _is_private(name) and name in private and owner not in ("self", "cls")
        if name in keys or private_of_provider or (_is_private(name) and owner in module_names):
            problems.append(f"line {node.lineno}: {owner}.{name}")
    return problems


class TestNobodyReachesIntoKeyProvider:
    """Issue 12: outside jwks.py, the package uses KeyProvider through its public surface only."""

    private = key_provider_private_names()
    keys = key_provider_cache_key_names()

    def test_the_rule_knows_what_to_look_for(self) -> None:
        assert {"_keyset", "_adopt", "_refresh", "_checked_at"} <= self.private
        assert self.keys >= NAMED_CACHE_KEYS

    @pytest.mark.parametrize(
        "source",
        [
            "from jwtguard import jwks\nproviders = list(jwks._providers.values())",
            "import jwtguard.jwks\nwith jwtguard.jwks._providers_lock:\n    pass",
            "from jwtguard import jwks as j\nj._forget_providers()",
            "from jwtguard.jwks import _providers",
            "from .jwks import _is_entry",
            "def f(provider):\n    return provider._keyset",
            "def f(validator, config):\n    validator.provider(config)._checked_at = 0",
            "def f(provider):\n    return getattr(provider, '_keyset')",
            "def f(provider):\n    return [provider.entry_key, provider.lock_key]",
            "def f(cache, p):\n    cache.delete(p.discovery_key)",
            "def f(p):\n    return getattr(p, 'failures_key')",
        ],
    )
    def test_it_catches_a_module_that_does(self, source: str) -> None:
        assert reaches_into_key_provider(source, self.private, self.keys)

    @pytest.mark.parametrize(
        "source",
        [
            "class Validator:\n    def provider(self):\n        return self._providers",
            "def f(provider):\n    return provider.status().cache_key, provider.cache_keys, provider.forget()",
            "from jwtguard import jwks\nfor provider in jwks.providers():\n    provider.counters().fetches",
            "from jwtguard.jwks import get_provider, KeyProviderStatus",
            "def f(other):\n    return other._private_of_its_own",
        ],
    )
    def test_it_lets_the_public_surface_through(self, source: str) -> None:
        assert reaches_into_key_provider(source, self.private, self.keys) == []

    def test_no_module_of_the_package_but_jwks_does(self) -> None:
        modules = sorted(path for path in PACKAGE.rglob("*.py") if path.name != "jwks.py" or path.parent != PACKAGE)
        assert PACKAGE / "metrics.py" in modules
        found = {
            str(path.relative_to(PACKAGE)): problems
            for path in modules
            if (problems := reaches_into_key_provider(path.read_text(), self.private, self.keys))
        }
        assert found == {}


# -- several OS processes on a real Redis ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.redis
class TestAcrossProcesses:
    """Spawned worker processes (tests/support/workers.py), each with its own Django, sharing one real Redis."""

    @pytest.fixture(autouse=True)
    def _real_redis(self) -> None:
        require_real_redis()

    def cluster(self, size: int, issuer: FakeIssuer, cache: dict[str, Any] | None = None, **jwtguard: Any) -> Cluster:
        return Cluster(size, cache=cache or real_redis_cache(), jwtguard=issuer.settings(**jwtguard))

    def test_eight_processes_validate_200_tokens_each_with_one_fetch(self) -> None:
        with FakeIssuer("ES256") as issuer:  # ES256: 1600 tokens are minted in a fraction of RSA's time
            tokens = [[issuer.mint(sub=f"user-{w}-{i}") for i in range(200)] for w in range(8)]
            with self.cluster(8, issuer) as cluster:
                result = totals(cluster.ask("validate", [{"tokens": t, "together": True} for t in tokens]))
            assert result == {**result, "valid": 1600, "rejected": {}, "unavailable": 0, "errors": []}
            assert issuer.jwks_requests == 1

    def test_cold_stampede_of_sixteen_processes_makes_one_fetch(self, issuer: FakeIssuer) -> None:
        issuer.fault = Fault(delay=1.0)  # a slow fetch: the whole stampede arrives while it runs
        tokens = [issuer.mint(sub=f"user-{i}") for i in range(5)]
        with self.cluster(16, issuer, HTTP_TIMEOUT=3) as cluster:
            answers = cluster.ask("validate", {"tokens": tokens, "together": True})
        result = totals(answers)
        assert result == {**result, "valid": 80, "rejected": {}, "unavailable": 0, "errors": []}
        assert issuer.jwks_requests == 1
        assert max(a["started"] for a in answers) - min(a["started"] for a in answers) < 1.0

    def test_500_unknown_kids_in_one_cooldown_cost_at_most_one_fetch(self, issuer: FakeIssuer) -> None:
        with self.cluster(4, issuer, JWKS_REFRESH_COOLDOWN=30) as cluster:
            cluster.ask("validate", {"tokens": [issuer.mint()]})
            assert issuer.jwks_requests == 1
            floods = [[forged(issuer) for _ in range(125)] for _ in range(4)]
            result = totals(cluster.ask("validate", [{"tokens": f, "together": True} for f in floods]))
            assert result == {**result, "valid": 0, "rejected": {"unknown_kid": 500}, "errors": []}
            assert issuer.jwks_requests <= 2
            assert totals(cluster.ask("validate", {"tokens": [issuer.mint()]}))["valid"] == 4

    def test_a_new_key_used_at_once_is_accepted_by_every_process(self, issuer: FakeIssuer) -> None:
        with self.cluster(4, issuer) as cluster:
            assert totals(cluster.ask("validate", {"tokens": [issuer.mint()]}))["valid"] == 4
            issuer.add_key()
            tokens = [[issuer.mint(sub=f"user-{w}-{i}") for i in range(50)] for w in range(4)]
            answers = cluster.ask("validate", [{"tokens": t, "together": True} for t in tokens])
        for answer in answers:
            assert answer == {**answer, "valid": 50, "rejected": {}, "unavailable": 0, "errors": []}
        assert issuer.jwks_requests == 2

    def test_issuer_down_longer_than_the_ttl_while_warm(self, issuer: FakeIssuer) -> None:
        with self.cluster(
            3, issuer, JWKS_CACHE_TTL=1, JWKS_REFRESH_COOLDOWN=1, JWKS_L1_RECHECK=0.2, HTTP_TIMEOUT=0.5
        ) as cluster:
            tokens = [issuer.mint(sub=f"user-{i}") for i in range(20)]
            cluster.ask("validate", {"tokens": tokens})
            issuer.fault = Fault(status=500)
            outage_started = time.time()
            answers = cluster.ask("loop", {"tokens": tokens, "until": outage_started + 4.5})
        result = totals(answers)
        assert result == {**result, "rejected": {}, "unavailable": 0, "errors": []}
        requests = sum(a["requests"] for a in answers)
        attempts = issuer.jwks_requests - 1
        # Expiry at ~1 s, then backoff 1, 2, 4 s (shared by all processes): at most 3 attempts in 4.5 s.
        assert 1 <= attempts <= 3, attempts
        assert requests > 100 * attempts

    def test_redis_stopped_mid_run_and_restarted(self, issuer: FakeIssuer, redis_server: RedisServer) -> None:
        cache = real_redis_cache(redis_server.url)
        with self.cluster(3, issuer, cache, JWKS_CACHE_TTL=2, JWKS_L1_RECHECK=0.2, JWKS_REFRESH_COOLDOWN=1) as cluster:
            tokens = [issuer.mint(sub=f"user-{i}") for i in range(20)]
            cluster.ask("validate", {"tokens": tokens})
            started = time.time()
            cluster.send("loop", {"tokens": tokens, "until": started + 7.5})
            time.sleep(1.0)
            redis_server.stop()
            time.sleep(2.5)  # longer than the TTL: each process refreshes on its own
            redis_server.start()
            result = totals(cluster.collect())
            assert result == {**result, "rejected": {}, "unavailable": 0, "errors": []}
            assert result["valid"] > 300
            for _ in range(3):  # a refresh may land between two processes' answers: ask again
                states = cluster.ask("state", {"settle": 0.3})
                shared = {s["l2_fetched_at"] for s in states} | {s["l1_fetched_at"] for s in states}
                if len(shared) == 1:
                    break
            assert len(shared) == 1, states
            assert not any(s["cache_down"] for s in states)

    def test_key_rotation(self, issuer: FakeIssuer) -> None:
        ttl, recheck, cooldown = 3.0, 0.5, 2.0
        with self.cluster(
            3, issuer, JWKS_CACHE_TTL=ttl, JWKS_L1_RECHECK=recheck, JWKS_REFRESH_COOLDOWN=cooldown
        ) as cluster:
            old = issuer.mint()
            cluster.ask("validate", {"tokens": [old]})
            # A removed key stops validating within the TTL plus the L1 recheck interval, in every process.
            issuer.rotate()
            removed_at = time.time()
            for answer in cluster.ask("until", {"token": old, "accepted": False, "seconds": ttl + recheck + 3}):
                assert answer["reached_at"] is not None
                assert answer["reached_at"] - removed_at <= ttl + recheck + PROCESS_SLACK
            # A new key is accepted by every process within one cooldown window, even one just armed.
            cluster.ask("validate", {"tokens": [forged(issuer)]})
            issuer.add_key()
            published_at = time.time()
            new = issuer.mint()
            for answer in cluster.ask("until", {"token": new, "accepted": True, "seconds": cooldown + 3}):
                assert answer["reached_at"] is not None
                assert answer["reached_at"] - published_at <= cooldown + PROCESS_SLACK

    def test_a_slow_issuer_never_holds_a_request_past_the_timeout(self, issuer: FakeIssuer) -> None:
        with self.cluster(4, issuer, JWKS_CACHE_TTL=1, JWKS_L1_RECHECK=0.2, HTTP_TIMEOUT=0.5) as cluster:
            issuer.fault = Fault(delay=5)
            token = issuer.mint()
            cold = totals(cluster.ask("validate", {"tokens": [token], "together": True}))
            assert cold["unavailable"] == 4
            assert cold["max_seconds"] < 0.5 + PROCESS_SLACK
            time.sleep(2)  # the backoff of the cold failure
            issuer.fault = None
            assert totals(cluster.ask("validate", {"tokens": [token]}))["valid"] == 4
            issuer.fault = Fault(delay=5)
            warm = totals(cluster.ask("loop", {"tokens": [token], "until": time.time() + 2.5}))
        assert warm == {**warm, "rejected": {}, "unavailable": 0, "errors": []}
        assert warm["max_seconds"] < 0.5 + PROCESS_SLACK

    def test_refresh_ahead_by_one_process(self, issuer: FakeIssuer) -> None:
        ttl = 3.0
        with self.cluster(3, issuer, JWKS_CACHE_TTL=ttl, JWKS_L1_RECHECK=0.3) as cluster:
            token = issuer.mint()
            cluster.ask("validate", {"tokens": [token]})
            [fetched_at] = {s["l2_fetched_at"] for s in cluster.ask("state", {})}
            # Keep validating until just before expiry: one process refreshes ahead, nobody waits.
            answers = cluster.ask("loop", {"tokens": [token], "until": fetched_at + ttl - 0.2, "pause": 0.02})
            result = totals(answers)
            assert result == {**result, "rejected": {}, "unavailable": 0, "errors": []}
            assert result["max_seconds"] < 0.2
            assert issuer.jwks_requests == 2
            states = cluster.ask("state", {"settle": 0.35})
        assert {s["l1_fetched_at"] for s in states} == {states[0]["l2_fetched_at"]}
        assert states[0]["l2_fetched_at"] > fetched_at
        assert sum(s["stats"].get("fetches", 0) for s in states) == 2

    # -- issue 18: forged kids arriving continuously, default settings --

    def test_with_forged_kids_arriving_a_key_published_and_used_at_once_is_accepted_within_2s(
        self, issuer: FakeIssuer
    ) -> None:
        with self.cluster(4, issuer) as cluster:  # default settings: JWKS_REFRESH_COOLDOWN 1 s
            assert totals(cluster.ask("validate", {"tokens": [issuer.mint()]}))["valid"] == 4
            new = generate_key("RS256")
            token = issuer.mint(key=new)
            floods = [[forged(issuer) for _ in range(200)] for _ in range(4)]
            publish_at = time.time() + 2.0  # the flood has spent a window just before, whatever its phase
            cluster.send(
                "mixed", [{"forged": f, "token": token, "use_at": publish_at, "until": publish_at + 4} for f in floods]
            )
            time.sleep(max(0.0, publish_at - time.time()))
            issuer.keys.append(new)
            answers = cluster.collect()
        for answer in answers:
            genuine, flood = answer["genuine"], answer["forged"]
            assert genuine["first_accepted"] is not None
            assert genuine["first_accepted"] - publish_at <= 2.0, genuine
            assert genuine["refused_after"] == 0
            assert genuine == {**genuine, "unavailable": 0, "errors": []}
            assert flood == {**flood, "valid": 0, "unavailable": 0, "errors": []}
            assert flood["max_seconds"] < jwks.UNKNOWN_KID_WAIT + PROCESS_SLACK

    def test_forged_kids_alone_cause_no_more_fetches_than_one_per_cooldown(self, issuer: FakeIssuer) -> None:
        seconds, cooldown = 6.0, 1.0
        with self.cluster(4, issuer) as cluster:
            cluster.ask("validate", {"tokens": [issuer.mint()]})
            before = issuer.jwks_requests
            floods = [[forged(issuer) for _ in range(300)] for _ in range(4)]
            started = time.time()
            answers = cluster.ask(
                "mixed",
                [{"forged": f, "token": "", "use_at": float("inf"), "until": started + seconds} for f in floods],
            )
        flood = totals([a["forged"] for a in answers])
        assert flood == {**flood, "valid": 0, "unavailable": 0, "errors": []}
        assert sum(flood["rejected"].values()) > 400
        # One fetch per window, each window a full cooldown after the previous fetch ended.
        assert issuer.jwks_requests - before <= seconds / cooldown + 1

    def test_a_slow_issuer_and_forged_kids_never_delay_a_known_key(self, issuer: FakeIssuer) -> None:
        with self.cluster(4, issuer) as cluster:
            token = issuer.mint()
            cluster.ask("validate", {"tokens": [token]})
            issuer.fault = Fault(delay=3.0)  # under the default HTTP_TIMEOUT (5 s): each fetch takes 3 s
            floods = [[forged(issuer) for _ in range(200)] for _ in range(4)]
            answers = cluster.ask("mixed", [{"forged": f, "token": token, "until": time.time() + 6} for f in floods])
        genuine = totals([a["genuine"] for a in answers])
        flood = totals([a["forged"] for a in answers])
        assert genuine == {**genuine, "rejected": {}, "unavailable": 0, "errors": []}
        assert genuine["max_seconds"] < 0.5  # the known key never waits behind the forged ones
        assert flood == {**flood, "valid": 0, "unavailable": 0, "errors": []}
        assert flood["max_seconds"] < jwks.UNKNOWN_KID_WAIT + PROCESS_SLACK
        # Each worker waited at most once at a time; over 6 s the four kept on answering.
        assert sum(flood["rejected"].values()) > 200
