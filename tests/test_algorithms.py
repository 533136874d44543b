"""The algorithm table, written once: each name's key binding and signature check, and the dangerous names."""

from __future__ import annotations

import pytest
from jwt.algorithms import get_default_algorithms

from jwtguard import algorithms, conf
from jwtguard.algorithms import ALGORITHMS, KEY_LOADERS, SUPPORTED, algorithms_for_key, is_dangerous

RSA = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}


@pytest.mark.parametrize(
    ("kty", "crv", "names"),
    [
        ("RSA", None, RSA),
        ("RSA", "P-256", RSA),  # RSA has no curve: a stray crv changes nothing
        ("EC", "P-256", {"ES256"}),
        ("EC", "P-384", {"ES384"}),
        ("EC", "P-521", {"ES512"}),
        ("OKP", "Ed25519", {"EdDSA", "Ed25519"}),  # RFC 8037's polymorphic name, and RFC 9864's for this curve
        ("OKP", "Ed448", {"EdDSA", "Ed448"}),
        ("EC", None, set()),
        ("EC", "secp256k1", set()),
        ("OKP", "X25519", set()),
        ("EC", ["P-256"], set()),
        ("oct", None, set()),
    ],
)
def test_each_key_binds_to_the_names_of_its_type_and_curve(kty: str, crv: object, names: set[str]) -> None:
    assert algorithms_for_key(kty, crv) == names


def test_every_name_is_pyjwts_and_every_key_type_has_a_loader() -> None:
    # PyJWT knows RFC 9864's two names as EdDSA (the key's curve decides); FakeIssuer signs them so.
    assert set(get_default_algorithms()) >= SUPPORTED - {"Ed25519", "Ed448"}
    assert {"Ed25519", "Ed448"} <= SUPPORTED
    assert {row.kty for row in ALGORITHMS.values()} == set(KEY_LOADERS)
    assert set(algorithms.SIGNATURE_CHECKS) == SUPPORTED


@pytest.mark.parametrize("name", ["none", "None", "NONE", "HS256", "HS384", "HS512", "hs256"])
def test_none_and_hmac_are_dangerous(name: str) -> None:
    assert is_dangerous(name)
    assert name not in SUPPORTED


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_no_supported_name_is_dangerous_and_conf_accepts_each(name: str) -> None:
    assert not is_dangerous(name)
    parsed = conf.parse_settings({"ISSUER": "https://idp.example.com/", "AUDIENCE": "api", "ALGORITHMS": [name]})
    assert parsed.issuers[0].algorithms == (name,)


def test_conf_reports_every_dangerous_name_of_a_raw_setting() -> None:
    assert conf.dangerous_algorithms(["RS256", "none", "HS256", 7]) == ["none", "HS256"]
    assert conf.dangerous_algorithms("HS256") == []  # not a list: the parser names that problem (E001)


@pytest.mark.parametrize(
    ("name", "jose", "curve"),
    [("ESP256", "ES256", "P-256"), ("ESP384", "ES384", "P-384"), ("ESP512", "ES512", "P-521"), ("ESB256", None, None)],
)
def test_rfc_9864_cose_names_are_not_jws_names(name: str, jose: str | None, curve: str | None) -> None:
    """ESP256 and the rest name, in COSE, what JOSE's ES256/ES384/ES512 always were: a JWS never carries them."""
    assert name not in SUPPORTED
    assert algorithms.COSE_ONLY[name] == jose
    assert jose is None or ALGORITHMS[jose].curves == (curve,)
