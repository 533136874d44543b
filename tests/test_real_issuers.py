"""jwtguard against real, independent token issuers (issue 13): panva's oidc-provider (npm) and Authlib's RFC 9068
generator (PyPI), started on 127.0.0.1 by the tests. Their tokens reach jwtguard the way a client's would:
through the token endpoint, then the DRF class, the middleware and ``validate_token``.

Installed by ``scripts/install-real-issuers.sh`` (oidc-provider) and the dev extra (Authlib). Without node the
oidc-provider tests skip, unless JWTGUARD_REQUIRE_REAL_ISSUERS=1; with node and no install they fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import time_machine
from rest_framework.test import APIClient

import jwtguard
from jwtguard.exceptions import InvalidTokenType, TokenExpired
from jwtguard.testing import DPoPKey
from tests.real_issuers import AUDIENCE, Client, private_jwk
from tests.real_issuers.authlib_issuer import AuthlibIssuer
from tests.real_issuers.oidc_provider import OidcProvider
from tests.support.protected_views import STACK, call, invalid_token_challenge
from tests.test_permissions import assert_insufficient_scope

pytestmark = [pytest.mark.real_issuer, pytest.mark.slow]

#: The scopes the API defines at both issuers, and how long their tokens live (seconds).
SCOPES = "read:friends write:friends"
TTL = 120
#: What oidc-provider 9 signs besides "Ed25519" (RFC 9864), which its own test below allows.
ACCEPTED_TODAY = ["RS256", "PS256", "ES256", "EdDSA"]
INVALID = "Bearer token is invalid"
SECRET = "client-secret-" + "x" * 32


def oidc_client(alg: str) -> Client:
    return Client(client_id=f"client-{alg.lower()}", client_secret=SECRET, alg=alg)


@pytest.fixture(scope="module")
def oidc_keys() -> list[dict[str, Any]]:
    """Keys of the four types oidc-provider signs with: an RSA key without ``alg`` (it signs RS256 and PS256),
    and EC and OKP keys that name theirs, both of RFC 9864's names for the Ed25519 curve."""
    return [
        private_jwk("RSA", "rsa-1"),
        private_jwk("P-256", "ec-1", "ES256"),
        private_jwk("Ed25519", "ed25519-1", "Ed25519"),
        private_jwk("Ed25519", "eddsa-1", "EdDSA"),
    ]


def start_oidc_provider(workdir: Path, keys: list[dict[str, Any]], algorithms: list[str]) -> OidcProvider:
    provider = OidcProvider(
        workdir,
        keys=keys,
        clients=[oidc_client(alg) for alg in algorithms],
        resources={AUDIENCE: {"audience": AUDIENCE, "scope": SCOPES, "ttl": TTL}},
    )
    provider.start()
    return provider


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory, oidc_keys: list[dict[str, Any]]) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc-provider"), oidc_keys, [*ACCEPTED_TODAY, "Ed25519"])
    yield provider
    provider.stop()


@dataclass(frozen=True)
class RealIssuer:
    """One issuer as a test sees it: where it is, a client of it whose tokens are signed with ``alg``, and how
    many requests it answered at its discovery and JWKS endpoints."""

    name: str
    issuer: str
    jwks_url: str
    client_id: str
    alg: str
    mint: Callable[[str], str]
    answered: Callable[[str], int]


#: The requests counted, by what they are for; both issuers serve them at these paths.
PATHS = {"discovery": "/.well-known/openid-configuration", "jwks": "/jwks"}


def oidc_real_issuer(provider: OidcProvider, alg: str) -> RealIssuer:
    return RealIssuer(
        name="oidc-provider",
        issuer=provider.issuer,
        jwks_url=provider.jwks_url,
        client_id=oidc_client(alg).client_id,
        alg=alg,
        mint=lambda scope: provider.token(oidc_client(alg).client_id, AUDIENCE, scope),
        answered=lambda what: provider.count(PATHS[what]),
    )


