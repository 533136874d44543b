"""Users freeze time in their own tests: freezegun, time-machine or a plain patch of ``time.time`` must move the
clock every door judges tokens by (it is read at each call, never bound at import)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from unittest import mock

import freezegun
import pytest
import time_machine
from rest_framework.test import APIClient

import jwtguard
from jwtguard.clock import elapsed
from jwtguard.conf import get_settings
from jwtguard.exceptions import KeySetUnavailable, TokenExpired
from jwtguard.jwks import get_provider
from jwtguard.testing import FakeIssuer
from tests.support.protected_views import STACK, assert_refused, call

VECTORS = Path(__file__).with_name("data") / "auth0_vectors.json"
AUTH0_ISSUER = "https://antunes.us.auth0.com/"
AUTH0_AUDIENCE = "user-management/apiview-drf-api/api/v1"
SUBJECT = "facebook|10218925956491642"
#: Between the article's valid token's iat (1646602685) and exp (1646689085); and a day after it expired.
INSIDE_LIFETIME = 1646602700
AFTER_EXPIRY = 1646689085 + 86400

Freezer = Callable[[float], AbstractContextManager[Any]]
FREEZERS: dict[str, Freezer] = {
    "freezegun": lambda at: freezegun.freeze_time(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))),
    "time-machine": lambda at: time_machine.travel(at, tick=False),
    "patched time.time": lambda at: mock.patch("time.time", return_value=float(at)),
}


@pytest.fixture(params=list(FREEZERS))
def freeze(request: pytest.FixtureRequest) -> Freezer:
    return FREEZERS[request.param]


@pytest.fixture
def valid_token() -> str:
    token: str = json.loads(VECTORS.read_text())["tokens"]["valid_token"]
    return token


@pytest.fixture
def auth0(configure: Callable[..., None], settings: Any) -> Iterator[FakeIssuer]:
    """The article's real Auth0 key set served from 127.0.0.1, and the middleware in the stack."""
    with FakeIssuer(issuer=AUTH0_ISSUER, audience=AUTH0_AUDIENCE) as server:
        server.jwks_document = json.loads(VECTORS.read_text())["jwks"]
        configure(server, ALGORITHMS=["RS256"], LEEWAY=0)
        settings.MIDDLEWARE = STACK
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        yield server


def test_validate_token_judges_by_the_frozen_clock(auth0: FakeIssuer, freeze: Freezer, valid_token: str) -> None:
    with freeze(INSIDE_LIFETIME):
        assert jwtguard.validate_token(valid_token).subject == SUBJECT
    with freeze(AFTER_EXPIRY), pytest.raises(TokenExpired):
        jwtguard.validate_token(valid_token)


def test_the_drf_class_judges_by_the_frozen_clock(auth0: FakeIssuer, freeze: Freezer, valid_token: str) -> None:
    with freeze(INSIDE_LIFETIME):
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {valid_token}")
    assert response.status_code == 200
    assert response.json() == {"user": SUBJECT}
    with freeze(AFTER_EXPIRY):
        response = APIClient().get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {valid_token}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_the_middleware_judges_by_the_frozen_clock(
    auth0: FakeIssuer, freeze: Freezer, valid_token: str, mode: str
) -> None:
    with freeze(INSIDE_LIFETIME):
        response = call(mode, "/jwt/whoami", f"Bearer {valid_token}")
    assert response.status_code == 200
    assert response.json()["user"] == SUBJECT
    with freeze(AFTER_EXPIRY):
        response = call(mode, "/jwt/whoami", f"Bearer {valid_token}")
    assert_refused(response, "token_expired")


def test_a_wait_for_another_process_fetch_ends_under_a_frozen_clock(
    issuer: FakeIssuer, configure: Callable[..., None], freeze: Freezer
) -> None:
    """Freezers stop ``time.monotonic`` (freezegun does); jwtguard's deadlines run on a clock they leave alone,
    so a process waiting for another's fetch (here a fetcher that crashed holding the lock) still gives up."""
    configure(issuer, HTTP_TIMEOUT=0.5)
    provider = get_provider(get_settings().issuers[0])
    provider.cache.add(provider.lock_key, "crashed", 60)
    bound = provider._lock_timeout()
    outcome: list[BaseException] = []

    def wait() -> None:
        with freeze(INSIDE_LIFETIME):
            try:
                provider.usable_keyset()
            except KeySetUnavailable as exc:
                outcome.append(exc)

    started = elapsed()
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(bound + 5)
    assert not waiter.is_alive(), "the wait never ended under the frozen clock"
    assert bound <= elapsed() - started < bound + 2
    assert len(outcome) == 1
    assert issuer.jwks_requests == 0
