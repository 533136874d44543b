"""JWTAuthenticationMiddleware: sync (WSGI) and async (ASGI) stacks, sync and async views, RFC 6750 answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client
from rest_framework.test import APIClient

from jwtguard import signals
from jwtguard.exceptions import KEYS_UNAVAILABLE, NOT_A_JWT, NOT_BEARER
from jwtguard.jwks import KeyProvider
from jwtguard.middleware import JWTAuthenticationMiddleware
from jwtguard.testing import FakeIssuer, generate_key
from jwtguard.validation import TokenValidator, get_validator
from tests.support.protected_views import STACK, assert_refused, call, invalid_token_challenge

MODES = ["wsgi", "asgi"]
VIEWS = ["/jwt/whoami", "/jwt/awhoami"]


@pytest.fixture(autouse=True)
def _stack(settings: Any) -> None:
    settings.MIDDLEWARE = STACK
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often signatures are verified and keys asked for (spies around the real methods)."""
    counts = {"verify": 0, "get_key": 0}
    verify, get_key = TokenValidator.verify, KeyProvider.get_key

    def counting_verify(self: TokenValidator, *args: Any) -> Any:
        counts["verify"] += 1
        return verify(self, *args)

    def counting_get_key(self: KeyProvider, *args: Any) -> Any:
        counts["get_key"] += 1
        return get_key(self, *args)

    monkeypatch.setattr(TokenValidator, "verify", counting_verify)
    monkeypatch.setattr(KeyProvider, "get_key", counting_get_key)
    return counts


class TestValidToken:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("url", VIEWS)
    def test_sets_user_auth_and_jwt(self, jwtguard_settings: FakeIssuer, mode: str, url: str) -> None:
        token = jwtguard_settings.mint(sub="auth0|42", scope="read:friends")
        response = call(mode, url, f"Bearer {token}")
        assert response.status_code == 200
        body = response.json()
        assert body["user"] == "auth0|42"
        assert body["user_type"] == "TokenUser"
        assert body["claims"]["sub"] == "auth0|42"
        assert body["claims"]["scope"] == "read:friends"
        assert body["auth_is_jwt"] is True
        assert "Authorization" in response.headers["Vary"]

    @pytest.mark.parametrize("mode", MODES)
    def test_auser_returns_the_same_user_in_async_views(self, jwtguard_settings: FakeIssuer, mode: str) -> None:
        response = call(mode, "/jwt/awhoami", f"Bearer {jwtguard_settings.mint()}")
        assert response.json()["auser_is_user"] is True

    @pytest.mark.parametrize("mode", MODES)
    def test_one_fetch_for_many_requests(self, jwtguard_settings: FakeIssuer, mode: str) -> None:
        for _ in range(5):
            assert call(mode, "/jwt/whoami", f"Bearer {jwtguard_settings.mint()}").status_code == 200
        assert jwtguard_settings.jwks_requests == 1


class TestWithoutBearerToken:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("url", VIEWS)
    @pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Token abc"])
    def test_the_request_passes_on_untouched(
        self, jwtguard_settings: FakeIssuer, mode: str, url: str, header: str | None
    ) -> None:
        response = call(mode, url, header)
        assert response.status_code == 200
        assert response.json()["user"] is None
        assert response.json()["user_type"] == "AnonymousUser"
        assert response.json()["claims"] is None
        assert jwtguard_settings.requests.total() == 0

    @pytest.mark.django_db
    @pytest.mark.parametrize(("mode", "url"), [("wsgi", "/jwt/whoami"), ("asgi", "/jwt/awhoami")])
    def test_a_session_user_stays_without_a_token_and_yields_to_one(
        self, jwtguard_settings: FakeIssuer, mode: str, url: str
    ) -> None:
        logged_in = Client()
        logged_in.force_login(get_user_model().objects.create_user("alice"))
        session_only = call(mode, url, cookies=logged_in.cookies)
        with_token = call(mode, url, f"Bearer {jwtguard_settings.mint()}", cookies=logged_in.cookies)
        assert (session_only.json()["user"], session_only.json()["user_type"]) == ("alice", "User")
        assert (with_token.json()["user"], with_token.json()["user_type"]) == ("user-1", "TokenUser")


def _other_key_same_kid(issuer: FakeIssuer) -> str:
    return issuer.mint(key=generate_key("RS256", kid=issuer.signing_key.kid))