def authlib_real_issuer(server: AuthlibIssuer) -> RealIssuer:
    return RealIssuer(
        name="authlib",
        issuer=server.issuer,
        jwks_url=server.jwks_url,
        client_id=server.client.client_id,
        alg=server.alg,
        mint=server.token,
        answered=lambda what: server.requests[PATHS[what]],
    )


#: Authlib's key kind for each algorithm it signs with.
AUTHLIB_KEYS = {"RS256": "RSA", "ES256": "P-256"}


@pytest.fixture
def real_issuer(request: pytest.FixtureRequest) -> Iterator[RealIssuer]:
    """Parametrized indirectly with (issuer, alg); oidc-provider is started only for the cases that use it."""
    name, alg = request.param
    if name == "oidc-provider":
        yield oidc_real_issuer(request.getfixturevalue("oidc_provider"), alg)
        return
    with AuthlibIssuer(
        alg, [private_jwk(AUTHLIB_KEYS[alg], f"authlib-{alg.lower()}", alg)], scope=SCOPES, ttl=TTL
    ) as server:
        yield authlib_real_issuer(server)


EVERY_ALGORITHM = [("oidc-provider", alg) for alg in ACCEPTED_TODAY] + [("authlib", "RS256"), ("authlib", "ES256")]
#: One case per issuer, for what does not depend on the algorithm.
EACH_ISSUER = [("oidc-provider", "ES256"), ("authlib", "RS256")]


def case_id(case: tuple[str, str]) -> str:
    return "-".join(case)


def configure(settings: Any, issuer: RealIssuer, *, discovery: bool = True, **overrides: Any) -> None:
    """``ISSUER`` alone (the key set found by discovery), or with an explicit ``JWKS_URL``."""
    settings.JWTGUARD = {
        "ISSUER": issuer.issuer,
        "AUDIENCE": AUDIENCE,
        "ALGORITHMS": ACCEPTED_TODAY,
        **({} if discovery else {"JWKS_URL": issuer.jwks_url}),
        **overrides,
    }


def drf_get(url: str, token: str) -> Any:
    return APIClient().get(url, headers={"Authorization": f"Bearer {token}"})


def assert_drf_refused(response: Any) -> None:
    """DRF's answer to a refused token carries no code (``validate_token``'s exception does)."""
    assert response.status_code == 401
    assert response.json() == {"detail": INVALID}
    assert response.headers["WWW-Authenticate"] == invalid_token_challenge(INVALID)


@pytest.mark.parametrize("real_issuer", EVERY_ALGORITHM, ids=case_id, indirect=True)
@pytest.mark.parametrize("discovery", [True, False], ids=["discovery", "jwks_url"])
def test_every_algorithm_the_issuer_signs(real_issuer: RealIssuer, discovery: bool, settings: Any) -> None:
    configure(settings, real_issuer, discovery=discovery)
    discovered, fetched = real_issuer.answered("discovery"), real_issuer.answered("jwks")
    token = real_issuer.mint("read:friends")
    assert jwt.get_unverified_header(token)["alg"] == real_issuer.alg

    verified = jwtguard.validate_token(token)
    assert verified.subject == real_issuer.client_id
    assert verified.claims["iss"] == real_issuer.issuer
    assert verified.claims["client_id"] == real_issuer.client_id
    response = drf_get("/api/v1/friends", token)
    assert response.status_code == 200
    assert response.json() == {"user": real_issuer.client_id}
    # Both doors verified with one fetch of the key set, found through discovery only when JWKS_URL is not set.
    assert real_issuer.answered("discovery") - discovered == (1 if discovery else 0)
    assert real_issuer.answered("jwks") - fetched == 1


def test_ed25519_by_its_rfc_9864_name(oidc_provider: OidcProvider, settings: Any) -> None:
    """oidc-provider 9 signs ``alg: Ed25519`` with a key published as ``alg: Ed25519``: accepted when
    ``ALGORITHMS`` lists that name (RFC 9864, issue 13 point 1)."""
    issuer = oidc_real_issuer(oidc_provider, "Ed25519")
    configure(settings, issuer, ALGORITHMS=[*ACCEPTED_TODAY, "Ed25519"])
    token = issuer.mint("read:friends")
    assert jwt.get_unverified_header(token)["alg"] == "Ed25519"

    assert jwtguard.validate_token(token).subject == issuer.client_id
    response = drf_get("/api/v1/friends", token)
    assert response.status_code == 200
    assert response.json() == {"user": issuer.client_id}


