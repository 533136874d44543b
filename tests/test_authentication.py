"""The DRF class: the article's six scenarios with its own Auth0 vectors, and the contract around them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient, APIRequestFactory

from jwtguard.authentication import JWTAccessTokenAuthentication, SigningKeysUnavailable
from jwtguard.testing import FakeIssuer
from jwtguard.user import TokenUser

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "auth0_vectors.json"
VECTORS_COPY = Path(__file__).with_name("data") / "auth0_vectors.json"
AUTH0_ISSUER = "https://antunes.us.auth0.com/"
AUTH0_AUDIENCE = "user-management/apiview-drf-api/api/v1"
INSIDE_LIFETIME = 1646602700  # between the valid token's iat and exp


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    path = SEED if SEED.exists() else VECTORS_COPY
    return json.loads(path.read_text())


@pytest.fixture
def auth0(vectors: dict[str, Any], configure: Callable[..., None]) -> Iterator[FakeIssuer]:
    """The article's real Auth0 key set, served over HTTP from 127.0.0.1, with time frozen in the token's life."""
    with FakeIssuer(issuer=AUTH0_ISSUER, audience=AUTH0_AUDIENCE) as server:
        server.jwks_document = vectors["jwks"]
        configure(server, ALGORITHMS=["RS256"])
        with time_machine.travel(INSIDE_LIFETIME, tick=False):
            yield server


def request_with(header: str | None) -> Any:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    return APIRequestFactory().get("/your-endpoint/v1/friends", **extra)


def refusal(header: str | None) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as caught:
        JWTAccessTokenAuthentication().authenticate(request_with(header))
    assert caught.value.status_code == 401
    return caught.value


class TestArticleScenarios:
    def test_no_authorization_header_is_refused_when_strict(self, auth0: FakeIssuer, settings: Any) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "STRICT_AUTH_HEADER": True}
        assert refusal(None).detail == "Authorization header is not present"

    def test_no_authorization_header_lets_others_decide_by_default(self, auth0: FakeIssuer) -> None:
        assert JWTAccessTokenAuthentication().authenticate(request_with(None)) is None

    def test_foreign_scheme_is_refused_when_strict(self, auth0: FakeIssuer, settings: Any) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "STRICT_AUTH_HEADER": True}
        assert refusal("Salt addicted").detail == "Authorization header must start with Bearer followed by its token"

    def test_foreign_scheme_lets_others_decide_by_default(self, auth0: FakeIssuer) -> None:
        assert JWTAccessTokenAuthentication().authenticate(request_with("Salt addicted")) is None

    def test_bearer_without_a_jwt(self, auth0: FakeIssuer) -> None:
        failure = refusal("Bearer the-one-where-monica-gets-a-new-roommate")
        assert failure.detail == "Bearer does not contain a valid JWT"
        assert failure.get_codes() == "malformed_token"
        assert auth0.jwks_requests == 0

    def test_token_whose_kid_is_not_in_the_key_set(self, auth0: FakeIssuer, vectors: dict[str, Any]) -> None:
        failure = refusal(f"Bearer {vectors['tokens']['token_with_invalid_kid']}")
        assert failure.detail == "JWT does not have a valid Key ID"
        assert failure.get_codes() == "unknown_kid"

    def test_known_kid_with_a_bad_signature(self, auth0: FakeIssuer, vectors: dict[str, Any]) -> None:
        failure = refusal(f"Bearer {vectors['tokens']['token_with_valid_kid']}")
        assert failure.detail == "Bearer token is invalid"
        assert failure.get_codes() == "invalid_signature"

    def test_valid_token_returns_the_token_user_and_claims(self, auth0: FakeIssuer, vectors: dict[str, Any]) -> None:
        expected = {
            "iss": "https://antunes.us.auth0.com/",
            "sub": "facebook|10218925956491642",
            "aud": ["user-management/apiview-drf-api/api/v1", "https://antunes.us.auth0.com/userinfo"],
            "iat": 1646602685,
            "exp": 1646689085,
            "azp": "P4cBB8a8n0RrlNEGW79dJnhA4ZrMVyKj",
            "scope": "openid profile email",
        }
        result = JWTAccessTokenAuthentication().authenticate(request_with(f"Bearer {vectors['tokens']['valid_token']}"))
        assert result == (TokenUser(expected), expected)
        assert auth0.jwks_requests == 1

    def test_the_valid_token_is_refused_once_expired(self, auth0: FakeIssuer, vectors: dict[str, Any]) -> None:
        with time_machine.travel(1646689085 + 61, tick=False):
            failure = refusal(f"Bearer {vectors['tokens']['valid_token']}")
        assert failure.get_codes() == "token_expired"

    def test_the_example_view_answers_with_the_subject(self, auth0: FakeIssuer, vectors: dict[str, Any]) -> None:
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {vectors['tokens']['valid_token']}")
        assert response.status_code == 200
        assert response.json() == {"user": "facebook|10218925956491642"}


class TestHttpAnswers:
    def test_a_refused_token_is_a_401_with_an_rfc6750_challenge(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(expires_in=-3600)
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401
        assert response.json() == {"detail": "Bearer token is invalid"}
        assert response.headers["WWW-Authenticate"] == (
            'Bearer realm="api", error="invalid_token", error_description="Bearer token is invalid"'
        )

    def test_no_credentials_is_a_401_with_a_bare_challenge(self, jwtguard_settings: FakeIssuer) -> None:
        response = APIClient().get("/api/v1/friends")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_key_set_unavailable_is_a_503_with_retry_after(self, issuer: FakeIssuer, configure: Any) -> None:
        configure(issuer)
        token = issuer.mint()
        issuer.stop()
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 503
        assert response.json() == {"detail": "signing keys unavailable — the token is not at fault"}
        assert int(response.headers["Retry-After"]) >= 1

    def test_key_set_unavailable_raises_the_503_exception(self, issuer: FakeIssuer, configure: Any) -> None:
        configure(issuer)
        token = issuer.mint()
        issuer.stop()
        with pytest.raises(SigningKeysUnavailable) as caught:
            JWTAccessTokenAuthentication().authenticate(request_with(f"Bearer {token}"))
        assert caught.value.status_code == 503

    @pytest.mark.parametrize(
        "header",
        ["Bearer", "Bearer ", "Bearer a b", "bearer  ", "Bearer \t"],
    )
    def test_bearer_without_exactly_one_token_is_refused(self, jwtguard_settings: FakeIssuer, header: str) -> None:
        assert refusal(header).detail == "Authorization header must start with Bearer followed by its token"

    def test_the_scheme_is_case_insensitive(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint()
        user, claims = JWTAccessTokenAuthentication().authenticate(request_with(f"bEaReR {token}"))
        assert user.id == "user-1"

    @pytest.mark.unexpected_error
    def test_an_unexpected_error_is_a_401_not_a_500(
        self, jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def explode(self: Any, *args: Any) -> Any:
            raise ZeroDivisionError("a bug")

        monkeypatch.setattr("jwtguard.validation.TokenValidator.verify", explode)
        failure = refusal(f"Bearer {jwtguard_settings.mint()}")
        assert (failure.detail, failure.get_codes()) == ("Bearer token is invalid", "invalid_token")

    def test_authenticators_built_per_request_share_one_fetch(self, jwtguard_settings: FakeIssuer) -> None:
        client = APIClient()
        for _ in range(20):
            token = jwtguard_settings.mint()
            assert client.get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
        assert jwtguard_settings.jwks_requests == 1


def test_authentication_module_imports_before_django_setup() -> None:
    import subprocess
    import sys

    code = "import jwtguard.authentication, jwtguard.validation, jwtguard.jwks; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_any_key_set_error_is_a_503_never_the_tokens_fault(
    jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jwtguard.exceptions import FetchError

    def fail(self: Any, kid: str, alg: str) -> Any:
        raise FetchError("the issuer answered nonsense")

    monkeypatch.setattr("jwtguard.jwks.KeyProvider.get_key", fail)
    response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {jwtguard_settings.mint()}")
    assert response.status_code == 503
    assert response.json() == {"detail": "signing keys unavailable — the token is not at fault"}
    assert response.headers["Retry-After"] == "5"
