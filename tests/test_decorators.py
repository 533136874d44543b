"""jwt_required: function and class-based views, sync and async, with and without the middleware."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import django
import pytest

from jwtguard import signals
from jwtguard.decorators import jwt_required
from jwtguard.edge import INSUFFICIENT_SCOPE
from jwtguard.exceptions import KEYS_UNAVAILABLE, NOT_PRESENT
from jwtguard.testing import FakeIssuer
from jwtguard.validation import TokenValidator
from tests.support import protected_views
from tests.support.protected_views import STACK, assert_refused, call, scope_challenge

MODES = ["wsgi", "asgi"]
# method_decorator wraps async methods only from Django 5.0 on; on 4.2 Django itself cannot serve that view.
ASYNC_METHOD = pytest.param(
    "/jwt/cbv-async-method",
    marks=pytest.mark.skipif(django.VERSION < (5, 0), reason="method_decorator on async methods needs Django 5.0"),
)
SCOPED = ["/jwt/required-async", "/jwt/cbv-sync", "/jwt/cbv-async", ASYNC_METHOD, "/jwt/cbv-decorated"]
ALL_VIEWS = ["/jwt/required-sync", "/jwt/required-two-scopes", *SCOPED]


@pytest.fixture(params=["with-middleware", "alone"])
def stack(request: pytest.FixtureRequest, settings: Any) -> str:
    """Every test runs with the middleware in front, and with the decorator validating the token itself."""
    settings.MIDDLEWARE = STACK if request.param == "with-middleware" else []
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    return str(request.param)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("url", ALL_VIEWS)
class TestEveryView:
    def test_no_token_is_a_401_with_a_bare_challenge(
        self, stack: str, jwtguard_settings: FakeIssuer, mode: str, url: str
    ) -> None:
        response = call(mode, url)
        assert response.status_code == 401
        assert response.json() == {"detail": NOT_PRESENT, "code": "authorization_header_missing"}
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_another_scheme_is_a_401_too(self, stack: str, jwtguard_settings: FakeIssuer, mode: str, url: str) -> None:
        response = call(mode, url, "Basic dXNlcjpwYXNz")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_an_invalid_token_is_a_401_invalid_token(
        self, stack: str, jwtguard_settings: FakeIssuer, mode: str, url: str
    ) -> None:
        assert_refused(call(mode, url, f"Bearer {jwtguard_settings.mint(expires_in=-3600)}"), "token_expired")

    def test_a_token_with_the_scopes_gets_in(
        self, stack: str, jwtguard_settings: FakeIssuer, mode: str, url: str
    ) -> None:
        token = jwtguard_settings.mint(sub="alice", scope="openid read:friends write:friends")
        response = call(mode, url, f"Bearer {token}")
        assert response.status_code == 200
        assert response.json()["user"] == "alice"
        assert response.json()["user_type"] == "TokenUser"
        assert response.json()["claims"]["sub"] == "alice"
        assert "Authorization" in response.headers["Vary"]


class TestScopes:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("url", SCOPED)
    def test_a_token_without_the_scope_is_a_403_insufficient_scope(
        self, stack: str, jwtguard_settings: FakeIssuer, mode: str, url: str
    ) -> None:
        response = call(mode, url, f"Bearer {jwtguard_settings.mint(scope='openid profile')}")
        assert response.status_code == 403
        assert response.json() == {"detail": INSUFFICIENT_SCOPE, "code": "insufficient_scope"}
        assert response.headers["WWW-Authenticate"] == scope_challenge("read:friends")

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("scope", ["openid\u00a0read:friends", "openid\tread:friends", "openid\x0bread:friends"])
    def test_only_a_space_separates_scopes(
        self, stack: str, jwtguard_settings: FakeIssuer, mode: str, scope: str
    ) -> None:
        # RFC 6749 3.3: any other whitespace joins the two names into one literal scope, which grants neither.
        for url in ("/jwt/required-async", "/jwt/cbv-sync"):
            response = call(mode, url, f"Bearer {jwtguard_settings.mint(scope=scope)}")
            assert response.status_code == 403
            assert response.headers["WWW-Authenticate"] == scope_challenge("read:friends")
        response = call(mode, "/jwt/cbv-sync", f"Bearer {jwtguard_settings.mint(scope=scope + ' read:friends')}")
        assert response.status_code == 200

    @pytest.mark.parametrize("mode", MODES)
    def test_every_scope_is_required_and_named(self, stack: str, jwtguard_settings: FakeIssuer, mode: str) -> None:
        response = call(mode, "/jwt/required-two-scopes", f"Bearer {jwtguard_settings.mint(scope='read:friends')}")
        assert response.status_code == 403
        assert response.headers["WWW-Authenticate"] == scope_challenge("read:friends write:friends")

    @pytest.mark.parametrize(
        "claims",
        [{"scp": ["read:friends", "write:friends"]}, {"scp": "read:friends write:friends"}],
        ids=["scp-list", "scp-string"],
    )
    def test_scp_as_okta_and_entra_send_it(
        self, stack: str, jwtguard_settings: FakeIssuer, claims: dict[str, Any]
    ) -> None:
        response = call("asgi", "/jwt/required-two-scopes", f"Bearer {jwtguard_settings.mint(**claims)}")
        assert response.status_code == 200

    def test_auth0_permissions_count_only_when_configured(self, stack: str, issuer: FakeIssuer, configure: Any) -> None:
        token = issuer.mint(permissions=["read:friends"])
        configure(issuer)
        assert call("wsgi", "/jwt/cbv-sync", f"Bearer {token}").status_code == 403
        configure(issuer, SCOPE_CLAIMS=["scope", "scp", "permissions"])
        assert call("wsgi", "/jwt/cbv-sync", f"Bearer {token}").status_code == 200

    @pytest.mark.parametrize("scopes", [["read friends"], [""], "", [7]])
    def test_scopes_are_checked_when_decorating(self, scopes: Any) -> None:
        if scopes == "":
            assert jwt_required(scopes=scopes)(protected_views.whoami) is not protected_views.whoami
            return
        with pytest.raises(TypeError, match="a scope is a non-empty string without spaces"):
            jwt_required(scopes=scopes)


class TestOneValidation:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("url", ["/jwt/required-sync", "/jwt/cbv-async"])
    def test_the_signature_is_verified_once(
        self, stack: str, jwtguard_settings: FakeIssuer, mode: str, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []
        verify = TokenValidator.verify

        def counting(self: TokenValidator, *args: Any) -> Any:
            calls.append("verify")
            return verify(self, *args)

        monkeypatch.setattr(TokenValidator, "verify", counting)
        token = jwtguard_settings.mint(scope="read:friends")
        assert call(mode, url, f"Bearer {token}").status_code == 200
        assert calls == ["verify"]

    @pytest.mark.parametrize("url", ["/jwt/required-async", "/jwt/cbv-async", ASYNC_METHOD])
    def test_async_views_fetch_off_the_event_loop(self, settings: Any, jwtguard_settings: FakeIssuer, url: str) -> None:
        settings.MIDDLEWARE = []  # the decorator validates, on a cold key set
        on_loop: list[bool] = []

        def receiver(**kwargs: Any) -> None:
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(threading.current_thread() is threading.main_thread())

        signals.jwks_fetched.connect(receiver)
        try:
            token = jwtguard_settings.mint(scope="read:friends")
            assert call("asgi", url, f"Bearer {token}").status_code == 200
        finally:
            signals.jwks_fetched.disconnect(receiver)
        assert on_loop == [False]


class TestAnswers:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("url", ["/jwt/required-sync", "/jwt/required-async", "/jwt/cbv-async"])
    def test_key_set_unavailable_is_a_503(
        self, stack: str, issuer: FakeIssuer, configure: Any, mode: str, url: str
    ) -> None:
        configure(issuer)
        token = issuer.mint(scope="read:friends")
        issuer.stop()
        response = call(mode, url, f"Bearer {token}")
        assert response.status_code == 503
        assert response.json() == {"detail": KEYS_UNAVAILABLE, "code": "jwks_unavailable"}
        assert int(response.headers["Retry-After"]) >= 1

    def test_views_are_csrf_exempt_because_a_bearer_token_is_required(
        self, settings: Any, jwtguard_settings: FakeIssuer
    ) -> None:
        settings.MIDDLEWARE = STACK
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        token = jwtguard_settings.mint(scope="read:friends")
        posted = call("wsgi", "/jwt/cbv-sync", f"Bearer {token}", method="post", enforce_csrf_checks=True)
        assert posted.status_code == 200
        assert posted.json() == {"posted": True}
        anonymous = call("wsgi", "/jwt/cbv-sync", method="post", enforce_csrf_checks=True)
        assert anonymous.status_code == 401

    def test_the_view_keeps_its_name_and_doc(self) -> None:
        def my_view(request: Any) -> Any:
            """Docs."""

        decorated: Any = jwt_required(scopes="a")(my_view)
        assert (decorated.__name__, decorated.__doc__) == ("my_view", "Docs.")
        assert decorated.csrf_exempt is True
        assert decorated.__wrapped__ is my_view
