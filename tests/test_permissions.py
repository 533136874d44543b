"""HasScope: DRF views that require scopes; 403 insufficient_scope with its RFC 6750 challenge; & and |."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from jwtguard.edge import INSUFFICIENT_SCOPE
from jwtguard.exceptions import NOT_PRESENT
from jwtguard.permissions import HasScope
from jwtguard.testing import FakeIssuer
from tests.support.protected_views import STACK, ScopedView, invalid_token_challenge, scope_challenge


@pytest.fixture(params=["drf-only", "with-middleware"])
def stack(request: pytest.FixtureRequest, settings: Any) -> str:
    settings.MIDDLEWARE = STACK if request.param == "with-middleware" else []
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    return str(request.param)


def get(url: str, token: str | None = None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return APIClient().get(url, headers=headers)


def assert_insufficient_scope(response: Any, scope: str) -> None:
    assert response.status_code == 403
    assert response.json() == {"detail": INSUFFICIENT_SCOPE}
    assert response.headers["WWW-Authenticate"] == scope_challenge(scope)


class TestRequiredScopesOnTheView:
    @pytest.mark.parametrize(
        "claims",
        [
            {"scope": "openid read:friends"},
            {"scp": ["read:friends"]},
            {"scp": "profile read:friends"},
        ],
        ids=["scope", "scp-list", "scp-string"],
    )
    def test_a_granted_scope_gets_in(self, stack: str, jwtguard_settings: FakeIssuer, claims: dict[str, Any]) -> None:
        response = get("/jwt/drf/scoped", jwtguard_settings.mint(sub="alice", **claims))
        assert response.status_code == 200
        assert response.json() == {"user": "alice"}
        assert "WWW-Authenticate" not in response.headers

    @pytest.mark.parametrize(
        "claims",
        [
            {},
            {"scope": "openid"},
            {"scope": "read:friend"},
            {"scp": ["read"]},
            {"permissions": ["read:friends"]},
            # RFC 6749 3.3: only SP delimits scopes; "openid<NBSP>read:friends" is one scope of that name.
            {"scope": "openid\u00a0read:friends"},
            {"scope": "openid\tread:friends"},
            {"scp": "profile\nread:friends"},
        ],
        ids=["none", "other", "prefix", "scp-other", "permissions-not-configured", "nbsp", "tab", "scp-newline"],
    )
    def test_a_missing_scope_is_a_403_with_the_challenge(
        self, stack: str, jwtguard_settings: FakeIssuer, claims: dict[str, Any]
    ) -> None:
        assert_insufficient_scope(get("/jwt/drf/scoped", jwtguard_settings.mint(**claims)), "read:friends")

    def test_auth0_permissions_when_configured(self, stack: str, issuer: FakeIssuer, configure: Any) -> None:
        configure(issuer, SCOPE_CLAIMS=["scope", "permissions"])
        assert get("/jwt/drf/scoped", issuer.mint(permissions=["read:friends"])).status_code == 200
        assert_insufficient_scope(get("/jwt/drf/scoped", issuer.mint(scp=["read:friends"])), "read:friends")

    def test_the_denial_carries_the_code_and_the_challenge(self, jwtguard_settings: FakeIssuer, settings: Any) -> None:
        settings.MIDDLEWARE = []
        token = jwtguard_settings.mint(scope="openid")
        view = ScopedView()
        request = view.initialize_request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
        assert HasScope().has_permission(request, view) is False
        with pytest.raises(PermissionDenied) as caught:
            view.check_permissions(request)
        assert caught.value.get_codes() == "insufficient_scope"
        assert caught.value.auth_header == scope_challenge("read:friends")  # type: ignore[attr-defined]


class TestWithoutAValidToken:
    def test_no_token_is_a_401_not_a_403(self, stack: str, jwtguard_settings: FakeIssuer) -> None:
        response = get("/jwt/drf/scoped")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert response.json() == {"detail": "Authentication credentials were not provided."}

    def test_an_invalid_token_is_a_401_invalid_token(self, stack: str, jwtguard_settings: FakeIssuer) -> None:
        response = get("/jwt/drf/scoped", jwtguard_settings.mint(scope="read:friends", expires_in=-3600))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == invalid_token_challenge("Bearer token is invalid")

    def test_strict_header_mode_names_the_missing_header(self, issuer: FakeIssuer, configure: Any) -> None:
        configure(issuer, STRICT_AUTH_HEADER=True)
        response = get("/jwt/drf/scoped")
        assert response.status_code == 401
        assert response.json() == {"detail": NOT_PRESENT}


class TestComposition:
    def test_or_lets_either_scope_in_without_a_stray_challenge(self, stack: str, jwtguard_settings: FakeIssuer) -> None:
        for scope in ("admin", "read:friends", "admin read:friends"):
            response = get("/jwt/drf/either", jwtguard_settings.mint(scope=scope))
            assert response.status_code == 200, scope
            assert "WWW-Authenticate" not in response.headers

    def test_or_denies_when_neither_and_names_the_first(self, stack: str, jwtguard_settings: FakeIssuer) -> None:
        assert_insufficient_scope(get("/jwt/drf/either", jwtguard_settings.mint(scope="openid")), "admin")

    def test_and(self, stack: str, jwtguard_settings: FakeIssuer) -> None:
        both = jwtguard_settings.mint(scope="read:friends write:friends")
        one = jwtguard_settings.mint(scope="read:friends")
        assert get("/jwt/drf/and", both).status_code == 200
        assert_insufficient_scope(get("/jwt/drf/and", one), "read:friends write:friends")
        assert get("/jwt/drf/and").status_code == 401

    def test_another_permissions_denial_gets_no_scope_challenge(
        self, jwtguard_settings: FakeIssuer, settings: Any
    ) -> None:
        settings.MIDDLEWARE = []

        class AdminsWithScope(APIView):
            permission_classes = [HasScope.of("read:friends"), IsAdminUser]

            def get(self, request: Any) -> Response:
                return Response({})

        token = jwtguard_settings.mint(scope="read:friends")
        request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
        response = AdminsWithScope.as_view()(request)
        assert response.status_code == 403
        assert "WWW-Authenticate" not in response.headers

    def test_of_takes_strings_and_lists(self) -> None:
        assert HasScope.of("a b", "c").required_scopes == ("a", "b", "c")
        assert issubclass(HasScope.of("a"), HasScope)
        with pytest.raises(TypeError, match="at least one scope"):
            HasScope.of("")
        with pytest.raises(TypeError, match="without spaces"):
            HasScope.of(["read", ""])  # type: ignore[arg-type]


def test_a_view_without_required_scopes_is_a_configuration_error(jwtguard_settings: FakeIssuer, settings: Any) -> None:
    settings.MIDDLEWARE = []
    client = APIClient(raise_request_exception=True)
    with pytest.raises(ImproperlyConfigured, match="declares no required_scopes"):
        client.get("/jwt/drf/undeclared", HTTP_AUTHORIZATION=f"Bearer {jwtguard_settings.mint()}")
