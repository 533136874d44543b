"""USER_RESOLVER: database users for verified tokens, through the middleware (sync and async) and DRF."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from jwtguard.resolvers import UserResolver, get_user_resolver
from jwtguard.testing import FakeIssuer
from jwtguard.validation import AccessToken
from tests.support.protected_views import STACK, assert_refused, call

pytestmark = pytest.mark.django_db

MODES = ["wsgi", "asgi"]
DEFAULT = "jwtguard.resolvers.get_or_create_user"

by_email = UserResolver(claim="email", field="email", create=False)
by_email_as_is = UserResolver(claim="email", field="email", create=False, qualify=False)
calls: list[str] = []


def counting(token: AccessToken) -> Any:
    calls.append(token.claims["sub"])
    return UserResolver()(token)


def returns_none(token: AccessToken) -> Any:
    return None


class WithEmail(UserResolver):
    def defaults(self, token: AccessToken, model: Any) -> dict[str, Any]:
        return {"email": token.claims.get("email", "")}


with_email = WithEmail()
not_callable = 42


@pytest.fixture(autouse=True)
def _stack(settings: Any) -> None:
    settings.MIDDLEWARE = STACK
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    calls.clear()


@pytest.fixture
def resolve_with(issuer: FakeIssuer, configure: Any) -> Any:
    def apply(path: str) -> FakeIssuer:
        configure(issuer, USER_RESOLVER=path)
        return issuer

    return apply


class TestGetOrCreateUser:
    @pytest.mark.parametrize(("mode", "url"), [("wsgi", "/jwt/whoami"), ("asgi", "/jwt/awhoami")])
    def test_the_first_token_creates_the_user_and_later_ones_find_it(
        self, resolve_with: Any, mode: str, url: str
    ) -> None:
        issuer = resolve_with(DEFAULT)
        users = get_user_model().objects
        for _ in range(2):
            response = call(mode, url, f"Bearer {issuer.mint(sub='auth0|42')}")
            assert response.status_code == 200
            assert (response.json()["user"], response.json()["user_type"]) == ("auth0|42", "User")
            assert response.json()["claims"]["sub"] == "auth0|42"
        assert users.count() == 1
        user = users.get()
        assert user.get_username() == "auth0|42"
        assert not user.has_usable_password()  # the token is the only way in

    def test_async_views_get_the_same_user_from_auser(self, resolve_with: Any) -> None:
        issuer = resolve_with(DEFAULT)
        response = call("asgi", "/jwt/awhoami", f"Bearer {issuer.mint(sub='bob')}")
        assert response.json()["auser_is_user"] is True

    def test_drf_uses_the_resolver_too(self, resolve_with: Any, settings: Any) -> None:
        settings.MIDDLEWARE = []
        issuer = resolve_with(DEFAULT)
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {issuer.mint(sub='carol')}")
        assert response.status_code == 200
        assert response.json() == {"user": get_user_model().objects.get(username="carol").pk}

    def test_drf_reuses_the_middlewares_user(self, resolve_with: Any) -> None:
        issuer = resolve_with("tests.test_resolvers.counting")
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {issuer.mint(sub='dave')}")
        assert response.status_code == 200
        assert calls == ["dave"]

    @pytest.mark.parametrize("mode", MODES)
    def test_an_inactive_user_is_refused(self, resolve_with: Any, mode: str) -> None:
        issuer = resolve_with(DEFAULT)
        get_user_model().objects.create_user("eve", is_active=False)
        assert_refused(call(mode, "/jwt/whoami", f"Bearer {issuer.mint(sub='eve')}"), "user_inactive")

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(
        ("claims", "code"),
        [({"sub": None}, "missing_claim"), ({"sub": "x" * 151}, "invalid_claim")],
        ids=["no-sub", "sub-longer-than-username"],
    )
    def test_a_sub_that_cannot_name_a_user_is_a_401_not_a_500(
        self, resolve_with: Any, mode: str, claims: dict[str, Any], code: str
    ) -> None:
        issuer = resolve_with(DEFAULT)
        assert_refused(call(mode, "/jwt/whoami", f"Bearer {issuer.mint(**claims)}"), code)
        assert get_user_model().objects.count() == 0

    def test_defaults_fill_in_a_new_user(self, resolve_with: Any) -> None:
        issuer = resolve_with("tests.test_resolvers.with_email")
        call("wsgi", "/jwt/whoami", f"Bearer {issuer.mint(sub='frank', email='frank@example.test')}")
        assert get_user_model().objects.get(username="frank").email == "frank@example.test"


class TestUserIdNamespace:
    """``USER_ID_NAMESPACE`` reaches ``USER_RESOLVER``: the value looked up is the one ``TokenUser.id`` would be."""

    @pytest.mark.parametrize(("mode", "url"), [("wsgi", "/jwt/whoami"), ("asgi", "/jwt/awhoami")])
    def test_get_or_create_user_names_users_in_the_issuers_namespace(
        self, issuer: FakeIssuer, configure: Any, mode: str, url: str
    ) -> None:
        configure(issuer, USER_RESOLVER=DEFAULT, USER_ID_NAMESPACE=True)
        response = call(mode, url, f"Bearer {issuer.mint(sub='auth0|42')}")
        assert response.json()["user"] == f"{issuer.issuer}#auth0|42"
        assert get_user_model().objects.get().get_username() == f"{issuer.issuer}#auth0|42"

    def test_drf_gets_the_same_user(self, issuer: FakeIssuer, configure: Any, settings: Any) -> None:
        settings.MIDDLEWARE = []
        configure(issuer, USER_RESOLVER=DEFAULT, USER_ID_NAMESPACE="idp")
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {issuer.mint(sub='carol')}")
        assert response.json() == {"user": get_user_model().objects.get(username="idp#carol").pk}

    def test_two_issuers_one_sub_are_two_database_users(self, issuer: FakeIssuer, settings: Any) -> None:
        with FakeIssuer("ES256") as other:
            entries = [{k: v for k, v in s.settings().items() if k != "AUDIENCE"} for s in (issuer, other)]
            settings.JWTGUARD = {
                "AUDIENCE": issuer.audience,
                "USER_RESOLVER": DEFAULT,
                "USER_ID_NAMESPACE": True,
                "ISSUERS": entries,
            }
            for server in (issuer, other):
                assert call("wsgi", "/jwt/whoami", f"Bearer {server.mint(sub='alice')}").status_code == 200
        names = sorted(get_user_model().objects.values_list("username", flat=True))
        assert names == sorted([f"{issuer.issuer}#alice", f"{other.issuer}#alice"])

    @pytest.mark.parametrize(
        ("path", "found"), [("tests.test_resolvers.by_email", False), ("tests.test_resolvers.by_email_as_is", True)]
    )
    def test_qualify_false_looks_the_claim_up_as_it_is(
        self, issuer: FakeIssuer, configure: Any, path: str, found: bool
    ) -> None:
        configure(issuer, USER_RESOLVER=path, USER_ID_NAMESPACE=True)
        get_user_model().objects.create_user("grace", email="grace@example.test")
        response = call("wsgi", "/jwt/whoami", f"Bearer {issuer.mint(email='grace@example.test')}")
        if found:
            assert response.json()["user"] == "grace"
        else:
            assert_refused(response, "user_not_found")

    def test_repr_says_when_the_claim_is_not_qualified(self) -> None:
        assert repr(by_email_as_is) == "UserResolver(claim='email', field='email', create=False, qualify=False)"


class TestConfigurableField:
    @pytest.mark.parametrize("mode", MODES)
    def test_an_existing_user_is_found_by_another_claim(self, resolve_with: Any, mode: str) -> None:
        issuer = resolve_with("tests.test_resolvers.by_email")
        get_user_model().objects.create_user("grace", email="grace@example.test")
        response = call(mode, "/jwt/whoami", f"Bearer {issuer.mint(sub='idp|1', email='grace@example.test')}")
        assert response.json()["user"] == "grace"

    @pytest.mark.parametrize("mode", MODES)
    def test_an_unknown_user_is_refused_when_not_creating(self, resolve_with: Any, mode: str) -> None:
        issuer = resolve_with("tests.test_resolvers.by_email")
        response = call(mode, "/jwt/whoami", f"Bearer {issuer.mint(email='nobody@example.test')}")
        assert_refused(response, "user_not_found")
        assert get_user_model().objects.count() == 0

    def test_an_ambiguous_field_is_refused(self, resolve_with: Any) -> None:
        issuer = resolve_with("tests.test_resolvers.by_email")
        get_user_model().objects.create_user("h1", email="same@example.test")
        get_user_model().objects.create_user("h2", email="same@example.test")
        response = call("wsgi", "/jwt/whoami", f"Bearer {issuer.mint(email='same@example.test')}")
        assert_refused(response, "user_not_found")

    def test_a_resolver_that_returns_none_refuses(self, resolve_with: Any) -> None:
        issuer = resolve_with("tests.test_resolvers.returns_none")
        assert_refused(call("asgi", "/jwt/awhoami", f"Bearer {issuer.mint()}"), "user_not_found")

    def test_repr_names_the_mapping(self) -> None:
        assert repr(by_email) == "UserResolver(claim='email', field='email', create=False)"


class TestLoading:
    def test_no_resolver_means_token_users(self, jwtguard_settings: FakeIssuer) -> None:
        assert get_user_resolver() is None
        assert call("wsgi", "/jwt/whoami", f"Bearer {jwtguard_settings.mint()}").json()["user_type"] == "TokenUser"

    @pytest.mark.parametrize(
        ("path", "problem"),
        [
            ("tests.test_resolvers.nothing_here", "cannot be imported"),
            ("tests.test_resolvers.not_callable", "not callable"),
        ],
    )
    def test_a_bad_path_is_a_configuration_error(self, resolve_with: Any, path: str, problem: str) -> None:
        resolve_with(path)
        with pytest.raises(ImproperlyConfigured, match=problem):
            get_user_resolver()

    def test_the_resolver_follows_override_settings(self, resolve_with: Any, settings: Any) -> None:
        resolve_with(DEFAULT)
        assert isinstance(get_user_resolver(), UserResolver)
        resolve_with("tests.test_resolvers.counting")
        assert get_user_resolver() is counting
