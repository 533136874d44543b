"""An example of a user's own tests, written with jwtguard's pytest plugin (``jwt_issuer``, ``jwt_client``).

This is what docs/testing.md shows: sample_site's views tested with real signed tokens from a real local
issuer, and nothing mocked. Nothing here needs jwtguard's own fixtures; a user's project has none of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rest_framework.test import APIClient

from jwtguard.testing import FakeIssuer
from jwtguard.testing.clients import TokenClients

pytestmark = pytest.mark.urls("sample_site.urls")


def test_friends_answers_with_the_callers_subject(jwt_client: TokenClients) -> None:
    response = jwt_client(sub="alice").get("/api/v1/friends")

    assert response.status_code == 200
    assert response.json() == {"user": "alice"}


def test_a_token_minted_by_hand_with_drfs_own_client(jwt_issuer: FakeIssuer) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issuer.mint(sub='bob')}")

    assert client.get("/api/v1/friends").json() == {"user": "bob"}


def test_the_scoped_view_needs_read_friends(jwt_client: TokenClients) -> None:
    assert jwt_client(scope="read:friends openid").get("/api/v1/friends/scoped").status_code == 200

    response = jwt_client(scope="profile").get("/api/v1/friends/scoped")
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_plain_django_view(jwt_client: TokenClients) -> None:
    response = jwt_client(sub="carol").get("/plain/friends")

    assert response.status_code == 200
    assert response.json() == {"user": "carol", "view": "plain"}


def test_async_view(jwt_client: TokenClients) -> None:
    async def call() -> Any:
        return await jwt_client.async_client(sub="dave", scope="read:friends").get("/async/friends")

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.json() == {"user": "dave", "view": "async"}


def test_an_expired_token_is_refused(jwt_client: TokenClients) -> None:
    response = jwt_client(expires_in=-3600).get("/api/v1/friends")

    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_no_token_is_refused(jwt_client: TokenClients) -> None:
    assert APIClient().get("/api/v1/friends").status_code == 401


def test_the_api_follows_a_key_rotation(jwt_issuer: FakeIssuer, jwt_client: TokenClients) -> None:
    assert jwt_client().get("/api/v1/friends").status_code == 200
    jwt_issuer.rotate()

    assert jwt_client(sub="erin").get("/api/v1/friends").json() == {"user": "erin"}
    assert jwt_issuer.jwks_requests == 2  # one refresh for the new kid


@pytest.mark.jwt_issuer(algorithm="ES256")
def test_an_es256_issuer(jwt_client: TokenClients) -> None:
    assert jwt_client(sub="frank").get("/api/v1/friends").json() == {"user": "frank"}
