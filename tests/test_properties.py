"""Property-based tests (hypothesis): whatever arrives in the Authorization header, every door answers with
one of None, a valid result, 401 or 503, the same answer at each door, never another exception; and the
tokens accepted are exactly the genuine, well-formed, current ones.

The key set is fetched once per module (long TTL, no L1 recheck), so examples do no I/O: at most one
refresh per test, for the first unknown kid, and the cooldown holds for the rest.
"""

from __future__ import annotations

import binascii
import importlib.util
import json
import math
import os
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from jwtguard import validate_token
from jwtguard.testing import FakeIssuer, SigningKey, generate_key
from tests.support.doors import ACCEPTED, HAS_MIDDLEWARE, PASSED_ON, Outcome, drf, middleware, middleware_async
from tests.support.tokens import b64, unb64

#: 2,000 in the whole-suite runs; the fast runs of the other supported pairs ask for fewer (scripts/matrix.sh).
EXAMPLES = int(os.environ.get("JWTGUARD_PROPERTY_EXAMPLES", "2000"))
LEEWAY = 60
MAX_TOKEN_BYTES = 8192

NOT_PRESENT = "Authorization header is not present"
NOT_BEARER = "Authorization header must start with Bearer followed by its token"
NOT_A_JWT = "Bearer does not contain a valid JWT"
NO_VALID_KID = "JWT does not have a valid Key ID"
INVALID = "Bearer token is invalid"
UNAVAILABLE = "signing keys unavailable — the token is not at fault"
#: Every code a refusal may carry, with its detail. ``invalid_token`` (the catch-all for a bug of ours
#: turned into a 401) is deliberately absent: it would mean an exception escaped the validator.
DETAILS = {
    "authorization_header_missing": NOT_PRESENT,
    "authorization_header_invalid": NOT_BEARER,
    "malformed_token": NOT_A_JWT,
    "token_too_large": NOT_A_JWT,
    "missing_kid": NO_VALID_KID,
    "unknown_kid": NO_VALID_KID,
    "algorithm_not_allowed": INVALID,
    "unsupported_header": INVALID,
    "invalid_token_type": INVALID,
    "invalid_signature": INVALID,
    "token_expired": INVALID,
    "token_not_yet_valid": INVALID,
    "invalid_issuer": INVALID,
    "invalid_audience": INVALID,
    "missing_claim": INVALID,
    "invalid_claim": INVALID,
    "jwks_unavailable": UNAVAILABLE,
}

PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the deployment -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    issuer: FakeIssuer
    rs256: SigningKey
    es256: SigningKey
    forger: SigningKey


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """One issuer with an RS256 and an ES256 key, its key set fetched once for the whole module."""
    with FakeIssuer("RS256") as issuer:
        es256 = issuer.add_key("ES256")
        rs256 = issuer.keys[0]
        config = issuer.settings(
            JWKS_CACHE_TTL=86400, JWKS_L1_RECHECK=86400, JWKS_REFRESH_COOLDOWN=86400, LEEWAY=LEEWAY
        )
        with override_settings(JWTGUARD=config):
            validate_token(issuer.mint(key=rs256))
            yield Deployment(issuer, rs256, es256, generate_key("RS256", kid=rs256.kid))


def warm_and_count(deployment: Deployment) -> Iterator[Deployment]:
    """Warm this process's key set, then prove that the examples did no I/O beyond one refresh."""
    validate_token(deployment.issuer.mint(key=deployment.rs256))
    before = deployment.issuer.jwks_requests
    yield deployment
    assert deployment.issuer.jwks_requests - before <= 1


@pytest.fixture
def quiet(deployment: Deployment) -> Iterator[Deployment]:
    yield from warm_and_count(deployment)


@pytest.fixture
def quiet_with_token_cache(deployment: Deployment) -> Iterator[Deployment]:
    """The same, with the verified-token cache on: a hit skips parsing and the signature check."""
    with override_settings(JWTGUARD={**django_settings.JWTGUARD, "TOKEN_CACHE_SIZE": 1000}):
        yield from warm_and_count(deployment)


