"""`manage.py jwtguard distrust | trust | distrusted` and `refresh --forget-stale`, against the shared cache."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jwtguard import validate_token
from jwtguard.conf import get_settings, reset
from jwtguard.exceptions import DistrustedKey
from jwtguard.jwks import get_provider
from jwtguard.testing import FakeIssuer

Configure = Callable[..., None]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("jwtguard", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def listed() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(run("distrusted", "--json"))
    return rows


def test_distrust_then_list_then_trust(jwtguard_settings: FakeIssuer) -> None:
    issuer = jwtguard_settings
    kid = issuer.signing_key.kid
    assert run("distrusted") == "no kid is distrusted\n"
    out = run("distrust", kid, "--for", "3600", "--reason", "leaked in a CI log")
    assert f"kid {kid!r} distrusted for every issuer until" in out
    assert "within JWKS_L1_RECHECK (5s)" in out
    with pytest.raises(DistrustedKey):
        validate_token(issuer.mint())
    reset()  # another process: knows only what the cache holds
    [row] = listed()
    assert row == {
        **row,
        "kid": kid,
        "issuer": issuer.issuer,
        "every_issuer": True,
        "reason": "leaked in a CI log",
        "source": "cache",
    }
    assert row["until"] - row["since"] == 3600
    assert f"{kid}  issuer {issuer.issuer} (every issuer)  since " in run("distrusted")
    assert f"kid {kid!r} trusted again" in run("trust", kid)
    assert listed() == []
    assert validate_token(issuer.mint()).issuer.issuer == issuer.issuer
    assert run("trust", kid) == f"kid {kid!r} was not distrusted\n"


def test_for_one_issuer_only(issuer: FakeIssuer, configure: Configure, settings: Any) -> None:
    with FakeIssuer("RS256", audience=issuer.audience) as other:
        settings.JWTGUARD = {
            "AUDIENCE": issuer.audience,
            "ISSUERS": [{"ISSUER": fake.issuer, "JWKS_URL": fake.jwks_url} for fake in (issuer, other)],
        }
        run("distrust", "shared-kid", "--issuer", other.issuer)
        assert [(r["issuer"], r["every_issuer"]) for r in listed()] == [(other.issuer, False)]
        with pytest.raises(CommandError, match="no issuer 'https://nobody/' is configured"):
            run("distrust", "shared-kid", "--issuer", "https://nobody/")


def test_settings_kids_are_listed_and_trust_says_where_to_remove_them(issuer: FakeIssuer, configure: Configure) -> None:
    configure(issuer, DISTRUSTED_KIDS=["old-kid"])
    [row] = listed()
    assert row == {**row, "kid": "old-kid", "source": "settings", "since": None, "until": None}
    assert "until removed from DISTRUSTED_KIDS" in run("distrusted")
    with pytest.raises(CommandError, match="remove it from DISTRUSTED_KIDS"):
        run("trust", "old-kid")


@pytest.mark.parametrize("seconds", ["0", "-5", "nan", "1e12"])
def test_for_must_be_a_sensible_number_of_seconds(jwtguard_settings: FakeIssuer, seconds: str) -> None:
    with pytest.raises(CommandError, match="--for must be"):
        run("distrust", "kid", "--for", seconds)
    assert listed() == []


def test_a_cache_that_does_not_answer_is_a_failure_not_a_silent_local_distrust(
    issuer: FakeIssuer, configure: Configure, settings: Any
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    configure(issuer)
    with pytest.raises(CommandError, match="the distrust list was NOT shared"):
        run("distrust", issuer.signing_key.kid)
    assert get_provider(get_settings().issuers[0]).config.distrusted_kids == frozenset()


def test_a_cache_that_keeps_nothing_is_a_failure(issuer: FakeIssuer, configure: Configure, settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    configure(issuer)
    with pytest.raises(CommandError, match="does not keep what is written"):
        run("distrust", issuer.signing_key.kid)
