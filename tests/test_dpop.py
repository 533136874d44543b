"""DPoP (RFC 9449): proofs, the issuer's ``DPOP`` policy, replay refused across processes, nonces, at every door."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtguard.conf import get_settings
from jwtguard.dpop import (
    ReplayGuard,
    VerifiedProof,
    access_token_hash,
    current_nonce,
    nonce_for_window,
    nonce_is_current,
    normalise_url,
    thumbprint,
)
from jwtguard.exceptions import IssuerSourceUnavailable
from jwtguard.testing import DPoPKey, FakeIssuer
from jwtguard.validation import get_validator
from tests.support.loopback import real_redis_cache, require_real_redis
from tests.support.protected_views import STACK

PUBLIC = "http://testserver"
DRF_URL = "/api/v1/friends"
MIDDLEWARE_URL = "/jwt/whoami"


@pytest.fixture
def client_key() -> DPoPKey:
    return DPoPKey("ES256")


@pytest.fixture
def dpop(issuer: FakeIssuer, configure: Callable[..., None]) -> Callable[..., None]:
    """Configure the issuer with ``DPOP="allowed"`` (or what is given) and the test server's public URL."""

    def apply(mode: str = "allowed", **overrides: Any) -> None:
        configure(issuer, DPOP=mode, DPOP_PUBLIC_URL=PUBLIC, **overrides)

    apply()
    return apply


def send(url: str, token: str, proof: str | None, *, scheme: str = "DPoP", method: str = "get") -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return getattr(Client(), method)(url, headers=headers)


def code_of(response: Any) -> str | None:
    """The refusal's code: in the body of the plain Django doors, on DRF's ``detail`` (its ``ErrorDetail``)."""
    if response.status_code == 200:
        return None
    data = getattr(response, "data", None)
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"].code)
    return str(response.json()["code"])


# -- the pieces, against the RFCs ------------------------------------------------------------------------------


def test_thumbprint_of_rfc_7638s_example() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKR"
        "XjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8K"
        "JZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw"
        "0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_thumbprint_of_each_key_type_matches_the_test_helper(algorithm: str) -> None:
    key = DPoPKey(algorithm)
    assert thumbprint(key.jwk) == key.thumbprint
    assert thumbprint({**key.jwk, "kid": "ignored", "use": "sig"}) == key.thumbprint


@pytest.mark.parametrize("jwk", [{"kty": "oct", "k": "AA"}, {"kty": "EC", "crv": "P-256", "x": "AA"}, {}])
def test_no_thumbprint_for_what_is_no_public_key(jwk: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="thumbprint|members"):
        thumbprint(jwk)


def test_ath_is_the_base64url_sha256_of_the_token() -> None:
    # RFC 9449 7.1's example: the token "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU" hashes to this ath.
    assert (
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://API.Example.com:443/a/b?q=1#f", "https://api.example.com/a/b"),
        ("HTTP://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com/%7euser/a%2fb/%c3%a9", "https://example.com/~user/a/b/%C3%A9"),
        ("https://[::1]:8443/p", "https://[::1]:8443/p"),
        ("ftp://example.com/", None),
        ("/relative", None),
        ("https://user@example.com/", None),
        ("https://example.com:99999/", None),
    ],
)
def test_urls_are_compared_normalised(url: str, normal: str | None) -> None:
    assert normalise_url(url) == normal