def doors(header: str | None) -> dict[str, Outcome]:
    found = {"drf": drf(header, http=False)}
    if HAS_MIDDLEWARE:
        found["middleware"] = middleware(header)
        found["middleware-async"] = middleware_async(header)
    return found


def answer(header: str | None) -> Outcome:
    """The one answer every door gives; fails on anything but None / valid / 401 / 503 with a known code."""
    found = doors(header)
    outcome = found["drf"]
    assert found == dict.fromkeys(found, outcome), found
    if outcome.status in (401, 503):
        assert outcome.code in DETAILS, outcome
        assert outcome.detail == DETAILS[outcome.code], outcome
        assert (outcome.status == 503) == (outcome.code == "jwks_unavailable"), outcome
    else:
        assert outcome in (ACCEPTED, PASSED_ON), outcome
    event(f"answer: {outcome.status} {outcome.code or ''}".strip())
    return outcome


# -- strategies ---------------------------------------------------------------------------------------------


B64URL = string.ascii_letters + string.digits + "-_"
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
#: Seconds from now, none within 30 s of a leeway boundary (the oracle and the validator read the clock
#: a few milliseconds apart).
OFFSETS = [-(10**9), -86400, -3600, -120, -30, 0, 30, 120, 3600, 86400, 10**9]


def times() -> st.SearchStrategy[Any]:
    relative = st.sampled_from(OFFSETS).map(lambda offset: ("relative", offset))
    extreme = st.sampled_from([10**400, -(10**400), 1e308, -1e308, -0.0, 0, 5e-324, 1.5])
    return st.one_of(relative, relative, relative, extreme, json_values)


ALGS = [
    *("RS256", "ES256", "RS384", "PS256", "EdDSA", "Ed25519", "Ed448", "ESP256"),
    *("HS256", "none", "None", "NONE", "", "RS256 ", "rs256"),
]


def sometimes(chance: int = 5) -> st.SearchStrategy[bool]:
    """True about once in ``chance`` draws (shrinks to False: to the unmutated token)."""
    return st.integers(min_value=0, max_value=chance - 1).map(lambda n: n == chance - 1)


@st.composite
def near_valid(draw: st.DrawFn, deployment: Deployment) -> tuple[str, bool]:
    """A token that is valid, or valid but for a few mutated fields: returns it and whether it is valid."""
    signer = draw(st.sampled_from(["rs256", "es256", "rs256", "es256", "forger", "random", "rs384-by-rs256-key"]))
    key = {"rs256": deployment.rs256, "es256": deployment.es256}.get(signer, deployment.rs256)
    head: dict[str, Any] = {"alg": key.algorithm, "typ": "JWT", "kid": key.kid}
    if draw(sometimes()):
        head["alg"] = draw(st.sampled_from(ALGS) | st.text(max_size=8) | json_values)
    if draw(sometimes()):
        kids = [deployment.rs256.kid, deployment.es256.kid, "unknown-kid", "", "k" * 257]
        head["kid"] = draw(st.sampled_from(kids) | st.text(max_size=10) | json_values)
    if draw(sometimes()):
        head.pop(draw(st.sampled_from(["alg", "kid", "typ"])))
    extras = ["crit", "b64", "enc", "zip", "jku", "x5u", "jwk", "x5c", "cty", "typ"]
    for name in draw(st.lists(st.sampled_from(extras), max_size=2, unique=True)) if draw(sometimes(3)) else []:
        head[name] = draw(st.sampled_from([True, False, "JWT", ["exp"], None]) | json_values)

    issuer = deployment.issuer
    body: dict[str, Any] = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "user-1"}
    body["exp"], body["iat"] = ("relative", 300), ("relative", 0)
    for name in draw(st.lists(st.sampled_from(["exp", "nbf", "iat"]), max_size=3, unique=True)):
        body[name] = draw(times())
    mutations = {
        "iss": st.sampled_from([issuer.issuer.upper(), issuer.issuer.rstrip("/"), "https://other.example/"])
        | json_values,
        "aud": st.sampled_from([[issuer.audience], [issuer.audience, 7], [], issuer.audience + "/", ["other"]])
        | json_values,
        "sub": json_values,
        "scope": json_values,
        "scp": json_values,
        "jti": json_values,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(mutations)), max_size=2, unique=True)) if draw(sometimes(3)) else []
    for name in chosen:
        body[name] = draw(mutations[name])
    if draw(sometimes(8)):
        body.pop(draw(st.sampled_from(["iss", "aud", "exp", "sub"])))
    now = int(time.time())
    body = {name: (now + value[1] if isinstance(value, tuple) else value) for name, value in body.items()}

    signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}"
    if signer == "random":
        signature = draw(st.binary(min_size=1, max_size=300))
    else:
        signing_key = deployment.forger if signer == "forger" else key
        alg = "RS384" if signer == "rs384-by-rs256-key" else signing_key.algorithm
        signature = get_default_algorithms()[alg].sign(signing_input.encode(), signing_key.private_key)
    raw = f"{signing_input}.{b64(signature)}"
    genuine = signer in ("rs256", "es256") and head.get("alg") == key.algorithm and head.get("kid") == key.kid
    return raw, genuine and len(raw) <= MAX_TOKEN_BYTES and header_ok(head) and claims_ok(body, deployment)