def test_oidc_provider_names_ed25519_as_rfc_9864_does(oidc_provider: OidcProvider) -> None:
    """What the test above stands on, checked apart: the issuer names the algorithm as RFC 9864 does."""
    token = oidc_provider.token(oidc_client("Ed25519").client_id, AUDIENCE, "read:friends")
    assert jwt.get_unverified_header(token) == {"alg": "Ed25519", "typ": "at+jwt", "kid": "ed25519-1"}


@pytest.mark.parametrize("real_issuer", EACH_ISSUER, ids=case_id, indirect=True)
def test_token_type_at_jwt(real_issuer: RealIssuer, settings: Any) -> None:
    """RFC 9068 tokens say ``typ: at+jwt``; ``TOKEN_TYPE: "at+jwt"`` admits them, and another type refuses them."""
    token = real_issuer.mint("read:friends")
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    configure(settings, real_issuer, TOKEN_TYPE="at+jwt")
    assert jwtguard.validate_token(token).subject == real_issuer.client_id
    assert drf_get("/api/v1/friends", token).status_code == 200

    configure(settings, real_issuer, TOKEN_TYPE="JWT")
    with pytest.raises(InvalidTokenType):
        jwtguard.validate_token(token)
    assert_drf_refused(drf_get("/api/v1/friends", token))


@pytest.mark.parametrize("real_issuer", EACH_ISSUER, ids=case_id, indirect=True)
def test_scopes_through_has_scope(real_issuer: RealIssuer, settings: Any) -> None:
    configure(settings, real_issuer)
    token = real_issuer.mint("read:friends")
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == "read:friends"

    response = drf_get("/jwt/drf/scoped", token)  # requires read:friends
    assert response.status_code == 200
    assert response.json() == {"user": real_issuer.client_id}
    assert_insufficient_scope(drf_get("/jwt/drf/and", token), "read:friends write:friends")
    assert drf_get("/jwt/drf/and", real_issuer.mint(SCOPES)).status_code == 200


@pytest.mark.parametrize("real_issuer", EACH_ISSUER, ids=case_id, indirect=True)
@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_the_middleware(real_issuer: RealIssuer, mode: str, settings: Any) -> None:
    configure(settings, real_issuer)
    settings.MIDDLEWARE = STACK
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    token = real_issuer.mint("read:friends")
    for url in ("/jwt/whoami", "/jwt/awhoami", "/jwt/required-async"):
        response = call(mode, url, f"Bearer {token}")
        assert response.status_code == 200, (url, response.content)
        assert response.json()["user"] == real_issuer.client_id
        assert response.json()["claims"]["iss"] == real_issuer.issuer


@pytest.mark.parametrize("real_issuer", EACH_ISSUER, ids=case_id, indirect=True)
def test_expiry(real_issuer: RealIssuer, settings: Any) -> None:
    """The issuer's TTL holds: accepted now, ``token_expired`` one second past ``exp`` (no leeway), with the
    clock moved by time-machine rather than waited for."""
    configure(settings, real_issuer, LEEWAY=0)
    token = real_issuer.mint("read:friends")
    claims = jwtguard.validate_token(token).claims
    assert claims["exp"] - claims["iat"] == TTL

    with time_machine.travel(claims["exp"] + 1, tick=False):
        with pytest.raises(TokenExpired):
            jwtguard.validate_token(token)
        assert_drf_refused(drf_get("/api/v1/friends", token))
    assert time.time() < claims["exp"]  # back to the real clock, where it is still valid
    assert jwtguard.validate_token(token).subject == real_issuer.client_id


#: The issuer, its kind of key and the algorithm it signs with, for the rotation test.
ROTATING = {"oidc-provider": ("RSA", "RS256"), "authlib": ("P-256", "ES256")}


