"""The pytest plugin as a user meets it: a project of its own, run by pytest in a subprocess (``pytester``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.loopback import free_port

pytest_plugins = ["pytester"]

USER_SETTINGS = """
SECRET_KEY = "user-project"
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "jwtguard"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
ROOT_URLCONF = "user_urls"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwtguard.authentication.JWTAccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
JWTGUARD = {
    "ISSUER": "https://tenant.example.com/",
    "AUDIENCE": "https://orders.example.com",
    "LEEWAY": 0,
}
"""

USER_URLS = """
from django.http import JsonResponse
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class FriendsView(APIView):
    def get(self, request):
        return Response({"user": request.user.id})


async def public(request):
    return JsonResponse({"public": True})


urlpatterns = [path("api/v1/friends", FriendsView.as_view()), path("public", public)]
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's Django project in a temporary directory (its own settings, urls, cache)."""
    pytester.makepyfile(user_settings=USER_SETTINGS, user_urls=USER_URLS)
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "user_settings")
    return pytester


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins["jwtguard"] == "jwtguard.testing.pytest_plugin"


def test_importing_the_plugin_imports_neither_django_nor_pyjwt() -> None:
    # It loads in every test run of every project that installs jwtguard.
    code = (
        "import sys, jwtguard.testing.pytest_plugin\n"
        "heavy = [m for m in ('django', 'rest_framework', 'jwt', 'cryptography') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "freezer",
    [
        "freezegun.freeze_time('2031-05-01 12:00:00')",
        "time_machine.travel(datetime.datetime(2031, 5, 1, 12, tzinfo=datetime.timezone.utc), tick=False)",
    ],
)
def test_a_user_freezes_time_in_their_tests(user_project: pytest.Pytester, freezer: str) -> None:
    """Tokens minted and checked under frozen time, with either library Django projects use."""
    user_project.makepyfile(
        test_frozen=textwrap.dedent(
            f"""
            import datetime

            import freezegun
            import jwt
            import time_machine


            def test_a_token_minted_in_the_frozen_future_is_accepted_there(jwt_client, jwt_issuer):
                with {freezer}:
                    client = jwt_client(sub="alice")
                    response = client.get("/api/v1/friends")
                    minted_at = jwt.decode(jwt_issuer.mint(), options={{"verify_signature": False}})["iat"]
                assert minted_at == 1935403200
                assert response.status_code == 200, response.content
                assert response.json() == {{"user": "alice"}}


            def test_a_token_of_today_has_expired_in_the_frozen_future(jwt_client):
                client = jwt_client(sub="bob")
                with {freezer}:
                    response = client.get("/api/v1/friends")
                assert response.status_code == 401
                assert 'error="invalid_token"' in response["WWW-Authenticate"]
            """
        )
    )
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=2)


def test_a_user_tests_their_api_with_pytest_django(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(
        test_user_api=textwrap.dedent(
            """
            import asyncio

            import jwt
            import pytest
            from django.conf import settings as django_settings


            def test_valid_token(jwt_client, jwt_issuer):
                response = jwt_client(sub="alice").get("/api/v1/friends")
                assert response.status_code == 200
                assert response.json() == {"user": "alice"}
                assert jwt_client(sub="bob").get("/api/v1/friends").json() == {"user": "bob"}
                assert jwt_issuer.jwks_requests == 1


            def test_the_projects_settings_are_kept_and_the_issuer_swapped_in(jwt_issuer, settings):
                assert settings.JWTGUARD["ISSUER"] == jwt_issuer.issuer
                assert settings.JWTGUARD["JWKS_URL"] == jwt_issuer.jwks_url
                assert settings.JWTGUARD["AUDIENCE"] == "https://orders.example.com"
                assert settings.JWTGUARD["LEEWAY"] == 0
                assert jwt.decode(jwt_issuer.mint(), options={"verify_signature": False})["aud"] == (
                    "https://orders.example.com"
                )


            def test_settings_are_restored_after_the_test():
                assert django_settings.JWTGUARD["ISSUER"] == "https://tenant.example.com/"
                assert "JWKS_URL" not in django_settings.JWTGUARD


            def test_expired_token(jwt_client):
                response = jwt_client(expires_in=-5).get("/api/v1/friends")
                assert response.status_code == 401
                assert response.json()["detail"] == "Bearer token is invalid"
                assert 'error="invalid_token"' in response["WWW-Authenticate"]


            def test_a_raw_token(jwt_client):
                assert jwt_client(token="not-a-jwt").get("/api/v1/friends").status_code == 401


            def test_no_token_at_all(client):
                assert client.get("/api/v1/friends").status_code == 401


            @pytest.mark.jwt_issuer(algorithm="ES256", audience="https://other.example.com", settings={"LEEWAY": 5})
            def test_the_marker_tunes_the_issuer(jwt_issuer, jwt_client, settings):
                assert jwt.get_unverified_header(jwt_issuer.mint())["alg"] == "ES256"
                assert settings.JWTGUARD["ALGORITHMS"] == ["ES256"]
                assert settings.JWTGUARD["AUDIENCE"] == "https://other.example.com"
                assert settings.JWTGUARD["LEEWAY"] == 5
                assert jwt_client(sub="carol").get("/api/v1/friends").json() == {"user": "carol"}


            def test_the_async_client(jwt_client):
                async def call():
                    return await jwt_client.async_client(sub="dave").get("/api/v1/friends")

                response = asyncio.run(call())
                assert response.status_code == 200
                assert response.json() == {"user": "dave"}
            """
        )
    )
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=8)