REFUSALS: list[tuple[str, Callable[[FakeIssuer], str]]] = [
    ("token_expired", lambda i: i.mint(expires_in=-3600)),
    ("token_not_yet_valid", lambda i: i.mint(nbf=int(time.time()) + 3600)),
    ("invalid_signature", _other_key_same_kid),
    ("invalid_audience", lambda i: i.mint(aud="https://someone-else.example")),
    ("invalid_issuer", lambda i: i.mint(iss="https://someone-else.example/")),
    ("algorithm_not_allowed", lambda i: i.mint(key=generate_key("ES256"))),
    ("missing_claim", lambda i: i.mint(exp=None)),
    ("invalid_claim", lambda i: i.mint(sub=42)),
    ("unsupported_header", lambda i: i.mint(headers={"crit": ["exp"]})),
]


class TestInvalidToken:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(("code", "make"), REFUSALS, ids=[code for code, _ in REFUSALS])
    def test_401_with_a_specific_code_and_an_rfc6750_challenge(
        self, jwtguard_settings: FakeIssuer, mode: str, code: str, make: Callable[[FakeIssuer], str]
    ) -> None:
        assert_refused(call(mode, "/jwt/awhoami", f"Bearer {make(jwtguard_settings)}"), code)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(
        ("authorization", "code", "detail"),
        [
            ("Bearer the-one-where-monica-gets-a-new-roommate", "malformed_token", NOT_A_JWT),
            ("Bearer " + "a" * 9000 + ".b.c", "token_too_large", NOT_A_JWT),
            ("Bearer a b", "authorization_header_invalid", NOT_BEARER),
            ("Bearer", "authorization_header_invalid", NOT_BEARER),
        ],
    )
    def test_what_is_not_a_token_is_refused_without_any_fetch(
        self, jwtguard_settings: FakeIssuer, mode: str, authorization: str, code: str, detail: str
    ) -> None:
        assert_refused(call(mode, "/jwt/whoami", authorization), code, detail)
        assert jwtguard_settings.requests.total() == 0

    @pytest.mark.parametrize("mode", MODES)
    def test_kids_missing_or_unknown(self, jwtguard_settings: FakeIssuer, mode: str) -> None:
        no_kid = jwtguard_settings.mint(headers={"kid": None})
        unknown = jwtguard_settings.mint(headers={"kid": "not-a-key-of-ours"})
        assert_refused(call(mode, "/jwt/whoami", f"Bearer {no_kid}"), "missing_kid", "JWT does not have a valid Key ID")
        assert_refused(
            call(mode, "/jwt/whoami", f"Bearer {unknown}"), "unknown_kid", "JWT does not have a valid Key ID"
        )

    @pytest.mark.parametrize("mode", MODES)
    def test_the_view_never_runs(self, jwtguard_settings: FakeIssuer, mode: str) -> None:
        response = call(mode, "/jwt/whoami", f"Bearer {jwtguard_settings.mint(expires_in=-3600)}")
        assert "view" not in response.json()

    @pytest.mark.unexpected_error
    @pytest.mark.parametrize("mode", MODES)
    def test_an_unexpected_error_is_a_401_not_a_500(
        self, jwtguard_settings: FakeIssuer, mode: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def explode(self: Any, *args: Any) -> Any:
            raise ZeroDivisionError("a bug")

        monkeypatch.setattr(TokenValidator, "verify", explode)
        assert_refused(call(mode, "/jwt/whoami", f"Bearer {jwtguard_settings.mint()}"), "invalid_token")

    def test_refusals_are_signalled(self, jwtguard_settings: FakeIssuer) -> None:
        seen: list[str] = []

        def receiver(sender: Any, code: str, **kwargs: Any) -> None:
            seen.append(code)

        signals.token_rejected.connect(receiver)
        try:
            call("asgi", "/jwt/whoami", f"Bearer {jwtguard_settings.mint(expires_in=-3600)}")
            call("wsgi", "/jwt/whoami", f"Bearer {jwtguard_settings.mint(aud='x')}")
        finally:
            signals.token_rejected.disconnect(receiver)
        assert seen == ["token_expired", "invalid_audience"]


class TestKeySetUnavailable:
    @pytest.mark.parametrize("mode", MODES)
    def test_503_with_retry_after(self, issuer: FakeIssuer, configure: Any, mode: str) -> None:
        configure(issuer)
        token = issuer.mint()
        issuer.stop()
        response = call(mode, "/jwt/awhoami", f"Bearer {token}")
        assert response.status_code == 503
        assert response.json() == {"detail": KEYS_UNAVAILABLE, "code": "jwks_unavailable"}
        assert int(response.headers["Retry-After"]) >= 1
        assert "WWW-Authenticate" not in response.headers


class TestAsyncMode:
    def test_capabilities(self) -> None:
        def sync_view(request: HttpRequest) -> HttpResponse:
            return HttpResponse()

        async def async_view(request: HttpRequest) -> HttpResponse:
            return HttpResponse()

        assert JWTAuthenticationMiddleware.sync_capable
        assert JWTAuthenticationMiddleware.async_capable
        assert not iscoroutinefunction(JWTAuthenticationMiddleware(sync_view))
        assert iscoroutinefunction(JWTAuthenticationMiddleware(async_view))

    def test_a_fetch_runs_off_the_event_loop_and_off_the_orm_thread(self, jwtguard_settings: FakeIssuer) -> None:
        where: list[tuple[bool, bool]] = []

        def receiver(**kwargs: Any) -> None:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            where.append((on_loop, threading.current_thread() is threading.main_thread()))

        signals.jwks_fetched.connect(receiver)
        try:
            assert call("asgi", "/jwt/awhoami", f"Bearer {jwtguard_settings.mint()}").status_code == 200
        finally:
            signals.jwks_fetched.disconnect(receiver)
        # async_to_sync runs thread-sensitive work on this (main) thread; the fetch had a thread of its own.
        assert where == [(False, False)]

    def test_steady_state_asks_no_thread_for_the_key(
        self, jwtguard_settings: FakeIssuer, counted: dict[str, int]
    ) -> None:
        for n in range(3):  # three tokens: the verified-token cache would answer a repeated one
            assert call("asgi", "/jwt/awhoami", f"Bearer {jwtguard_settings.mint(jti=str(n))}").status_code == 200
        assert counted == {"verify": 3, "get_key": 1}  # the first request only; then peek() answers

    def test_the_sync_stack_asks_the_provider_every_time(
        self, jwtguard_settings: FakeIssuer, counted: dict[str, int]
    ) -> None:
        for n in range(3):
            assert call("wsgi", "/jwt/whoami", f"Bearer {jwtguard_settings.mint(jti=str(n))}").status_code == 200
        assert counted == {"verify": 3, "get_key": 3}


class TestDRFReusesTheMiddlewareResult:
    def test_the_signature_is_verified_once(self, jwtguard_settings: FakeIssuer, counted: dict[str, int]) -> None:
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {jwtguard_settings.mint()}")
        assert response.status_code == 200
        assert response.json() == {"user": "user-1"}
        assert counted["verify"] == 1

    def test_without_the_middleware_drf_verifies_it_itself(
        self, jwtguard_settings: FakeIssuer, counted: dict[str, int], settings: Any
    ) -> None:
        settings.MIDDLEWARE = []
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {jwtguard_settings.mint()}")
        assert response.status_code == 200
        assert counted["verify"] == 1

    def test_the_middleware_refuses_before_drf_runs(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(expires_in=-3600)
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_refused(response, "token_expired")


@pytest.fixture
def two_issuers(settings: Any) -> Iterator[tuple[FakeIssuer, FakeIssuer]]:
    """An RS256 issuer and an ES256 issuer in one JWTGUARD["ISSUERS"] setting."""
    with FakeIssuer("RS256") as rsa_issuer, FakeIssuer("ES256") as ec_issuer:
        settings.JWTGUARD = {"ISSUERS": [rsa_issuer.settings(), ec_issuer.settings()]}
        yield rsa_issuer, ec_issuer


class TestSeveralIssuers:
    @pytest.mark.parametrize("mode", MODES)
    def test_each_issuers_tokens_are_accepted_with_its_own_keys(
        self, two_issuers: tuple[FakeIssuer, FakeIssuer], mode: str
    ) -> None:
        rsa_issuer, ec_issuer = two_issuers
        assert rsa_issuer.signing_key.algorithm == "RS256"
        assert ec_issuer.signing_key.algorithm == "ES256"
        for issuer in (rsa_issuer, ec_issuer):
            response = call(mode, "/jwt/awhoami", f"Bearer {issuer.mint(sub=issuer.issuer)}")
            assert response.status_code == 200
            assert response.json()["claims"]["iss"] == issuer.issuer
        assert (rsa_issuer.jwks_requests, ec_issuer.jwks_requests) == (1, 1)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("iss", ["https://attacker.example/", None, "", 7])
    def test_an_unconfigured_issuer_causes_no_request_at_all(
        self, two_issuers: tuple[FakeIssuer, FakeIssuer], mode: str, iss: object
    ) -> None:
        rsa_issuer, ec_issuer = two_issuers
        with FakeIssuer("RS256") as attacker:
            token = attacker.mint(iss=iss, headers={"jku": attacker.jwks_url})
            assert_refused(call(mode, "/jwt/whoami", f"Bearer {token}"), "invalid_issuer")
            assert (rsa_issuer.requests.total(), ec_issuer.requests.total(), attacker.requests.total()) == (0, 0, 0)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("header", ["jku", "x5u"])
    def test_key_urls_in_the_header_are_never_followed(
        self, two_issuers: tuple[FakeIssuer, FakeIssuer], mode: str, header: str
    ) -> None:
        rsa_issuer, ec_issuer = two_issuers
        with FakeIssuer("RS256") as attacker:
            # A configured iss, the attacker's key and kid, and a pointer to where that key is published.
            token = attacker.mint(iss=rsa_issuer.issuer, headers={header: attacker.jwks_url})
            assert_refused(
                call(mode, "/jwt/whoami", f"Bearer {token}"), "unknown_kid", "JWT does not have a valid Key ID"
            )
            assert attacker.requests.total() == 0
            assert ec_issuer.requests.total() == 0
            # Even pointing at the other configured issuer's key set does not make jwtguard go there.
            ec_token = ec_issuer.mint(iss=rsa_issuer.issuer, headers={"jku": ec_issuer.jwks_url})
            assert_refused(call(mode, "/jwt/whoami", f"Bearer {ec_token}"), "algorithm_not_allowed")
            assert ec_issuer.requests.total() == 0

    @pytest.mark.parametrize("mode", MODES)
    def test_an_embedded_jwk_is_never_trusted(self, two_issuers: tuple[FakeIssuer, FakeIssuer], mode: str) -> None:
        rsa_issuer, _ = two_issuers
        forged_key = generate_key("RS256", kid=rsa_issuer.signing_key.kid)
        token = rsa_issuer.mint(key=forged_key, headers={"jwk": forged_key.public_jwk()})
        assert_refused(call(mode, "/jwt/whoami", f"Bearer {token}"), "invalid_signature")


class TestTokenTypeAndRequiredClaims:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
    def test_at_jwt_is_accepted(self, issuer: FakeIssuer, configure: Any, mode: str, typ: str) -> None:
        configure(issuer, TOKEN_TYPE="at+jwt")
        response = call(mode, "/jwt/whoami", f"Bearer {issuer.mint(headers={'typ': typ})}")
        assert response.status_code == 200

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("typ", ["JWT", "application/jwt", None])
    def test_other_types_are_refused(self, issuer: FakeIssuer, configure: Any, mode: str, typ: str | None) -> None:
        configure(issuer, TOKEN_TYPE="at+jwt")
        response = call(mode, "/jwt/whoami", f"Bearer {issuer.mint(headers={'typ': typ})}")
        assert_refused(response, "invalid_token_type")
        assert issuer.requests.total() == 0  # decided from the header, before any key is needed

    def test_drf_applies_the_type_check_too(self, issuer: FakeIssuer, configure: Any, settings: Any) -> None:
        settings.MIDDLEWARE = []
        configure(issuer, TOKEN_TYPE="at+jwt")
        client = APIClient()
        id_token = issuer.mint(headers={"typ": "JWT"})
        access_token = issuer.mint(headers={"typ": "at+jwt"})
        refused = client.get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {id_token}")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == invalid_token_challenge("Bearer token is invalid")
        assert client.get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code == 200

    @pytest.mark.parametrize("mode", MODES)
    def test_required_claims(self, issuer: FakeIssuer, configure: Any, mode: str) -> None:
        configure(issuer, REQUIRED_CLAIMS=["client_id", "jti"])
        without = issuer.mint(client_id="app")
        with_all = issuer.mint(client_id="app", jti="j-1")
        assert_refused(call(mode, "/jwt/whoami", f"Bearer {without}"), "missing_claim")
        assert call(mode, "/jwt/whoami", f"Bearer {with_all}").status_code == 200


class TestAsyncModeWithTheTokenCache:
    def test_a_repeated_token_is_answered_from_the_cache_on_the_loop(
        self, issuer: FakeIssuer, configure: Any, counted: dict[str, int]
    ) -> None:
        configure(issuer, TOKEN_CACHE_BYTES=1024 * 1024)
        raw = issuer.mint()
        for _ in range(4):
            assert call("asgi", "/jwt/awhoami", f"Bearer {raw}").status_code == 200
        cache = get_validator().token_cache
        assert cache is not None
        assert (cache.hits, len(cache)) == (2, 1)
        assert counted == {"verify": 2, "get_key": 1}  # stored the second time it is verified