def test_a_nonce_holds_for_its_window_and_the_next() -> None:
    lifetime = 300.0
    now = 1_700_000_100.0
    nonce = current_nonce(now, lifetime)
    assert nonce == nonce_for_window(int(now // lifetime))
    assert nonce_is_current(nonce, now + lifetime, lifetime)
    assert not nonce_is_current(nonce, now + 2 * lifetime, lifetime)
    assert not nonce_is_current(nonce[:-1] + ("A" if nonce[-1] != "A" else "B"), now, lifetime)
    assert not nonce_is_current(None, now, lifetime)


def test_a_nonce_comes_from_the_secret_key(settings: Any) -> None:
    before = nonce_for_window(7)
    settings.SECRET_KEY = "another deployment"
    assert nonce_for_window(7) != before


def test_the_replay_guard_remembers_in_the_process_when_the_cache_forgets(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    guard = ReplayGuard("default")
    proof = VerifiedProof(jkt="k", jti="j")
    assert guard.first_use(proof, 60)
    assert not guard.first_use(proof, 60)
    assert guard.first_use(VerifiedProof(jkt="other", jti="j"), 60)  # a jti is scoped by its key


# -- accepted, at every door ----------------------------------------------------------------------------------


@pytest.fixture
def middleware(settings: Any) -> None:
    settings.MIDDLEWARE = STACK
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"


def test_drf_accepts_a_bound_token_with_its_proof(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    token = issuer.mint(cnf=client_key.cnf)
    response = send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token))
    assert response.status_code == 200, response.content
    assert response.json() == {"user": "user-1"}


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@pytest.mark.parametrize("url", ["/jwt/whoami", "/jwt/awhoami", "/jwt/required-sync", "/jwt/required-async"])
@pytest.mark.usefixtures("middleware")
def test_the_middleware_and_decorator_accept_it_sync_and_async(
    issuer: FakeIssuer, dpop: Any, client_key: DPoPKey, mode: str, url: str
) -> None:
    token = issuer.mint(cnf=client_key.cnf, scope="read:friends")
    proof = client_key.proof("GET", PUBLIC + url, access_token=token)
    response = _call(mode, url, token, proof)
    assert response.status_code == 200, response.content
    assert response.json()["claims"]["cnf"] == client_key.cnf
    replay = _call(mode, url, token, proof)
    assert (replay.status_code, code_of(replay)) == (401, "dpop_replayed")


def _call(mode: str, url: str, token: str, proof: str) -> Any:
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    if mode == "wsgi":
        return Client().get(url, headers=headers)
    return async_to_sync(AsyncClient().get)(url, headers=headers)


def test_the_decorator_alone_checks_the_proof(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    token = issuer.mint(cnf=client_key.cnf, scope="read:friends")
    assert code_of(send("/jwt/required-sync", token, None)) == "dpop_proof_missing"
    good = client_key.proof("GET", PUBLIC + "/jwt/required-sync", access_token=token)
    assert send("/jwt/required-sync", token, good).status_code == 200


# -- refused ----------------------------------------------------------------------------------------------------


def _refusal(issuer: FakeIssuer, client_key: DPoPKey, **proof_overrides: Any) -> tuple[int, str | None]:
    token = issuer.mint(cnf=client_key.cnf)
    method = proof_overrides.pop("method", "GET")
    url = proof_overrides.pop("url", PUBLIC + DRF_URL)
    signer = proof_overrides.pop("key", client_key)
    proof = signer.proof(method, url, access_token=proof_overrides.pop("access_token", token), **proof_overrides)
    response = send(DRF_URL, token, proof)
    return response.status_code, code_of(response)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"method": "POST"}, "dpop_htm_mismatch"),
        ({"url": PUBLIC + "/api/v1/other"}, "dpop_htu_mismatch"),
        ({"url": "https://testserver" + DRF_URL}, "dpop_htu_mismatch"),
        ({"iat": int(time.time()) - 600}, "dpop_stale"),
        ({"iat": int(time.time()) + 600}, "dpop_stale"),
        ({"access_token": "another.access.token"}, "dpop_ath_mismatch"),
        ({"ath": None}, "dpop_ath_mismatch"),
        ({"jti": None}, "dpop_invalid_proof"),
        ({"iat": "now"}, "dpop_invalid_proof"),
        ({"headers": {"typ": "JWT"}}, "dpop_invalid_proof"),
        ({"headers": {"alg": "ES384"}}, "dpop_invalid_proof"),
        ({"headers": {"jwk": None}}, "dpop_invalid_proof"),
    ],
)
def test_a_proof_that_does_not_hold_is_refused(
    issuer: FakeIssuer, dpop: Any, client_key: DPoPKey, overrides: dict[str, Any], code: str
) -> None:
    assert _refusal(issuer, client_key, **overrides) == (401, code)


def test_a_query_string_is_no_part_of_htu(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    token = issuer.mint(cnf=client_key.cnf)
    proof = client_key.proof("GET", "HTTP://TestServer:80" + DRF_URL, access_token=token)
    assert send(DRF_URL + "?page=2", token, proof).status_code == 200


def test_a_proof_by_another_key_is_refused(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    assert _refusal(issuer, client_key, key=DPoPKey("ES256")) == (401, "dpop_key_mismatch")


def test_a_proof_with_a_private_key_or_a_forged_signature_is_refused(
    issuer: FakeIssuer, dpop: Any, client_key: DPoPKey
) -> None:
    private = client_key.jwk | {"d": "AAAA"}
    assert _refusal(issuer, client_key, headers={"jwk": private}) == (401, "dpop_invalid_proof")
    token = issuer.mint(cnf=client_key.cnf)
    proof = client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)
    forged = proof[: proof.rindex(".") + 1] + DPoPKey().proof("GET", "x").rsplit(".", 1)[1]
    response = send(DRF_URL, token, forged)
    assert (response.status_code, code_of(response)) == (401, "dpop_invalid_proof")


def test_a_missing_proof_is_refused_with_the_dpop_challenge(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    response = send(DRF_URL, issuer.mint(cnf=client_key.cnf), None)
    assert response.status_code == 401
    assert response.json() == {"detail": "DPoP proof is missing"}
    assert code_of(response) == "dpop_proof_missing"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="api", DPoP realm="api", error="invalid_dpop_proof", '
        'error_description="DPoP proof is missing", algs="ES256 RS256 PS256 EdDSA"'
    )


def test_a_replay_is_refused_in_the_same_process(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    token = issuer.mint(cnf=client_key.cnf)
    proof = client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)
    assert send(DRF_URL, token, proof).status_code == 200
    assert code_of(send(DRF_URL, token, proof)) == "dpop_replayed"
    assert send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)).status_code == 200