def test_a_later_issuer_on_the_same_port_does_not_inherit_the_cached_keys(user_project: pytest.Pytester) -> None:
    # The first test leaves, in the project's cache, its issuer's key set and an unknown-kid cooldown.
    # Without the plugin forgetting them, the second issuer (same URL, new key) would be refused for 30s.
    port = free_port()
    user_project.makepyfile(
        test_same_port=textwrap.dedent(
            f"""
            import pytest

            from jwtguard.testing import generate_key


            @pytest.mark.jwt_issuer(port={port})
            def test_first(jwt_issuer, jwt_client):
                assert jwt_client().get("/api/v1/friends").status_code == 200
                stranger = generate_key("RS256", kid="not-published")
                assert jwt_client(token=jwt_issuer.mint(key=stranger)).get("/api/v1/friends").status_code == 401


            @pytest.mark.jwt_issuer(port={port})
            def test_second(jwt_issuer, jwt_client):
                assert jwt_client().get("/api/v1/friends").status_code == 200
                assert jwt_issuer.jwks_requests == 1
            """
        )
    )
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=2)


def test_without_pytest_django_it_uses_override_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makepyfile(user_urls=USER_URLS)
    pytester.makeconftest(
        "import django\nfrom django.conf import settings\n\n"
        + "exec("
        + repr(USER_SETTINGS)
        + ", globals())\n"
        + "settings.configure(**{k: v for k, v in dict(globals()).items() if k.isupper()})\n"
        + "django.setup()\n"
    )
    pytester.makepyfile(
        test_plain=textwrap.dedent(
            """
            from django.conf import settings
            from django.test import Client


            def test_valid_token(jwt_issuer, jwt_client):
                assert settings.JWTGUARD["ISSUER"] == jwt_issuer.issuer
                response = jwt_client(sub="erin").get("/api/v1/friends")
                assert response.status_code == 200
                assert response.json() == {"user": "erin"}


            def test_settings_are_restored():
                assert settings.JWTGUARD["ISSUER"] == "https://tenant.example.com/"
                assert Client().get("/api/v1/friends").status_code == 401
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=2)


def test_the_marker_signs_with_rfc_9864_names(user_project: pytest.Pytester) -> None:
    """``algorithm="Ed25519"`` (or ``"Ed448"``): the issuer publishes and signs with that name, and the settings
    allow exactly it."""
    user_project.makepyfile(
        test_rfc_9864=textwrap.dedent(
            """
            import jwt
            import pytest


            @pytest.mark.jwt_issuer(algorithm="Ed25519")
            def test_ed25519(jwt_issuer, jwt_client, settings):
                assert jwt.get_unverified_header(jwt_issuer.mint())["alg"] == "Ed25519"
                assert jwt_issuer.jwks()["keys"][0]["alg"] == "Ed25519"
                assert settings.JWTGUARD["ALGORITHMS"] == ["Ed25519"]
                assert jwt_client(sub="frank").get("/api/v1/friends").json() == {"user": "frank"}


            @pytest.mark.jwt_issuer(algorithm="Ed448")
            def test_ed448(jwt_issuer, jwt_client, settings):
                assert jwt.get_unverified_header(jwt_issuer.mint())["alg"] == "Ed448"
                assert jwt_issuer.jwks()["keys"][0]["crv"] == "Ed448"
                assert settings.JWTGUARD["ALGORITHMS"] == ["Ed448"]
                assert jwt_client(sub="gina").get("/api/v1/friends").json() == {"user": "gina"}
            """
        )
    )
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=2)
