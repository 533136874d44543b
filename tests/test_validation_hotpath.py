"""The fast parts of the hot path are exactly as strict as the slow, obvious code they replace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from jwtguard import exceptions, validate_token
from jwtguard.conf import get_settings
from jwtguard.jwks import VerificationKey, get_provider
from jwtguard.testing import FakeIssuer, generate_key
from jwtguard.validation import TokenValidator, _json_object, parse, signature_is_valid
from tests.support.tokens import b64

Configure = Callable[..., None]
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
PYJWT = get_default_algorithms()


def reference_json(data: bytes) -> Any:
    """The obvious implementation: json.loads with a duplicate-refusing hook and no NaN/Infinity."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            raise ValueError("duplicate")
        return result

    def constant(name: str) -> Any:
        raise ValueError(name)

    value = json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)
json_texts = st.one_of(
    json_values.map(json.dumps),
    st.tuples(
        st.sampled_from(["", " ", "\n", "\ufeff", "x"]),
        json_values.map(json.dumps),
        st.sampled_from(["", " ", "}", "x"]),
    ).map("".join),
    st.lists(st.tuples(st.sampled_from(["a", "b", "\\u0061"]), st.integers(0, 2)), max_size=4).map(
        lambda members: "{" + ",".join(f'"{name}":{value}' for name, value in members) + "}"
    ),
    st.text(alphabet='{}[]":, \\ua0123NaInfity-e.tr', max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(json_texts)
def test_json_objects_are_accepted_and_refused_as_json_loads_does(text: str) -> None:
    data = text.encode("utf-8")
    try:
        expected = reference_json(data)
    except (ValueError, RecursionError):
        with pytest.raises(exceptions.MalformedToken):
            _json_object(data, "header")
        return
    assert _json_object(data, "header") == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64), st.binary(min_size=1, max_size=64))
def test_segments_decode_as_base64url_does(header: bytes, claims: bytes, signature: bytes) -> None:
    header_json = json.dumps({"h": b64(header)}).encode()
    claims_json = json.dumps({"c": b64(claims)}).encode()
    raw = f"{b64(header_json)}.{b64(claims_json)}.{b64(signature)}"
    parsed = parse(raw, max_bytes=8192)
    assert parsed.header == {"h": b64(header)}
    assert parsed.claims == {"c": b64(claims)}
    assert parsed.signature == signature
    assert parsed.signing_input == raw[: raw.rindex(".")].encode()


@pytest.mark.parametrize("length", [1, 5, 9])
def test_a_segment_of_an_impossible_length_is_malformed(length: int) -> None:
    with pytest.raises(exceptions.MalformedToken, match="impossible length"):
        parse(f"{b64(b'{}')}.{b64(b'{}')}.{'A' * length}", max_bytes=8192)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signature_checks_agree_with_pyjwt(alg: str) -> None:
    signing = generate_key(alg, "k")
    public = PYJWT[alg].from_jwk(signing.public_jwk())
    key = VerificationKey(kid="k", kty="x", algorithms=frozenset({alg}), key=public)
    message = b"header.claims"
    good = PYJWT[alg].sign(message, signing.private_key)
    flipped = bytes([good[0] ^ 1]) + good[1:]
    for signature in (good, flipped, good[:-1], good + b"\x00", b""):
        for signed in (message, message + b"x"):
            assert signature_is_valid(key, alg, signed, signature) is PYJWT[alg].verify(signed, public, signature)
    assert signature_is_valid(key, alg, message, good)


def test_a_key_verifies_only_its_own_algorithms() -> None:
    signing = generate_key("RS256", "k")
    public = PYJWT["RS256"].from_jwk(signing.public_jwk())
    message = b"header.claims"
    signature = PYJWT["RS256"].sign(message, signing.private_key)
    key = VerificationKey(kid="k", kty="RSA", algorithms=frozenset({"PS256"}), key=public)
    assert not signature_is_valid(key, "RS256", message, signature)


def test_the_provider_is_looked_up_once_per_issuer(jwtguard_settings: FakeIssuer) -> None:
    calls: list[object] = []

    def provider_for(config: Any) -> Any:
        calls.append(config)
        return get_provider(config)

    validator = TokenValidator(get_settings(), provider_for=provider_for)
    for _ in range(3):
        validator.validate(jwtguard_settings.mint())
    config = get_settings().issuers[0]
    assert calls == [config]
    assert validator.provider(config) is get_provider(config)


def test_validate_token_follows_a_settings_change(issuer: FakeIssuer, configure: Configure) -> None:
    configure(issuer)
    validate_token(issuer.mint())
    configure(issuer, AUDIENCE="https://other.example")
    with pytest.raises(exceptions.InvalidAudience):
        validate_token(issuer.mint())