def test_the_token_cache_never_skips_the_proof(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    dpop(TOKEN_CACHE_SIZE=100)
    token = issuer.mint(cnf=client_key.cnf)
    proof = client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)
    assert send(DRF_URL, token, proof).status_code == 200
    assert code_of(send(DRF_URL, token, proof)) == "dpop_replayed"
    assert code_of(send(DRF_URL, token, None)) == "dpop_proof_missing"
    assert code_of(send(DRF_URL, token, None, scheme="Bearer")) == "dpop_bound_token_as_bearer"
    fresh = client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)
    assert send(DRF_URL, token, fresh).status_code == 200
    cache = get_validator().token_cache
    assert cache is not None
    # Stored at its second verification: the last three were hits, and each still checked its proof.
    assert cache.hits == 3


# -- the issuer's DPOP --------------------------------------------------------------------------------------------


def test_allowed_takes_a_bearer_token_but_never_a_bound_one(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    assert send(DRF_URL, issuer.mint(), None, scheme="Bearer").status_code == 200
    response = send(DRF_URL, issuer.mint(cnf=client_key.cnf), None, scheme="Bearer")
    assert (response.status_code, code_of(response)) == (401, "dpop_bound_token_as_bearer")
    assert 'DPoP realm="api", error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_required_refuses_a_bearer_token(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    dpop("required")
    response = send(DRF_URL, issuer.mint(), None, scheme="Bearer")
    assert (response.status_code, code_of(response)) == (401, "dpop_required")
    assert response.headers["WWW-Authenticate"].startswith('DPoP realm="api", error="invalid_token"')
    unbound = issuer.mint()
    assert code_of(send(DRF_URL, unbound, client_key.proof("GET", PUBLIC + DRF_URL, access_token=unbound))) == (
        "dpop_key_mismatch"
    )


def test_off_is_todays_behaviour(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    dpop("off")
    bound = issuer.mint(cnf=client_key.cnf)
    response = send(DRF_URL, bound, None, scheme="Bearer")
    assert response.status_code == 200
    assert "DPoP" not in response.headers.get("WWW-Authenticate", "")
    # The DPoP scheme is nobody's: DRF sees no credentials of ours.
    refused = send(DRF_URL, bound, client_key.proof("GET", PUBLIC + DRF_URL, access_token=bound))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_dpop_scheme_for_an_issuer_with_dpop_off_is_refused(
    issuer: FakeIssuer, settings: Any, client_key: DPoPKey
) -> None:
    with FakeIssuer("RS256") as other:
        settings.JWTGUARD = {
            "DPOP_PUBLIC_URL": PUBLIC,
            "ISSUERS": [issuer.settings(DPOP="allowed"), other.settings(DPOP="off")],
        }
        token = other.mint(cnf=client_key.cnf)
        response = send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token))
    assert code_of(response) == "dpop_not_accepted"


# -- htu: the public URL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("allowed_hosts", "status"), [(["*"], 401), (["testserver"], 200)])
def test_without_a_public_url_only_a_host_django_vouches_for_is_used(
    issuer: FakeIssuer, configure: Any, client_key: DPoPKey, settings: Any, allowed_hosts: list[str], status: int
) -> None:
    configure(issuer, DPOP="allowed")
    settings.ALLOWED_HOSTS = allowed_hosts
    token = issuer.mint(cnf=client_key.cnf)
    response = send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token))
    assert (response.status_code, code_of(response)) == (status, None if status == 200 else "dpop_htu_mismatch")
    other = Client().get(
        DRF_URL,
        headers={"Authorization": f"DPoP {token}", "DPoP": client_key.proof("GET", "http://evil.test" + DRF_URL)},
        HTTP_HOST="evil.test",
    )
    assert other.status_code in (400, 401)  # DisallowedHost, or no URL to compare with: never accepted


