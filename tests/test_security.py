"""Hostile tokens: RFC 8725 (JWT BCP) and the known JWT attacks, each refused with its documented answer.

Every case goes through every door (the DRF class, and the middleware sync and async: ``tests/support/doors.py``)
and must get the same 401 with the exact detail and a specific code, never a 500; and the issuer must get
no more JWKS requests than the case needs (0 when the token is refused before its key is looked up).
docs/security.md maps each RFC 8725 item and attack to the tests here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import importlib
import json
import math
import multiprocessing
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from jwtguard import exceptions, validate_token
from jwtguard.conf import IssuerConfig, get_settings, parse_settings
from jwtguard.jwks import KeyProvider, get_provider
from jwtguard.testing import FakeIssuer, SigningKey, generate_key
from jwtguard.testing.issuer import signer
from jwtguard.validation import TokenValidator
from tests.support.doors import ACCEPTED, Outcome, outcomes, users
from tests.support.forgery import run_worker
from tests.support.keypool import KeyPool, reset
from tests.support.loopback import real_redis_cache, require_real_redis
from tests.support.tokens import b64, unb64

Configure = Callable[..., None]

NOT_BEARER = "Authorization header must start with Bearer followed by its token"
NOT_A_JWT = "Bearer does not contain a valid JWT"
NO_VALID_KID = "JWT does not have a valid Key ID"
INVALID = "Bearer token is invalid"

#: JWKS requests a refused token may cost a cold deployment: none when it is refused before its key is
#: looked up; one (the key set) when the key is needed; two for an unknown kid (the key set, then the one
#: refresh the cooldown allows; any further unknown kid in the window costs nothing).
BEFORE_KEY, WITH_KEY, UNKNOWN_KID = 0, 1, 2

OMIT = object()


# -- token making -------------------------------------------------------------------------------------------


def as_json(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


def sign_raw(key: SigningKey, header: Any, payload: Any, *, alg: str | None = None) -> str:
    """A compact JWS of exactly these header and payload bytes (dicts are JSON-encoded), signed by ``key``."""
    signing_input = f"{b64(as_json(header))}.{b64(as_json(payload))}"
    signature = signer(alg or key.algorithm).sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{b64(signature)}"


def sign_hmac(secret: bytes, header: Any, payload: Any, alg: str = "HS256") -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{b64(as_json(header))}.{b64(as_json(payload))}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"


def claims(issuer: FakeIssuer, **changes: Any) -> dict[str, Any]:
    """Valid claims for ``issuer``, with ``changes`` (``OMIT`` removes a claim)."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "user-1", "iat": now}
    body["exp"] = now + 300
    body.update(changes)
    return {name: value for name, value in body.items() if value is not OMIT}


def header(key: SigningKey, **changes: Any) -> dict[str, Any]:
    """A valid header for ``key``, with ``changes`` (``OMIT`` removes a member)."""
    head: dict[str, Any] = {"alg": key.algorithm, "typ": "JWT", "kid": key.kid, **changes}
    return {name: value for name, value in head.items() if value is not OMIT}


def token(issuer: FakeIssuer, *, key: SigningKey | None = None, head: Any = None, body: Any = None) -> str:
    key = key or issuer.signing_key
    return sign_raw(key, header(key) if head is None else head, claims(issuer) if body is None else body)


# -- the assertion every case makes -------------------------------------------------------------------------


def bearer(raw: str) -> str:
    return f"Bearer {raw}"


def assert_refused(
    issuer: FakeIssuer, raw: str, code: str, detail: str, *, fetches: int, whole_header: bool = False
) -> None:
    """Every door answers 401 with ``detail`` and ``code``, and the issuer saw exactly ``fetches`` JWKS requests.

    ``raw`` is the bearer token, or with ``whole_header`` the whole Authorization header.
    """
    seen = outcomes(raw if whole_header else bearer(raw))
    expected = Outcome(401, detail, code)
    assert seen == dict.fromkeys(seen, expected)
    assert issuer.jwks_requests == fetches


def assert_accepted(raw: str) -> None:
    seen = outcomes(bearer(raw))
    assert seen == dict.fromkeys(seen, ACCEPTED)


@pytest.fixture
def key_pool() -> KeyPool:
    """Where this test's issuers take their new keys from (``FakeIssuer(key_factory=...)``)."""
    return KeyPool()


def kept_server(algorithm: str) -> Callable[[], Iterator[tuple[FakeIssuer, list[SigningKey]]]]:
    def serve() -> Iterator[tuple[FakeIssuer, list[SigningKey]]]:
        with FakeIssuer(algorithm) as server:
            yield server, list(server.keys)

    return serve


_rs256_server = pytest.fixture(scope="module")(kept_server("RS256"))
_es256_server = pytest.fixture(scope="module")(kept_server("ES256"))
_attacker_server = pytest.fixture(scope="module")(kept_server("RS256"))


@pytest.fixture
def issuer(_rs256_server: tuple[FakeIssuer, list[SigningKey]], key_pool: KeyPool) -> FakeIssuer:
    """The issuer on 127.0.0.1 (conftest's, kept for the module and reset for each test)."""
    return reset(*_rs256_server, key_pool)


@pytest.fixture
def attacker(_attacker_server: tuple[FakeIssuer, list[SigningKey]], key_pool: KeyPool) -> FakeIssuer:
    """A second issuer on 127.0.0.1: the attacker's own key server, which must never be asked anything."""
    return reset(*_attacker_server, key_pool)


@pytest.fixture
def es256_issuer(
    _es256_server: tuple[FakeIssuer, list[SigningKey]], configure: Configure, key_pool: KeyPool
) -> FakeIssuer:
    server = reset(*_es256_server, key_pool)
    configure(server)
    return server


# -- alg: none ----------------------------------------------------------------------------------------------


NONE_SPELLINGS = ["none", "None", "NONE", "nOnE"]