@pytest.fixture(params=list(ROTATING))
def rotating_issuer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RealIssuer, Callable[[dict[str, Any]], None]]]:
    """An issuer of this test's own, with one key, and how to roll out a new one at it. oidc-provider's documented
    rotation: the new key first in the set, the processes restarted; it then signs with the new key at once."""
    kind, alg = ROTATING[request.param]
    old = private_jwk(kind, f"{alg.lower()}-old")
    if request.param == "oidc-provider":
        provider = start_oidc_provider(tmp_path, [old], [alg])
        try:
            yield oidc_real_issuer(provider, alg), lambda new: provider.restart([new, *provider.keys])
        finally:
            provider.stop()
    else:
        with AuthlibIssuer(alg, [old], scope=SCOPES, ttl=TTL) as server:
            yield authlib_real_issuer(server), lambda new: server.keys.insert(0, new)


def test_key_rotation(rotating_issuer: tuple[RealIssuer, Callable[[dict[str, Any]], None]], settings: Any) -> None:
    """A token signed with the new key meets jwtguard's unknown-kid refresh: one fetch of the key set, then none;
    tokens of the old key, still published, keep working."""
    issuer, roll_out = rotating_issuer
    configure(settings, issuer)
    before = issuer.mint("read:friends")
    assert jwtguard.validate_token(before).header["kid"].endswith("-old")

    kind, _ = ROTATING[issuer.name]
    roll_out(private_jwk(kind, "rolled-out"))
    discovered, fetched = issuer.answered("discovery"), issuer.answered("jwks")
    after = issuer.mint("read:friends")
    assert jwt.get_unverified_header(after)["kid"] == "rolled-out"
    assert jwtguard.validate_token(after).subject == issuer.client_id
    for token in (after, before, after):
        assert drf_get("/api/v1/friends", token).status_code == 200
    assert issuer.answered("discovery") - discovered == 0
    assert issuer.answered("jwks") - fetched == 1


# -- DPoP (RFC 9449): oidc-provider binds its tokens to a key of the client's; jwtguard holds them to it -----------


def test_a_dpop_bound_token_of_oidc_provider(oidc_provider: OidcProvider, settings: Any) -> None:
    """A client (a key of ours, proofs made with cryptography) asks oidc-provider for a DPoP-bound JWT; jwtguard
    accepts it with a good proof, refuses its replay, and refuses the token sent without its key."""
    client_key = DPoPKey("ES256")
    client_id = oidc_client("ES256").client_id
    answer = oidc_provider.token_answer(
        client_id, AUDIENCE, "read:friends", dpop_proof=client_key.proof("POST", oidc_provider.token_url)
    )
    assert answer["token_type"] == "DPoP"
    token = answer["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"jkt": client_key.thumbprint}
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.JWTGUARD = {
        "ISSUER": oidc_provider.issuer,
        "AUDIENCE": AUDIENCE,
        "ALGORITHMS": ACCEPTED_TODAY,
        "DPOP": "allowed",
        "DPOP_PUBLIC_URL": "http://testserver",
    }
    url = "http://testserver/api/v1/friends"
    proof = client_key.proof("GET", url, access_token=token)

    def get(authorization: str, dpop: str | None) -> Any:
        headers = {"Authorization": authorization, **({"DPoP": dpop} if dpop else {})}
        return APIClient().get("/api/v1/friends", headers=headers)

    assert get(f"DPoP {token}", proof).status_code == 200
    replay = get(f"DPoP {token}", proof)
    assert (replay.status_code, replay.data["detail"].code) == (401, "dpop_replayed")
    as_bearer = get(f"Bearer {token}", None)
    assert (as_bearer.status_code, as_bearer.data["detail"].code) == (401, "dpop_bound_token_as_bearer")
    other_key = DPoPKey("ES256").proof("GET", url, access_token=token)
    assert get(f"DPoP {token}", other_key).data["detail"].code == "dpop_key_mismatch"
    assert get(f"DPoP {token}", client_key.proof("GET", url, access_token=token)).status_code == 200
