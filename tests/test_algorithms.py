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
        ("OKP", "Ed25519", {"EdDSA"}),
        ("OKP", "Ed448", {"EdDSA"}),
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
    assert set(get_default_algorithms()) >= SUPPORTED
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