def header_ok(head: dict[str, Any]) -> bool:
    return not ({"crit", "enc", "zip"} & head.keys()) and head.get("b64", True) is True


def is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def claims_ok(body: dict[str, Any], deployment: Deployment) -> bool:
    """The oracle: RFC 7519's rules for the claims, written independently of jwtguard's code."""
    now = time.time()
    if any(name in body and not is_number(body[name]) for name in ("exp", "nbf", "iat")):
        return False
    if any(name in body and not isinstance(body[name], str) for name in ("iss", "sub", "jti", "scope")):
        return False
    scp = body.get("scp")
    if scp is not None and not (
        isinstance(scp, str) or (isinstance(scp, list) and all(isinstance(s, str) for s in scp))
    ):
        return False
    if "exp" not in body or body["exp"] <= now - LEEWAY:
        return False
    if any(name in body and body[name] > now + LEEWAY for name in ("nbf", "iat")):
        return False
    if body.get("iss") != deployment.issuer.issuer:
        return False
    aud = body.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) for a in audiences):
        return False
    return deployment.issuer.audience in audiences


@st.composite
def mangled(draw: st.DrawFn, deployment: Deployment) -> tuple[str, str, bool]:
    """A near-valid token with its text mangled: a character inserted, deleted or replaced, a segment
    swapped for random base64url, or segments added or removed."""
    original, valid = draw(near_valid(deployment))
    how = draw(st.sampled_from(["insert", "delete", "replace", "segment", "segments"]))
    index = draw(st.integers(min_value=0, max_value=len(original) - 1))
    noise = st.sampled_from(list(B64URL + ".=+/ \t\n%é\x00\u200b")) | st.characters()
    if how == "insert":
        raw = original[:index] + draw(noise) + original[index:]
    elif how == "delete":
        raw = original[:index] + original[index + 1 :]
    elif how == "replace":
        raw = original[:index] + draw(noise) + original[index + 1 :]
    elif how == "segment":
        parts = original.split(".")
        parts[draw(st.integers(0, 2))] = draw(st.text(B64URL, max_size=60))
        raw = ".".join(parts)
    else:
        parts = original.split(".")
        count = draw(st.integers(0, 6))
        raw = ".".join((parts * 3)[:count])
    return original, raw, valid


def decoded_signature(segment: str) -> bytes | None:
    try:
        return unb64(segment)
    except (binascii.Error, ValueError):
        return None


def same_signed_content(raw: str, original: str) -> bool:
    """Whether ``raw`` carries exactly ``original``'s signing input and signature bytes."""
    parts, ours = raw.split("."), original.split(".")
    if len(parts) != 3 or parts[:2] != ours[:2] or any(c not in B64URL for c in parts[2]):
        return False
    return decoded_signature(parts[2]) == decoded_signature(ours[2])


schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Token", "JWT", "", "Bearer:"])
separators = st.sampled_from([" ", "  ", "\t", "", " \t", "\n"])
junk_tokens = st.one_of(
    st.text(max_size=100),
    st.text(B64URL + ".", max_size=200),
    st.binary(max_size=200).map(lambda data: data.decode("latin-1")),
    st.lists(st.text(B64URL, max_size=40), min_size=1, max_size=6).map(".".join),
)


header_values = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.tuples(schemes, separators, junk_tokens).map("".join),
    st.tuples(st.just("Bearer"), separators, junk_tokens).map("".join),
)


# -- properties ---------------------------------------------------------------------------------------------


@PROPERTY
@given(value=header_values)
def test_any_authorization_header(quiet: Deployment, value: str | None) -> None:
    """Any header value: None (not ours), or a 401; never a valid result for junk, never an exception."""
    assert answer(value) != ACCEPTED


@PROPERTY
@given(data=st.binary(max_size=MAX_TOKEN_BYTES + 200))
def test_any_token_bytes(quiet: Deployment, data: bytes) -> None:
    """Any bytes after ``Bearer `` (as WSGI hands them over, latin-1): a 401, never an exception."""
    outcome = answer("Bearer " + data.decode("latin-1"))
    assert outcome.status == 401


@PROPERTY
@given(data=st.data())
def test_near_valid_tokens_are_accepted_exactly_when_genuine(quiet: Deployment, data: st.DataObject) -> None:
    """Valid header and claims with mutated fields, signed by the issuer's keys or not: accepted if and only
    if the signature is the issuer's under the key's own alg and the claims are valid (the oracle)."""
    raw, valid = data.draw(near_valid(quiet))
    outcome = answer(f"Bearer {raw}")
    assert outcome.status in (200, 401), outcome
    assert (outcome == ACCEPTED) == valid, (outcome, raw)


@PROPERTY
@given(data=st.data())
def test_mangled_tokens_are_accepted_only_if_the_signed_content_is_unchanged(
    quiet_with_token_cache: Deployment, data: st.DataObject
) -> None:
    """A character or segment changed anywhere: refused, unless the signing input and the signature's bytes
    are still those of a genuine token (base64url's unused trailing bits decode the same). The original is
    validated first (twice), so with the verified-token cache on it is cached when its mangled copy arrives."""
    original, raw, valid = data.draw(mangled(quiet_with_token_cache))
    for _ in range(2):  # the cache stores a token the second time it is verified
        assert (answer(f"Bearer {original}") == ACCEPTED) == valid
    outcome = answer(f"Bearer {raw}")
    assert outcome.status in (200, 401), outcome
    if outcome == ACCEPTED:
        assert valid, raw
        assert same_signed_content(raw, original), (original, raw)


# -- the fuzz target's corpus, replayed ------------------------------------------------------------------------

FUZZ_TARGET = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_parse.py"
FUZZ_CORPUS = Path(__file__).with_name("fuzz_corpus")


@pytest.fixture(scope="module")
def fuzz_target() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_parse", FUZZ_TARGET)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", sorted(path.name for path in FUZZ_CORPUS.iterdir()))
def test_the_fuzz_corpus_replays_cleanly(fuzz_target: Any, seed: str) -> None:
    """Each committed fuzz input (and each crash once fixed, added here) goes through the fuzz harness."""
    fuzz_target.check((FUZZ_CORPUS / seed).read_bytes())


@pytest.mark.slow
def test_the_fuzzer_runs_five_seconds_without_a_crash(tmp_path: Path) -> None:
    """A smoke run of the atheris target (skipped where atheris is not installed: pip install -e '.[fuzz]')."""
    pytest.importorskip("atheris")
    command = [sys.executable, str(FUZZ_TARGET), "-max_total_time=5", f"-artifact_prefix={tmp_path}/"]
    result = subprocess.run(
        [*command, str(tmp_path), str(FUZZ_CORPUS)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