# -- nonces ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DRF_URL, "/jwt/required-sync"])
def test_a_nonce_is_asked_for_then_accepted(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey, url: str) -> None:
    dpop(DPOP_NONCE=True)
    token = issuer.mint(cnf=client_key.cnf, scope="read:friends")
    first = send(url, token, client_key.proof("GET", PUBLIC + url, access_token=token))
    assert (first.status_code, code_of(first)) == (401, "use_dpop_nonce")
    assert 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == current_nonce(time.time(), get_settings().dpop_nonce_lifetime)
    second = send(url, token, client_key.proof("GET", PUBLIC + url, access_token=token, nonce=nonce))
    assert second.status_code == 200, second.content
    stale = send(url, token, client_key.proof("GET", PUBLIC + url, access_token=token, nonce=nonce_for_window(1)))
    assert code_of(stale) == "use_dpop_nonce"


# -- whatever arrives ---------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(header=st.binary(max_size=600))
def test_any_dpop_header_gives_a_401_or_a_valid_answer(header: bytes, issuer: FakeIssuer, dpop: Any) -> None:
    token = issuer.mint(cnf={"jkt": "x"})
    proof = header.decode("latin-1")
    response = Client().get(DRF_URL, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert response.status_code == 401
    assert str(code_of(response)).startswith("dpop_")


#: What a proof's claim may hold: any JSON scalar, huge integers and lone surrogates ("\ud800") included.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=()), max_size=40)
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    claims=st.dictionaries(
        st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]),
        JSON_SCALARS | st.lists(JSON_SCALARS, max_size=3) | st.dictionaries(st.text(max_size=5), JSON_SCALARS),
    )
)
def test_any_proof_claims_give_a_401_or_a_valid_answer(
    claims: dict[str, Any], issuer: FakeIssuer, dpop: Any, client_key: DPoPKey
) -> None:
    token = issuer.mint(cnf=client_key.cnf)
    response = send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token, **claims))
    assert response.status_code in (200, 401)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    header=st.dictionaries(
        st.sampled_from(["typ", "alg", "jwk", "crit", "b64", "kid"]),
        JSON_SCALARS | st.dictionaries(st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d"]), JSON_SCALARS),
    )
)
def test_any_proof_header_gives_a_401_or_a_valid_answer(
    header: dict[str, Any], issuer: FakeIssuer, dpop: Any, client_key: DPoPKey
) -> None:
    token = issuer.mint(cnf=client_key.cnf)
    response = send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token, headers=header))
    assert response.status_code in (200, 401)


# -- replay across OS processes sharing Redis ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.redis
def test_a_replay_is_refused_in_another_process_sharing_redis(
    issuer: FakeIssuer, client_key: DPoPKey, settings: Any
) -> None:
    require_real_redis()
    config = {**issuer.settings(DPOP="required", DPOP_PUBLIC_URL=PUBLIC), "CACHE_ALIAS": "default"}
    token = issuer.mint(cnf=client_key.cnf)
    proof = client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)
    presentation = {"scheme": "DPoP", "proof": proof, "method": "GET", "url": PUBLIC + DRF_URL}
    cache = real_redis_cache()
    context = multiprocessing.get_context("spawn")
    from tests.support.dpop_worker import present

    answers = []
    for _ in range(2):  # two pools: two interpreters, like two pods
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            answers.append(pool.submit(present, cache, config, token, presentation).result(timeout=60))
    (first_pid, first), (second_pid, second) = answers
    assert first_pid != second_pid
    assert (first, second) == ("ok", "dpop_replayed")
    # a fresh proof of the same key is accepted: only the jti is spent
    fresh = {**presentation, "proof": client_key.proof("GET", PUBLIC + DRF_URL, access_token=token)}
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(present, cache, config, token, fresh).result(timeout=60)[1] == "ok"
    # the real Redis is shared: take away the key set the workers stored (the jti expire by themselves)
    settings.CACHES = {"default": cache}
    settings.JWTGUARD = config
    provider = get_validator().provider(get_settings().issuers[0])
    for key in provider.cache_keys:
        provider.cache.delete(key)


