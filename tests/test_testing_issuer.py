"""FakeIssuer's key_factory: every key the issuer publishes comes from it, and it is held to its contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jwtguard import validate_token
from jwtguard.testing import FakeIssuer, SigningKey, generate_key

Configure = Callable[..., None]


class Recording:
    """A key_factory that makes real keys and remembers what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []
        self.made: list[SigningKey] = []

    def __call__(self, algorithm: str, kid: str | None) -> SigningKey:
        self.asked.append((algorithm, kid))
        self.made.append(generate_key(algorithm, kid))
        return self.made[-1]


def test_the_first_key_added_keys_and_rotated_keys_come_from_the_factory(configure: Configure) -> None:
    factory = Recording()
    with FakeIssuer("ES256", key_factory=factory) as issuer:
        configure(issuer, ALGORITHMS=["ES256", "EdDSA"])
        first = issuer.signing_key
        added = issuer.add_key("EdDSA", kid="second")
        rotated = issuer.rotate()
        assert factory.asked == [("ES256", None), ("EdDSA", "second"), ("EdDSA", None)]
        assert factory.made == [first, added, rotated]
        assert validate_token(issuer.mint(sub="alice")).claims["sub"] == "alice"


def test_the_factory_may_be_swapped_between_keys() -> None:
    factory = Recording()
    issuer = FakeIssuer("ES256")
    issuer.key_factory = factory
    assert issuer.rotate() == factory.made[0]


@pytest.mark.parametrize(
    ("made", "asked"),
    [
        (lambda algorithm, kid: generate_key("RS256", kid), "a RS256 key with kid 'k1'; asked for ES256, kid 'k1'"),
        (lambda algorithm, kid: generate_key(algorithm, "other"), "kid 'other'; asked for ES256, kid 'k1'"),
    ],
    ids=["other-algorithm", "other-kid"],
)
def test_a_key_other_than_asked_for_is_refused(made: Callable[[str, str | None], SigningKey], asked: str) -> None:
    issuer = FakeIssuer("ES256")
    issuer.key_factory = made
    with pytest.raises(ValueError, match=asked):
        issuer.add_key(kid="k1")
    assert len(issuer.keys) == 1


def test_the_development_issuer_mints_dpop_bound_tokens() -> None:
    import json
    import urllib.request

    import jwt

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with FakeIssuer("RS256", allow_minting=True) as issuer:
        with opener.open(f"{issuer.url}/mint?sub=alice&dpop_jkt=abc", timeout=10) as response:
            bound = json.load(response)
        with opener.open(f"{issuer.url}/mint?sub=alice", timeout=10) as response:
            bearer = json.load(response)
    assert bound["token_type"] == "DPoP"
    assert jwt.decode(bound["access_token"], options={"verify_signature": False})["cnf"] == {"jkt": "abc"}
    assert bearer["token_type"] == "Bearer"
    assert "cnf" not in jwt.decode(bearer["access_token"], options={"verify_signature": False})