class TestAlgNone:
    """RFC 8725 2.1, 3.1, 3.2: an unsigned token is never accepted, however ``none`` is spelled."""

    @pytest.mark.parametrize("alg", NONE_SPELLINGS)
    def test_an_unsigned_token_is_not_a_jwt(self, jwtguard_settings: FakeIssuer, alg: str) -> None:
        issuer = jwtguard_settings
        raw = f"{b64(as_json(header(issuer.signing_key, alg=alg)))}.{b64(as_json(claims(issuer)))}."
        assert_refused(issuer, raw, "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("alg", NONE_SPELLINGS)
    def test_alg_none_with_a_signature_is_not_allowed(self, jwtguard_settings: FakeIssuer, alg: str) -> None:
        issuer = jwtguard_settings
        raw = token(issuer, head=header(issuer.signing_key, alg=alg))
        assert_refused(issuer, raw, "algorithm_not_allowed", INVALID, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("alg", NONE_SPELLINGS)
    def test_none_cannot_be_configured(self, alg: str) -> None:
        with pytest.raises(ImproperlyConfigured, match="none"):
            parse_settings({"ISSUER": "https://i.example/", "AUDIENCE": "a", "ALGORITHMS": ["RS256", alg]})


# -- algorithm confusion ------------------------------------------------------------------------------------


def public_secrets(key: SigningKey) -> dict[str, bytes]:
    """The byte strings an attacker may try as the HMAC secret: the public key as PEM, DER and JWK."""
    public = key.private_key.public_key()
    return {
        "pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "pem-pkcs1": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        if isinstance(public, rsa.RSAPublicKey)
        else b"",
        "der": public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk": json.dumps(key.public_jwk()).encode(),
    }


class TestAlgorithmConfusion:
    """RFC 8725 2.1, 3.1: HS256 "signed" with the issuer's public key, which anyone can download."""

    @pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
    @pytest.mark.parametrize("form", ["pem", "pem-pkcs1", "der", "jwk"])
    def test_hmac_with_the_rsa_public_key_is_refused(self, jwtguard_settings: FakeIssuer, alg: str, form: str) -> None:
        issuer = jwtguard_settings
        secret = public_secrets(issuer.signing_key)[form]
        raw = sign_hmac(secret, header(issuer.signing_key, alg=alg), claims(issuer), alg)
        assert_refused(issuer, raw, "algorithm_not_allowed", INVALID, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("form", ["pem", "der", "jwk"])
    def test_hmac_with_the_ec_public_key_is_refused(self, es256_issuer: FakeIssuer, form: str) -> None:
        secret = public_secrets(es256_issuer.signing_key)[form]
        raw = sign_hmac(secret, header(es256_issuer.signing_key, alg="HS256"), claims(es256_issuer))
        assert_refused(es256_issuer, raw, "algorithm_not_allowed", INVALID, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "HS256"], ["RS256", "hs512"], ["Hs384"]])
    def test_hmac_algorithms_cannot_be_configured(self, algorithms: list[str]) -> None:
        with pytest.raises(ImproperlyConfigured, match="HMAC"):
            parse_settings({"ISSUER": "https://i.example/", "AUDIENCE": "a", "ALGORITHMS": algorithms})

    def test_hmac_is_refused_even_if_the_allowlist_were_bypassed(self, jwtguard_settings: FakeIssuer) -> None:
        """Defense in depth: with HS256 forced into the allowlist, no key of a JWKS can verify it."""
        issuer = jwtguard_settings
        configured = get_settings()
        forced = replace(configured.issuers[0], algorithms=("RS256", "HS256"))
        validator = TokenValidator(replace(configured, issuers=(forced,)))
        secret = public_secrets(issuer.signing_key)["pem"]
        raw = sign_hmac(secret, header(issuer.signing_key, alg="HS256"), claims(issuer))
        with pytest.raises(exceptions.AlgorithmNotAllowed):
            validator.validate(raw)
        assert issuer.jwks_requests == WITH_KEY
        validator.validate(issuer.mint())  # the same validator accepts the genuine token


# -- the header's alg against the key ----------------------------------------------------------------------


class TestKeyAndAlgorithmMustAgree:
    """RFC 8725 3.1: the key decides which algorithms may be used with it, not the token."""

    def test_es256_header_on_an_rsa_kid(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, ALGORITHMS=["RS256", "ES256"])
        forger = generate_key("ES256", kid=issuer.signing_key.kid)
        raw = token(issuer, key=forger)
        assert_refused(issuer, raw, "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    def test_rs256_header_on_an_ec_kid(self, configure: Configure, key_pool: KeyPool) -> None:
        with FakeIssuer("ES256", key_factory=key_pool) as issuer:
            configure(issuer, ALGORITHMS=["ES256", "RS256"])
            forger = generate_key("RS256", kid=issuer.signing_key.kid)
            assert_refused(issuer, token(issuer, key=forger), "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    def test_eddsa_header_on_an_rsa_kid(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, ALGORITHMS=["RS256", "EdDSA"])
        forger = generate_key("EdDSA", kid=issuer.signing_key.kid)
        assert_refused(issuer, token(issuer, key=forger), "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
    def test_a_key_verifies_only_its_own_alg(self, issuer: FakeIssuer, configure: Configure, alg: str) -> None:
        """The RS256 key's own private key makes a valid RS384 signature: still refused, the JWK says RS256."""
        configure(issuer, ALGORITHMS=["RS256", "RS384", "RS512", "PS256"])
        key = issuer.signing_key
        raw = sign_raw(key, header(key, alg=alg), claims(issuer), alg=alg)
        assert_refused(issuer, raw, "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    def test_a_key_without_alg_serves_every_allowed_algorithm_of_its_type(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        """The control for the test above: the refusal comes from the key's ``alg``, nothing else."""
        configure(issuer, ALGORITHMS=["RS256", "RS384"])
        issuer.jwks_document = {"keys": [{k: v for k, v in issuer.signing_key.public_jwk().items() if k != "alg"}]}
        key = issuer.signing_key
        assert_accepted(sign_raw(key, header(key, alg="RS384"), claims(issuer), alg="RS384"))


class TestFullySpecifiedAlgorithms:
    """RFC 9864: ``Ed25519`` and ``Ed448`` are allowlist entries of their own, each bound to OKP keys of its one
    curve; the deprecated ``EdDSA`` neither admits them nor is admitted by them."""

    def signed_as(self, issuer: FakeIssuer, alg: str) -> str:
        """A valid token signed by the issuer's own key, with ``alg`` in its header (and signed as that name)."""
        key = issuer.signing_key
        return sign_raw(key, header(key, alg=alg), claims(issuer), alg=alg)

    @pytest.mark.parametrize("alg", ["Ed25519", "Ed448"])
    def test_accepted_when_allowed(self, configure: Configure, key_pool: KeyPool, alg: str) -> None:
        with FakeIssuer(alg, key_factory=key_pool) as issuer:
            assert issuer.jwks()["keys"][0]["alg"] == alg
            configure(issuer, ALGORITHMS=[alg])
            raw = issuer.mint()
            assert_accepted(raw)
            assert validate_token(raw).header["alg"] == alg
            assert issuer.jwks_requests == WITH_KEY

    @pytest.mark.parametrize(
        ("alg", "allowed"),
        [("Ed25519", ["EdDSA"]), ("Ed448", ["EdDSA"]), ("EdDSA", ["Ed25519", "Ed448"]), ("Ed25519", ["Ed448"])],
    )
    def test_one_name_does_not_admit_another(
        self, configure: Configure, key_pool: KeyPool, alg: str, allowed: list[str]
    ) -> None:
        with FakeIssuer(alg, key_factory=key_pool) as issuer:
            configure(issuer, ALGORITHMS=allowed)
            assert_refused(issuer, issuer.mint(), "algorithm_not_allowed", INVALID, fetches=BEFORE_KEY)
            with pytest.raises(exceptions.AlgorithmNotAllowed):
                validate_token(issuer.mint())

    @pytest.mark.parametrize(("published", "header_alg"), [("Ed25519", "EdDSA"), ("EdDSA", "Ed25519")])
    def test_a_key_verifies_only_the_name_it_publishes(
        self, configure: Configure, key_pool: KeyPool, published: str, header_alg: str
    ) -> None:
        """The same Ed25519 private key, a valid signature: still refused, the JWK's ``alg`` says the other name."""
        with FakeIssuer(published, key_factory=key_pool) as issuer:
            configure(issuer, ALGORITHMS=["EdDSA", "Ed25519"])
            raw = self.signed_as(issuer, header_alg)
            assert_refused(issuer, raw, "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    def test_a_key_without_alg_serves_each_allowed_name_of_its_curve(
        self, configure: Configure, key_pool: KeyPool
    ) -> None:
        with FakeIssuer("Ed25519", key_factory=key_pool) as issuer:
            configure(issuer, ALGORITHMS=["EdDSA", "Ed25519", "Ed448"])
            key = issuer.signing_key
            issuer.jwks_document = {"keys": [{k: v for k, v in key.public_jwk().items() if k != "alg"}]}
            for alg in ("EdDSA", "Ed25519"):
                assert_accepted(self.signed_as(issuer, alg))
            assert_refused(issuer, self.signed_as(issuer, "Ed448"), "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize(("alg", "curve"), [("Ed25519", "Ed448"), ("Ed448", "Ed25519")])
    def test_a_name_on_a_key_of_the_other_curve(
        self, configure: Configure, key_pool: KeyPool, alg: str, curve: str
    ) -> None:
        with FakeIssuer(curve, key_factory=key_pool) as issuer:
            configure(issuer, ALGORITHMS=["Ed25519", "Ed448"])
            forger = generate_key(alg, kid=issuer.signing_key.kid)
            assert_refused(issuer, token(issuer, key=forger), "algorithm_not_allowed", INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize(("name", "jose"), [("ESP256", "'ES256'"), ("ESP512", "'ES512'"), ("ESB256", "none")])
    def test_rfc_9864_cose_names_cannot_be_configured(self, name: str, jose: str) -> None:
        with pytest.raises(ImproperlyConfigured, match=f"unsupported '{name}' \\(a COSE name of RFC 9864; .*{jose}"):
            parse_settings({"ISSUER": "https://i.example/", "AUDIENCE": "a", "ALGORITHMS": ["ES256", name]})


# -- kid ----------------------------------------------------------------------------------------------------


UNUSABLE_KIDS: dict[str, Any] = {
    "absent": OMIT,
    "int": 7,
    "zero": 0,
    "float": 1.5,
    "bool": True,
    "null": None,
    "empty-list": [],
    "list": ["kid"],
    "empty-dict": {},
    "dict": {"kid": "x"},
    "empty": "",
    "257-chars": "k" * 257,
    "4000-chars": "k" * 4000,
}
HOSTILE_KIDS: dict[str, str] = {
    "path": "../../etc/passwd",
    "device": "/dev/random",
    "sql": "' OR 1=1 --",
    "sql-drop": '"; DROP TABLE keys; --',
    "format": "%s%s%n",
    "jndi": "${jndi:ldap://127.0.0.1/a}",
    "glob": "*",
    "nul": "\x00",
    "crlf": "kid\r\nX-Injected: 1",
    "cyrillic": "ключ",
    "emoji": "🔑",
    "rtl-override": "\u202egnp.exe",
    "256-chars": "k" * 256,
}


class TestKid:
    """RFC 8725 2.9, 3.10: the kid is attacker input; it is only ever a dictionary key, never a path or query.
    A kid that is no non-empty string of at most 256 characters costs no fetch; any other unknown kid costs at
    most the one refresh the cooldown allows."""

    @pytest.mark.parametrize(
        ("kid", "code", "fetches"),
        [pytest.param(kid, "missing_kid", BEFORE_KEY, id=f"unusable-{name}") for name, kid in UNUSABLE_KIDS.items()]
        + [pytest.param(kid, "unknown_kid", UNKNOWN_KID, id=f"hostile-{name}") for name, kid in HOSTILE_KIDS.items()],
    )
    def test_refused(self, jwtguard_settings: FakeIssuer, kid: Any, code: str, fetches: int) -> None:
        issuer = jwtguard_settings
        raw = token(issuer, head=header(issuer.signing_key, kid=kid))
        assert_refused(issuer, raw, code, NO_VALID_KID, fetches=fetches)

    def test_a_lone_surrogate_kid_is_not_json_text(self, jwtguard_settings: FakeIssuer) -> None:
        # "\ud800" escapes no Unicode character; the parser refuses it before any key is looked up.
        issuer = jwtguard_settings
        raw = token(issuer, head=header(issuer.signing_key, kid="\ud800"))
        assert_refused(issuer, raw, "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    def test_a_near_miss_of_the_real_kid_is_unknown(self, jwtguard_settings: FakeIssuer) -> None:
        issuer = jwtguard_settings
        kid = issuer.signing_key.kid
        for near in (kid.upper(), kid + " ", " " + kid, kid + "\x00", kid[:-1]):
            assert_refused(
                issuer,
                token(issuer, head=header(issuer.signing_key, kid=near)),
                "unknown_kid",
                NO_VALID_KID,
                fetches=UNKNOWN_KID,
            )

    def test_a_flood_of_forged_kids_costs_one_refresh(self, jwtguard_settings: FakeIssuer) -> None:
        issuer = jwtguard_settings
        forger = generate_key("RS256")
        for n in range(50):
            raw = token(issuer, key=forger, head=header(forger, kid=f"forged-{n}"))
            with pytest.raises(exceptions.UnknownKeyId):
                validate_token(raw)
        assert issuer.jwks_requests == UNKNOWN_KID
        validate_token(issuer.mint())


# -- keys supplied by the token -----------------------------------------------------------------------------


def self_signed_certificate(key: SigningKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def key_supplying_headers(attacker: FakeIssuer) -> dict[str, dict[str, Any]]:
    key = attacker.signing_key
    return {
        "jku": {"jku": attacker.jwks_url},
        "x5u": {"x5u": attacker.url + "/cert.pem"},
        "jwk": {"jwk": key.public_jwk()},
        "x5c": {"x5c": [base64.b64encode(self_signed_certificate(key)).decode()]},
        "all": {
            "jku": attacker.jwks_url,
            "x5u": attacker.url + "/cert.pem",
            "jwk": key.public_jwk(),
            "x5c": [base64.b64encode(self_signed_certificate(key)).decode()],
        },
    }


class TestKeysSuppliedByTheToken:
    """RFC 8725 3.10 / RFC 7515 4.1.2-4.1.6: keys come from the configured JWKS only; no URL in a token is
    ever fetched (SSRF), no key in a token is ever trusted. The attacker's server must get no request."""

    @pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c", "all"])
    def test_the_attackers_key_under_the_attackers_kid(
        self, jwtguard_settings: FakeIssuer, attacker: FakeIssuer, name: str
    ) -> None:
        issuer, key = jwtguard_settings, attacker.signing_key
        raw = token(issuer, key=key, head=header(key, **key_supplying_headers(attacker)[name]))
        assert_refused(issuer, raw, "unknown_kid", NO_VALID_KID, fetches=UNKNOWN_KID)
        assert sum(attacker.requests.values()) == 0

    @pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c", "all"])
    def test_the_attackers_key_under_our_kid(
        self, jwtguard_settings: FakeIssuer, attacker: FakeIssuer, name: str
    ) -> None:
        issuer, key = jwtguard_settings, attacker.signing_key
        head = header(key, kid=issuer.signing_key.kid, **key_supplying_headers(attacker)[name])
        raw = token(issuer, key=key, head=head)
        assert_refused(issuer, raw, "invalid_signature", INVALID, fetches=WITH_KEY)
        assert sum(attacker.requests.values()) == 0

    def test_our_own_token_with_those_headers_is_still_ours(
        self, jwtguard_settings: FakeIssuer, attacker: FakeIssuer
    ) -> None:
        """They are ignored, not an error: the control proving the refusals above come from the key."""
        issuer = jwtguard_settings
        assert_accepted(issuer.mint(headers=key_supplying_headers(attacker)["all"]))
        assert sum(attacker.requests.values()) == 0


# -- extensions: crit, b64, JWE -----------------------------------------------------------------------------


class TestCriticalHeaders:
    """RFC 7515 4.1.11: jwtguard understands no extension, so any ``crit`` is refused."""

    @pytest.mark.parametrize(
        "extra",
        [{"crit": ["exp"]}, {"crit": []}, {"crit": "exp"}, {"crit": None}, {"crit": ["b64"], "b64": False}],
        ids=["list", "empty", "string", "null", "b64"],
    )
    def test_crit_is_refused(self, jwtguard_settings: FakeIssuer, extra: dict[str, Any]) -> None:
        issuer = jwtguard_settings
        raw = token(issuer, head=header(issuer.signing_key, **extra))
        assert_refused(issuer, raw, "unsupported_header", INVALID, fetches=BEFORE_KEY)


class TestUnencodedPayload:
    """RFC 7797: ``b64: false`` would change what the signature covers; only the default is accepted."""

    @pytest.mark.parametrize("value", [False, "false", 0, None, "true", 1], ids=repr)
    def test_b64_other_than_true_is_refused(self, jwtguard_settings: FakeIssuer, value: Any) -> None:
        issuer = jwtguard_settings
        raw = token(issuer, head=header(issuer.signing_key, b64=value))
        assert_refused(issuer, raw, "unsupported_header", INVALID, fetches=BEFORE_KEY)

    def test_b64_true_is_the_default_and_accepted(self, jwtguard_settings: FakeIssuer) -> None:
        assert_accepted(jwtguard_settings.mint(headers={"b64": True}))


class TestNestedAndEncrypted:
    """RFC 8725 2.3, 3.3: only a signed JWS is accepted; JWE (5 segments) and nested JWTs are refused."""

    def jwe(self) -> str:
        head = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT", "kid": "enc-1"}
        return ".".join([b64(as_json(head)), b64(b"k" * 256), b64(b"i" * 12), b64(b"c" * 64), b64(b"t" * 16)])

    @pytest.mark.parametrize("shape", ["jwe", "jwe-direct", "four", "two", "six"])
    def test_anything_but_three_segments_is_not_a_jwt(self, jwtguard_settings: FakeIssuer, shape: str) -> None:
        issuer = jwtguard_settings
        segments = self.jwe().split(".")
        good = issuer.mint().split(".")
        raw = {
            "jwe": ".".join(segments),
            "jwe-direct": ".".join([segments[0], "", *segments[2:]]),
            "four": ".".join([*good, good[2]]),
            "two": ".".join(good[:2]),
            "six": ".".join(good * 2),
        }[shape]
        assert_refused(issuer, raw, "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    def test_a_nested_jwt_payload_is_not_a_claims_set(self, jwtguard_settings: FakeIssuer) -> None:
        issuer = jwtguard_settings
        inner = issuer.mint()
        for payload in (inner.encode(), json.dumps(inner).encode()):
            raw = token(issuer, head=header(issuer.signing_key, cty="JWT"), body=payload)
            assert_refused(issuer, raw, "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("extra", [{"enc": "A256GCM"}, {"zip": "DEF"}], ids=["enc", "zip"])
    def test_encryption_headers_on_three_segments_are_refused(
        self, jwtguard_settings: FakeIssuer, extra: dict[str, str]
    ) -> None:
        issuer = jwtguard_settings
        raw = token(issuer, head=header(issuer.signing_key, **extra))
        assert_refused(issuer, raw, "unsupported_header", INVALID, fetches=BEFORE_KEY)


# -- JSON ---------------------------------------------------------------------------------------------------


class TestDuplicateMembers:
    """RFC 8725 2.6 / RFC 7515 5.2: duplicate member names are refused, not resolved last-wins."""

    @pytest.mark.parametrize(
        "template",
        [
            '{"alg":"RS256","alg":"none","kid":"KID"}',
            '{"alg":"RS256","kid":"KID","kid":"other"}',
            '{"alg":"RS256","\\u0061lg":"none","kid":"KID"}',
            '{"alg":"RS256","kid":"KID","typ":"JWT","typ":"at+jwt"}',
        ],
        ids=["alg", "kid", "escaped-alg", "typ"],
    )
    def test_in_the_header(self, jwtguard_settings: FakeIssuer, template: str) -> None:
        issuer = jwtguard_settings
        head = template.replace("KID", issuer.signing_key.kid).encode()
        assert_refused(issuer, token(issuer, head=head), "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("name", ["sub", "aud", "exp", "iss", "nested"])
    def test_in_the_claims(self, jwtguard_settings: FakeIssuer, name: str) -> None:
        issuer = jwtguard_settings
        good = as_json(claims(issuer)).decode()
        extra = {
            "sub": '"sub":"admin"',
            "aud": f'"aud":{json.dumps(issuer.audience)}',
            "exp": '"exp":99999999999',
            "iss": f'"iss":{json.dumps(issuer.issuer)}',
            "nested": '"cnf":{"jkt":"a","jkt":"b"}',
        }[name]
        body = (good[:-1] + "," + extra + "}").encode()
        assert_refused(issuer, token(issuer, body=body), "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)


NON_OBJECTS = [b"[]", b'[{"alg":"RS256"}]', b'"text"', b"1", b"-0.0", b"null", b"true", b" ", b"{} {}"]


class TestNonObjectJson:
    """RFC 7519 7.2: the header and the claims set are JSON objects, nothing else."""

    @pytest.mark.parametrize("value", NON_OBJECTS, ids=repr)
    def test_the_header(self, jwtguard_settings: FakeIssuer, value: bytes) -> None:
        issuer = jwtguard_settings
        raw = f"{b64(value)}.{b64(as_json(claims(issuer)))}.{b64(b'signature')}"
        assert_refused(issuer, raw, "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("value", NON_OBJECTS, ids=repr)
    def test_the_claims(self, jwtguard_settings: FakeIssuer, value: bytes) -> None:
        issuer = jwtguard_settings
        assert_refused(issuer, token(issuer, body=value), "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize(
        "data",
        [b"\xff\xfe{}", b"\xef\xbb\xbf{}", b'{"alg":"\xc0\xaf"}', '{"alg":"RS256"}'.encode("utf-16"), b'{"a":NaN}'],
        ids=["bad-utf8", "bom", "overlong", "utf16", "nan"],
    )
    def test_only_strict_utf8_json_is_read(self, jwtguard_settings: FakeIssuer, data: bytes) -> None:
        """RFC 8725 3.7: UTF-8 only."""
        issuer = jwtguard_settings
        assert_refused(issuer, token(issuer, body=data), "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)


# -- claims -------------------------------------------------------------------------------------------------


class TestTimeClaims:
    """exp, nbf and iat are JSON numbers (RFC 7519 2 NumericDate): never strings, booleans or infinities."""

    @pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
    @pytest.mark.parametrize("value", ["9999999999", "1e10", True, False, None, [1], {"t": 1}], ids=repr)
    def test_not_a_number(self, jwtguard_settings: FakeIssuer, claim: str, value: Any) -> None:
        issuer = jwtguard_settings
        raw = token(issuer, body=claims(issuer, **{claim: value}))
        assert_refused(issuer, raw, "invalid_claim", INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
    def test_a_literal_that_overflows_to_infinity(self, jwtguard_settings: FakeIssuer, claim: str) -> None:
        issuer = jwtguard_settings
        body = as_json(claims(issuer, **{claim: 1})).replace(f'"{claim}":1'.encode(), f'"{claim}":1e400'.encode())
        assert_refused(issuer, token(issuer, body=body), "invalid_claim", INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize(
        ("changes", "code"),
        [
            ({"nbf": 10**400}, "token_not_yet_valid"),
            ({"iat": 10**400}, "token_not_yet_valid"),
            ({"exp": -(10**400)}, "token_expired"),
            ({"nbf": 1e308}, "token_not_yet_valid"),
            ({"exp": -1e308}, "token_expired"),
            ({"exp": -0.0}, "token_expired"),
            ({"exp": 0}, "token_expired"),
            ({"exp": 5e-324}, "token_expired"),
        ],
        ids=[
            "nbf-10e400",
            "iat-10e400",
            "exp-minus-10e400",
            "nbf-1e308",
            "exp-minus-1e308",
            "exp-minus-zero",
            "exp-0",
            "exp-tiny",
        ],
    )
    def test_extreme_numbers_are_compared_exactly(
        self, jwtguard_settings: FakeIssuer, changes: dict[str, Any], code: str
    ) -> None:
        issuer = jwtguard_settings
        assert_refused(issuer, token(issuer, body=claims(issuer, **changes)), code, INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize("exp", [10**400, 1e308], ids=["10e400", "1e308"])
    def test_a_far_future_exp_is_the_issuers_choice(self, jwtguard_settings: FakeIssuer, exp: Any) -> None:
        assert_accepted(token(jwtguard_settings, body=claims(jwtguard_settings, exp=exp)))

    def test_an_integer_longer_than_python_reads_is_malformed(self, jwtguard_settings: FakeIssuer) -> None:
        """Python refuses to read integers of more than 4300 digits (CVE-2020-10735): a clean 401, no 500."""
        issuer = jwtguard_settings
        body = as_json(claims(issuer, exp=1)).replace(b'"exp":1', b'"exp":' + b"9" * 4400)
        assert_refused(issuer, token(issuer, body=body), "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)


class TestAudience:
    """RFC 8725 3.9 / RFC 7519 4.1.3: aud is a string or a non-empty list of strings naming us."""

    @pytest.mark.parametrize(
        "aud",
        [
            7,
            1.5,
            True,
            None,
            {},
            {"aud": "AUD"},
            [7],
            ["AUD", 7],
            ["AUD", None],
            [["AUD"]],
            [],
            "",
            "AUD/",
            "aud-upper",
        ],
        ids=repr,
    )
    def test_wrong_types_and_near_misses(self, jwtguard_settings: FakeIssuer, aud: Any) -> None:
        issuer = jwtguard_settings
        ours = issuer.audience

        def fill(value: Any) -> Any:
            if value == "aud-upper":
                return ours.upper()
            if isinstance(value, str):
                return value.replace("AUD", ours)
            if isinstance(value, list):
                return [fill(v) for v in value]
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return value

        raw = token(issuer, body=claims(issuer, aud=fill(aud)))
        assert_refused(issuer, raw, "invalid_audience", INVALID, fetches=WITH_KEY)


class TestIssuerGames:
    """RFC 8725 3.8: iss is compared exactly: no case folding, no trailing-slash or whitespace tolerance."""

    VARIANTS = ["upper", "no-slash", "two-slashes", "leading-space", "trailing-space", "nul", "https", "lookalike"]

    def variant(self, iss: str, name: str) -> str:
        return {
            "upper": iss.upper(),
            "no-slash": iss.rstrip("/"),
            "two-slashes": iss + "/",
            "leading-space": " " + iss,
            "trailing-space": iss + " ",
            "nul": iss + "\x00",
            "https": iss.replace("http://", "https://"),
            "lookalike": iss.replace("127.0.0.1", "127.0.0.1\u200b"),
        }[name]

    @pytest.mark.parametrize("name", VARIANTS)
    def test_one_issuer(self, jwtguard_settings: FakeIssuer, name: str) -> None:
        """An iss that names no configured issuer is refused before any key lookup, as with several issuers."""
        issuer = jwtguard_settings
        raw = token(issuer, body=claims(issuer, iss=self.variant(issuer.issuer, name)))
        assert_refused(issuer, raw, "invalid_issuer", INVALID, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("iss", ["https://staging.example/", "https://other-tenant.example/"])
    def test_a_foreign_issuer_costs_no_request_at_all_even_with_discovery(
        self, issuer: FakeIssuer, configure: Configure, iss: str
    ) -> None:
        configure(issuer, JWKS_URL=None)
        raw = token(issuer, body=claims(issuer, iss=iss))
        assert_refused(issuer, raw, "invalid_issuer", INVALID, fetches=BEFORE_KEY)
        assert issuer.requests.total() == 0

    def test_a_token_without_iss_keeps_the_articles_order(self, jwtguard_settings: FakeIssuer) -> None:
        """Its key and signature are checked first (one fetch), then the missing iss is named."""
        issuer = jwtguard_settings
        assert_refused(issuer, token(issuer, body=claims(issuer, iss=OMIT)), "missing_claim", INVALID, fetches=WITH_KEY)

    @pytest.mark.parametrize("name", VARIANTS)
    def test_several_issuers_route_nothing(self, issuer: FakeIssuer, settings: Any, name: str) -> None:
        """With several issuers the unverified iss picks one: a near miss picks none, and nothing is fetched."""
        other = {"ISSUER": "https://other.example/", "JWKS_URL": "https://other.example/jwks"}
        first = {k: v for k, v in issuer.settings().items() if k != "AUDIENCE"}
        settings.JWTGUARD = {"AUDIENCE": issuer.audience, "ISSUERS": [first, other]}
        raw = token(issuer, body=claims(issuer, iss=self.variant(issuer.issuer, name)))
        assert_refused(issuer, raw, "invalid_issuer", INVALID, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("shape", ["int", "null", "bool", "list", "dict"])
    def test_not_a_string(self, jwtguard_settings: FakeIssuer, shape: str) -> None:
        """A present iss of any other type names no configured issuer either: refused before any fetch."""
        issuer = jwtguard_settings
        value = {"int": 7, "null": None, "bool": True, "list": [issuer.issuer], "dict": {"iss": issuer.issuer}}[shape]
        raw = token(issuer, body=claims(issuer, iss=value))
        assert_refused(issuer, raw, "invalid_issuer", INVALID, fetches=BEFORE_KEY)


class TestExplicitTyping:
    """RFC 8725 3.11-3.12 / RFC 9068 2.1: with TOKEN_TYPE, an ID token (typ JWT) is not an access token."""

    @pytest.mark.parametrize(
        "typ",
        ["JWT", OMIT, "at+jwt ", "at+JWT+x", "application/jwt", 7],
        ids=["JWT", "none", "space", "suffix", "app-jwt", "int"],
    )
    @pytest.mark.parametrize("setting", ["at+jwt", "application/at+jwt"])
    def test_other_types_are_refused(self, issuer: FakeIssuer, configure: Configure, typ: Any, setting: str) -> None:
        configure(issuer, TOKEN_TYPE=setting)
        raw = token(issuer, head=header(issuer.signing_key, typ=typ))
        assert_refused(issuer, raw, "invalid_token_type", INVALID, fetches=BEFORE_KEY)
        with pytest.raises(exceptions.InvalidTokenType):
            validate_token(raw)

    @pytest.mark.parametrize("setting", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+JWT"])
    @pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "APPLICATION/at+jwt"])
    def test_each_spelling_of_the_setting_accepts_each_spelling_of_typ(
        self, issuer: FakeIssuer, configure: Configure, setting: str, typ: str
    ) -> None:
        """RFC 7515 4.1.9: a typ without '/' means application/ + it; media types compare case-insensitively."""
        configure(issuer, TOKEN_TYPE=setting)
        raw = token(issuer, head=header(issuer.signing_key, typ=typ))
        assert_accepted(raw)
        assert validate_token(raw).header["typ"] == typ

    def test_an_id_token_for_a_client_id_audience(self, issuer: FakeIssuer, configure: Configure) -> None:
        """Issue 13 point 5: an API known by a client id accepts the issuer's ID tokens for that client unless
        TOKEN_TYPE is set (check I001 says so); with it, the same ID token is refused at every door."""
        client_id = "0oa1b2c3d4e5f6g7h8i9"
        id_token = token(issuer, body=claims(issuer, aud=client_id, nonce="n-0S6_WzA2Mj", at_hash="77QmUPtjPfzWtF2A"))
        configure(issuer, AUDIENCE=client_id)
        assert_accepted(id_token)
        configure(issuer, AUDIENCE=client_id, TOKEN_TYPE="application/at+jwt")
        # The one fetch is the accepted token's: the refusal comes before any key lookup.
        assert_refused(issuer, id_token, "invalid_token_type", INVALID, fetches=WITH_KEY)
        with pytest.raises(exceptions.InvalidTokenType):
            validate_token(id_token)
        typed = token(issuer, head=header(issuer.signing_key, typ="at+jwt"), body=claims(issuer, aud=client_id))
        assert_accepted(typed)

    @pytest.mark.parametrize("typ", ["x/at+jwt", "application/at+jwt/x", "at+jwt/"])
    def test_another_type_with_a_slash_is_not_normalised(
        self, issuer: FakeIssuer, configure: Configure, typ: str
    ) -> None:
        configure(issuer, TOKEN_TYPE="at+jwt")
        raw = token(issuer, head=header(issuer.signing_key, typ=typ))
        assert_refused(issuer, raw, "invalid_token_type", INVALID, fetches=BEFORE_KEY)


class TestUserIdNamespaces:
    """Two issuers, one ``sub``: with ``USER_ID_NAMESPACE`` they are two users at every door and in
    ``validate_token``; without it they are one (what check W007 warns of)."""

    def configure_both(self, settings: Any, issuer: FakeIssuer, other: FakeIssuer, **top: Any) -> None:
        entries = [{k: v for k, v in server.settings().items() if k != "AUDIENCE"} for server in (issuer, other)]
        settings.JWTGUARD = {"AUDIENCE": issuer.audience, **top, "ISSUERS": entries}

    def test_off_the_same_sub_is_the_same_user(self, issuer: FakeIssuer, attacker: FakeIssuer, settings: Any) -> None:
        self.configure_both(settings, issuer, attacker)
        ours, theirs = users(bearer(issuer.mint(sub="alice"))), users(bearer(attacker.mint(sub="alice")))
        assert set(ours.values()) == set(theirs.values()) == {"alice"}

    def test_true_qualifies_ids_with_each_issuer(self, issuer: FakeIssuer, attacker: FakeIssuer, settings: Any) -> None:
        self.configure_both(settings, issuer, attacker, USER_ID_NAMESPACE=True)
        for server in (issuer, attacker):
            seen = users(bearer(server.mint(sub="alice")))
            assert seen == dict.fromkeys(seen, f"{server.issuer}#alice")

    def test_a_shared_label_is_one_namespace_on_purpose(
        self, issuer: FakeIssuer, attacker: FakeIssuer, settings: Any
    ) -> None:
        self.configure_both(settings, issuer, attacker, USER_ID_NAMESPACE="corp")
        for server in (issuer, attacker):
            seen = users(bearer(server.mint(sub="alice")))
            assert seen == dict.fromkeys(seen, "corp#alice")

    def test_machine_tokens_are_qualified_too(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, USER_ID_NAMESPACE="idp")
        seen = users(bearer(issuer.mint(sub=None, client_id="svc-a")))
        assert seen == dict.fromkeys(seen, "idp#svc-a")


# -- encoding -----------------------------------------------------------------------------------------------


class TestSizeCap:
    """A token over MAX_TOKEN_BYTES is refused before anything of it is decoded."""

    @pytest.mark.parametrize("size", [8193, 64 * 1024, 1024 * 1024])
    def test_over_the_cap(self, jwtguard_settings: FakeIssuer, size: int) -> None:
        issuer = jwtguard_settings
        good = issuer.mint()
        raw = good + "A" * (size - len(good))
        assert_refused(issuer, raw, "token_too_large", NOT_A_JWT, fetches=BEFORE_KEY)

    def test_exactly_at_the_cap_is_read_and_one_more_is_not(self, issuer: FakeIssuer, configure: Configure) -> None:
        raw = issuer.mint(pad="x" * 1500)
        configure(issuer, MAX_TOKEN_BYTES=len(raw))
        assert_accepted(raw)
        configure(issuer, MAX_TOKEN_BYTES=len(raw) - 1)
        assert_refused(issuer, raw, "token_too_large", NOT_A_JWT, fetches=WITH_KEY)


def mangle(raw: str, how: str) -> str:
    head, body, signature = raw.split(".")
    return {
        "pad-header": f"{head}=.{body}.{signature}",
        "pad-signature": f"{head}.{body}.{signature}==",
        "pad-all": f"{head}==.{body}==.{signature}==",
        "plus": f"{head}.{body}.+{signature[1:]}",
        "slash": f"{head}.{body[:-1]}/.{signature}",
        "standard-alphabet": f"{head}.{body}.+/{signature[2:]}".replace("-", "+").replace("_", "/"),
        "newline": f"{head}.{body}\n.{signature}",
        "trailing-newline": raw + "\n",
        "carriage-return": f"{head}.{body}.{signature}\r",
        "vertical-tab": f"{head}\x0b.{body}.{signature}",
        "form-feed": f"{head}.{body}.\x0c{signature}",
        "nbsp": f"{head}.{body}\xa0.{signature}",
        "zero-width": f"{head}.\u200b{body}.{signature}",
        "e-acute": f"{head}é.{body}.{signature}",
        "fullwidth": f"{head}.{body}.ＡＢ{signature}",
        "arabic-digit": f"{head}.{body}٣.{signature}",
        "percent": f"{head}.{body}.{signature}%3D",
        "nul": f"{head}.{body}.{signature}\x00",
        "comma": f"{head}.{body}.{signature},{signature}",
        "length-mod-4-is-1": f"{head}.{body}.{signature}{'A' * ((1 - len(signature)) % 4)}",
    }[how]


class TestBase64url:
    """RFC 7515 2: unpadded base64url only; anything else is refused before it is decoded."""

    @pytest.mark.parametrize(
        "how",
        [
            "pad-header",
            "pad-signature",
            "pad-all",
            "plus",
            "slash",
            "standard-alphabet",
            "newline",
            "trailing-newline",
            "carriage-return",
            "vertical-tab",
            "form-feed",
            "nbsp",
            "zero-width",
            "e-acute",
            "fullwidth",
            "arabic-digit",
            "percent",
            "nul",
            "comma",
            "length-mod-4-is-1",
        ],
    )
    def test_not_base64url(self, jwtguard_settings: FakeIssuer, how: str) -> None:
        issuer = jwtguard_settings
        assert_refused(issuer, mangle(issuer.mint(), how), "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("blank", [" ", "\t"], ids=["space", "tab"])
    def test_blanks_split_the_header_value(self, jwtguard_settings: FakeIssuer, blank: str) -> None:
        issuer = jwtguard_settings
        head, body, signature = issuer.mint().split(".")
        raw = f"Bearer {head}.{body}{blank}.{signature}"
        assert_refused(issuer, raw, "authorization_header_invalid", NOT_BEARER, fetches=BEFORE_KEY, whole_header=True)


class TestSignatureStripping:
    """RFC 8725 3.3: a token is accepted only if its signature verifies; an empty one is not a JWS."""

    @pytest.mark.parametrize("shape", ["empty", "no-dot", "two-dots", "empty-header", "empty-payload"])
    def test_no_signature(self, jwtguard_settings: FakeIssuer, shape: str) -> None:
        issuer = jwtguard_settings
        head, body, signature = issuer.mint().split(".")
        raw = {
            "empty": f"{head}.{body}.",
            "no-dot": f"{head}.{body}",
            "two-dots": f"{head}.{body}..",
            "empty-header": f".{body}.{signature}",
            "empty-payload": f"{head}..{signature}",
        }[shape]
        assert_refused(issuer, raw, "malformed_token", NOT_A_JWT, fetches=BEFORE_KEY)

    @pytest.mark.parametrize("shape", ["one-byte", "zeros", "truncated", "doubled", "other-token", "other-key"])
    def test_a_wrong_signature(self, jwtguard_settings: FakeIssuer, shape: str) -> None:
        issuer = jwtguard_settings
        head, body, signature = issuer.mint(sub="admin").split(".")
        real = unb64(signature)
        wrong = {
            "one-byte": b"\x00",
            "zeros": b"\x00" * len(real),
            "truncated": real[:-1],
            "doubled": real + real,
            "other-token": unb64(issuer.mint(sub="user").split(".")[2]),
            "other-key": unb64(token(issuer, key=generate_key("RS256", kid=issuer.signing_key.kid)).split(".")[2]),
        }[shape]
        assert_refused(issuer, f"{head}.{body}.{b64(wrong)}", "invalid_signature", INVALID, fetches=WITH_KEY)


class TestEcdsaSignatures:
    """RFC 7518 3.4: an ES256 signature is exactly r || s of 32 bytes each; DER and other lengths are refused,
    and so are the "psychic signatures" (r = s = 0, CVE-2022-21449) and out-of-range values."""

    def parts(self, issuer: FakeIssuer) -> tuple[str, str, bytes]:
        head, body, signature = issuer.mint().split(".")
        return head, body, unb64(signature)

    @pytest.mark.parametrize("shape", ["der", "63", "65", "32", "96", "128", "zeros", "order", "r-zero"])
    def test_refused(self, es256_issuer: FakeIssuer, shape: str) -> None:
        head, body, real = self.parts(es256_issuer)
        r, s = int.from_bytes(real[:32], "big"), int.from_bytes(real[32:], "big")
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        wrong = {
            "der": encode_dss_signature(r, s),
            "63": real[:63],
            "65": real + b"\x00",
            "32": real[:32],
            "96": real + real[:32],
            "128": b"\x00" * 32 + real[:32] + b"\x00" * 32 + real[32:],
            "zeros": b"\x00" * 64,
            "order": order.to_bytes(32, "big") * 2,
            "r-zero": b"\x00" * 32 + real[32:],
        }[shape]
        assert_refused(es256_issuer, f"{head}.{body}.{b64(wrong)}", "invalid_signature", INVALID, fetches=WITH_KEY)

    def test_the_der_signature_refused_above_is_genuine(self, es256_issuer: FakeIssuer) -> None:
        """The control: the DER form verifies with the key itself, so its refusal is for its format."""
        head, body, real = self.parts(es256_issuer)
        der = encode_dss_signature(int.from_bytes(real[:32], "big"), int.from_bytes(real[32:], "big"))
        public_key = es256_issuer.signing_key.private_key.public_key()
        public_key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        assert_accepted(f"{head}.{body}.{b64(real)}")


class TestWeakRsaKeys:
    """RFC 7518 3.3: RSA keys under 2048 bits are skipped, with a log line saying so."""

    def weak_key(self, bits: int, kid: str) -> SigningKey:
        return SigningKey(kid=kid, algorithm="RS256", private_key=rsa.generate_private_key(65537, bits))

    @pytest.mark.parametrize("bits", [1024, 2047])
    def test_a_weak_key_beside_a_good_one_is_skipped(
        self, jwtguard_settings: FakeIssuer, caplog: pytest.LogCaptureFixture, bits: int
    ) -> None:
        issuer = jwtguard_settings
        weak = self.weak_key(bits, "weak")
        issuer.jwks_document = {"keys": [issuer.signing_key.public_jwk(), weak.public_jwk()]}
        assert_refused(issuer, token(issuer, key=weak), "unknown_kid", NO_VALID_KID, fetches=UNKNOWN_KID)
        assert f"is a {bits}-bit RSA key, under 2048; skipped" in caplog.text
        assert_accepted(issuer.mint())

    def test_a_key_set_of_weak_keys_only_is_no_key_set(
        self, jwtguard_settings: FakeIssuer, caplog: pytest.LogCaptureFixture
    ) -> None:
        issuer = jwtguard_settings
        weak = self.weak_key(1024, "weak")
        issuer.jwks_document = {"keys": [weak.public_jwk()]}
        seen = outcomes(bearer(token(issuer, key=weak)))
        unavailable = Outcome(503, "signing keys unavailable — the token is not at fault", "jwks_unavailable")
        assert seen == dict.fromkeys(seen, unavailable)
        assert "has no usable key" in caplog.text
        # The failure arms a backoff (1 s without any key set): the other doors do not ask again within it.
        assert 1 <= issuer.jwks_requests <= 2

    def test_2048_bits_is_enough(self, jwtguard_settings: FakeIssuer) -> None:
        assert_accepted(jwtguard_settings.mint())


# -- forgery-driven traffic, many processes ------------------------------------------------------------------


FORGERY_PROCESSES = 4
FORGERY_TOKENS_PER_PROCESS = 150


@pytest.mark.redis
@pytest.mark.slow
def test_forged_tokens_from_many_processes_cost_one_fetch_per_cooldown_window(
    issuer: FakeIssuer, attacker: FakeIssuer
) -> None:
    """RFC 8725 2.9 (indirect attacks): however many processes see however many forgeries, the issuer gets at
    most one JWKS request per JWKS_REFRESH_COOLDOWN for the whole deployment (here: one window, 60 s)."""
    require_real_redis()
    config = {
        "jwtguard": issuer.settings(JWKS_REFRESH_COOLDOWN=60, JWKS_CACHE_TTL=600),
        "caches": {"default": real_redis_cache()},
        "jku": attacker.jwks_url,
        "kid": issuer.signing_key.kid,
    }
    with override_settings(JWTGUARD=config["jwtguard"], CACHES=config["caches"]):
        try:
            validate_token(issuer.mint())  # the deployment is up and has its key set
            assert issuer.jwks_requests == 1
            context = multiprocessing.get_context("spawn")
            with context.Pool(FORGERY_PROCESSES) as pool:
                jobs = [
                    pool.apply_async(run_worker, (config, worker, FORGERY_TOKENS_PER_PROCESS))
                    for worker in range(FORGERY_PROCESSES)
                ]
                results = [job.get(timeout=60) for job in jobs]
            validate_token(issuer.mint())  # and still serves genuine tokens
        finally:
            provider = get_provider(get_settings().issuers[0])
            caches["default"].delete_many(
                [
                    provider.entry_key,
                    provider.lock_key,
                    provider.cooldown_key,
                    provider.backoff_key,
                    provider.failures_key,
                ]
            )
    total: Counter[str] = Counter()
    for counts in results:
        total.update(counts)
    per_kind = FORGERY_PROCESSES * FORGERY_TOKENS_PER_PROCESS // 6
    assert total == {
        "401:unknown_kid": 2 * per_kind,
        "401:invalid_signature": per_kind,
        "401:malformed_token": 2 * per_kind,
        "401:missing_kid": per_kind,
    }
    assert issuer.jwks_requests == 2, "one fetch to start, then at most one refresh in the cooldown window"
    assert sum(attacker.requests.values()) == 0


# -- a forged-kid flood on every cache back end -------------------------------------------------------------

FLOOD_TOKENS = 40
FLOOD_COOLDOWN = 60


def max_fetches_for_flood(config: IssuerConfig, duration: float) -> int:
    """The most key set fetches forged kids may cause in ``duration`` seconds, per sharing domain (the whole
    deployment on a shared cache, the process on a per-process one): docs/security.md's rule, one per
    ``JWKS_REFRESH_COOLDOWN`` window begun. The one place to change if the refresh policy changes."""
    return math.floor(duration / config.jwks_refresh_cooldown) + 1


#: Per back end: its CACHES entry (``{tmp}`` is a directory of the test's own) and whether every process
#: shares it (docs/caches.md): on the others, each process has its own lock and cooldown.
FLOOD_BACKENDS: dict[str, tuple[dict[str, Any], bool]] = {
    "locmem": ({"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "flood"}, False),
    "dummy": ({"BACKEND": "django.core.cache.backends.dummy.DummyCache"}, False),
    "database": ({"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "jwtguard_flood"}, True),
    "filebased": ({"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": "{tmp}"}, True),
    "fakeredis": (django_settings.CACHES["default"], True),
    "redis": ({}, True),  # the real redis-server, filled in by the test
}


@pytest.mark.parametrize(
    "backend", [pytest.param(name, marks=[pytest.mark.redis] if name == "redis" else []) for name in FLOOD_BACKENDS]
)
def test_a_forged_kid_flood_costs_one_fetch_per_cooldown_on_every_cache_backend(
    backend: str, issuer: FakeIssuer, settings: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """docs/security.md: no input causes more than one key set fetch per JWKS_REFRESH_COOLDOWN, on any cache.
    A DummyCache keeps nothing (every ``add`` wins): without the per-process fallback, each forged token here
    was a fetch. Two providers stand for two processes; a per-process cache gives each its own window."""
    entry, shared = FLOOD_BACKENDS[backend]
    if backend == "redis":
        require_real_redis()
        entry = real_redis_cache()
    settings.CACHES = {"default": {**entry, "LOCATION": entry.get("LOCATION", "").replace("{tmp}", str(tmp_path))}}
    if backend == "database":
        request.getfixturevalue("db")
        call_command("createcachetable", verbosity=0)
    settings.JWTGUARD = issuer.settings(JWKS_REFRESH_COOLDOWN=FLOOD_COOLDOWN, JWKS_CACHE_TTL=600)
    config = get_settings().issuers[0]
    first, second = get_provider(config), KeyProvider(config)
    started = time.monotonic()
    try:
        validate_token(issuer.mint())  # the process is up and has its key set
        for index in range(FLOOD_TOKENS):
            forged_kid = f"forged-{index}-{backend}"
            with pytest.raises(exceptions.UnknownKeyId):
                validate_token(issuer.mint(headers={"kid": forged_kid}))
            with pytest.raises(exceptions.UnknownKeyId):
                second.get_key(forged_kid, "RS256")
        validate_token(issuer.mint())  # and still serves genuine tokens
    finally:
        for key in first.cache_keys:
            caches["default"].delete(key)
    domains = 1 if shared else 2
    allowed = domains * (1 + max_fetches_for_flood(config, time.monotonic() - started))  # a cold fetch each, then
    assert 2 <= issuer.jwks_requests <= allowed, f"{issuer.jwks_requests} fetches on {backend}"
    assert first.cache.per_process == (backend == "dummy")


# -- docs/security.md -----------------------------------------------------------------------------------------

SECURITY_DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"


def documented_tests() -> set[tuple[str, ...]]:
    """The test references in docs/security.md: ``file.py::Class::test``. Within a cell, ``::Name`` reuses
    the previous reference's file, and ``::test_name`` after a ``Class::test`` names a sibling method."""
    found: set[tuple[str, ...]] = set()
    for line in SECURITY_DOC.read_text().splitlines():
        for cell in line.split(" | "):
            previous: tuple[str, ...] = ()
            for reference in re.findall(r"`((?:test_\w+\.py)?::[\w:]+)`", cell):
                path, _, rest = reference.partition("::")
                names = tuple(rest.split("::"))
                if path:
                    current = (path, *names)
                else:
                    assert previous, f"{reference} names no file in: {cell}"
                    sibling = len(previous) > 2 and names[0].startswith("test_")
                    current = (*previous[:2], *names) if sibling else (previous[0], *names)
                found.add(current)
                previous = current
    return found


def test_the_security_page_names_real_tests_and_every_security_test() -> None:
    documented = documented_tests()
    for module_name, *names in documented:
        target: Any = importlib.import_module(f"tests.{module_name.removesuffix('.py')}")
        for name in names:
            target = getattr(target, name)  # AttributeError: the page names a test that does not exist
    for module_name in ("test_security.py", "test_security_keysets.py"):
        module = importlib.import_module(f"tests.{module_name.removesuffix('.py')}")
        tests = {name for name in vars(module) if name.startswith(("Test", "test_"))} - {
            "test_the_security_page_names_real_tests_and_every_security_test"
        }
        named = {names[0] for module_, *names in documented if module_ == module_name}
        assert tests <= named, f"not on docs/security.md: {sorted(tests - named)}"