def test_the_docs_client_makes_proofs_jwtguard_accepts(issuer: FakeIssuer, dpop: Any) -> None:
    """The client of docs/dpop.md, run as written: PyJWT makes the proof, jwtguard accepts it (an independent maker)."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "dpop.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL) if "def proof" in b)
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    token = issuer.mint(cnf={"jkt": thumbprint(namespace["jwk"])})
    response = send(DRF_URL, token, namespace["proof"]("GET", PUBLIC + DRF_URL, token))
    assert response.status_code == 200, response.content


def test_a_door_without_dpop_presents_a_bearer_token(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    """``validate_token`` and Channels pass no presentation: what holds for a Bearer token holds for them."""
    import jwtguard
    from jwtguard.exceptions import DPoPDowngrade, DPoPRequired

    assert jwtguard.validate_token(issuer.mint()).claims["sub"] == "user-1"
    with pytest.raises(DPoPDowngrade):
        jwtguard.validate_token(issuer.mint(cnf=client_key.cnf))
    dpop("required")
    with pytest.raises(DPoPRequired):
        jwtguard.validate_token(issuer.mint())


@pytest.mark.usefixtures("middleware")
def test_drf_behind_the_middleware_checks_the_proof_once(issuer: FakeIssuer, dpop: Any, client_key: DPoPKey) -> None:
    """The middleware spends the proof; DRF reuses the token it verified instead of spending the proof again."""
    token = issuer.mint(cnf=client_key.cnf, scope="read:friends")
    url = "/jwt/drf/scoped"
    proof = client_key.proof("GET", PUBLIC + url, access_token=token)
    assert send(url, token, proof).status_code == 200
    replay = send(url, token, proof)
    assert (replay.status_code, code_of(replay)) == (401, "dpop_replayed")


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"iat": 10**400}, "dpop_stale"),
        ({"iat": -(10**400)}, "dpop_stale"),
        ({"iat": 1e308}, "dpop_stale"),
        ({"htu": "http://testserver/\ud800"}, "dpop_htu_mismatch"),
        ({"ath": "\ud800"}, "dpop_ath_mismatch"),
        ({"jti": "\ud800" * 3}, None),
        ({"htm": "\ud800"}, "dpop_htm_mismatch"),
        ({"nonce": "\ud800"}, None),
    ],
)
def test_hostile_claim_values_are_refused_or_harmless(
    issuer: FakeIssuer, dpop: Any, client_key: DPoPKey, claims: dict[str, Any], code: str | None
) -> None:
    status, found = _refusal(issuer, client_key, **claims)
    assert (status, found) == ((200, None) if code is None else (401, code))


# -- issuers resolved at run time: patterns and ISSUER_SOURCE -----------------------------------------------------

#: What ``dpop_source`` answers for its tenant (set by each test): the ``ISSUERS``-entry keys, ``ISSUER`` apart.
tenant_answer: dict[str, Any] = {}


def dpop_source(iss: str) -> dict[str, Any] | None:
    return (
        {key: value for key, value in tenant_answer.items() if key != "ISSUER"}
        if iss == tenant_answer.get("ISSUER")
        else None
    )


@pytest.fixture
def dpop_tenant(issuer: FakeIssuer) -> Any:
    tenant_answer.clear()
    tenant_answer.update(ISSUER=issuer.issuer, AUDIENCE=issuer.audience, JWKS_URL=issuer.jwks_url)
    yield tenant_answer
    tenant_answer.clear()


def test_source_tenants_take_dpop_when_the_top_level_says_so(
    issuer: FakeIssuer, settings: Any, client_key: DPoPKey, dpop_tenant: Any
) -> None:
    settings.JWTGUARD = {"ISSUER_SOURCE": "tests.test_dpop.dpop_source", "DPOP": "allowed", "DPOP_PUBLIC_URL": PUBLIC}
    token = issuer.mint(cnf=client_key.cnf)
    response = send(DRF_URL, token, client_key.proof("GET", PUBLIC + DRF_URL, access_token=token))
    assert response.status_code == 200, response.content
    refused = send(DRF_URL, token, None, scheme="Bearer")
    assert code_of(refused) == "dpop_bound_token_as_bearer"
    assert "DPoP realm=" in refused.headers["WWW-Authenticate"]


def test_a_source_answer_asking_for_dpop_the_edges_do_not_read_is_the_sources_failure(
    issuer: FakeIssuer, settings: Any, client_key: DPoPKey, dpop_tenant: Any
) -> None:
    # DPOP off everywhere else: `Authorization: DPoP` is nobody's, so this tenant's DPoP requests could never pass.
    settings.JWTGUARD = {"ISSUER_SOURCE": "tests.test_dpop.dpop_source", "DPOP_PUBLIC_URL": PUBLIC}
    dpop_tenant["DPOP"] = "required"
    with pytest.raises(IssuerSourceUnavailable, match="top-level DPOP"):
        get_validator().validate(issuer.mint(cnf=client_key.cnf))
