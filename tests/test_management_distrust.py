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
from jwtguard.validation import get_validator

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


ENTRA = "https://login.microsoftonline.com/{tid}/v2.0"
TENANT_A = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TENANT_B = "9188040d-6c67-4c5b-b112-36a304b66dad"


def entra_iss(tid: str) -> str:
    return f"https://login.microsoftonline.com/{tid}/v2.0"


def entra_token(issuer: FakeIssuer, tid: str) -> str:
    return issuer.mint(iss=entra_iss(tid), aud="api://orders", tid=tid)


@pytest.fixture
def entra(issuer: FakeIssuer, settings: Any) -> FakeIssuer:
    """Entra ID multi-tenant, a pattern the only issuer: every tenant's keys at one JWKS URL, one key provider."""
    settings.JWTGUARD = {
        "ISSUERS": [
            {"ISSUER": ENTRA, "AUDIENCE": "api://orders", "JWKS_URL": issuer.jwks_url, "BIND_CLAIMS": {"tid": "tid"}}
        ]
    }
    return issuer


class TestIssuersResolvedAtRunTime:
    """Distrust where issuers come from patterns: a provider serves every tenant whose keys are at its URL."""

    def test_distrust_without_issuer_reaches_the_issuers_of_a_pattern(self, entra: FakeIssuer) -> None:
        kid = entra.signing_key.kid
        out = run("distrust", kid, "--reason", "leaked")
        assert f"kid {kid!r} distrusted for every issuer" in out
        for tid in (TENANT_A, TENANT_B):
            with pytest.raises(DistrustedKey):
                validate_token(entra_token(entra, tid))
        [row] = listed()
        assert row == {**row, "kid": kid, "issuer": ENTRA, "every_issuer": True, "reason": "leaked"}
        assert f"kid {kid!r} trusted again" in run("trust", kid)
        assert validate_token(entra_token(entra, TENANT_A)).claims["tid"] == TENANT_A

    def test_distrust_for_a_tenant_distrusts_the_key_set_it_shares_and_says_so(self, entra: FakeIssuer) -> None:
        kid = entra.signing_key.kid
        out = run("distrust", kid, "--issuer", entra_iss(TENANT_A))
        assert f"the keys of {entra_iss(TENANT_A)} are those at {entra.jwks_url}" in out
        for tid in (TENANT_A, TENANT_B):  # one key set: a kid leaked for one tenant is leaked for all
            with pytest.raises(DistrustedKey):
                validate_token(entra_token(entra, tid))
        [row] = json.loads(run("distrusted", "--json", "--issuer", entra_iss(TENANT_B)))
        assert row == {**row, "kid": kid, "every_issuer": False}
        [row] = listed()  # without --issuer too, named by the key set's URL
        assert row == {**row, "kid": kid, "issuer": entra.jwks_url, "every_issuer": False}
        assert f"{kid}  issuer {entra.jwks_url} (this issuer)" in run("distrusted")
        assert f"kid {kid!r} trusted again" in run("trust", kid, "--issuer", entra_iss(TENANT_B))
        assert validate_token(entra_token(entra, TENANT_A)).claims["tid"] == TENANT_A

    def test_a_cached_token_of_a_tenant_is_refused_at_once(self, entra: FakeIssuer) -> None:
        token = entra_token(entra, TENANT_A)
        validator = get_validator()
        for _ in range(3):  # stored the second time, a hit the third
            validator.validate(token)
        assert validator.token_cache is not None
        assert validator.token_cache.hits == 1
        run("distrust", entra.signing_key.kid, "--issuer", entra_iss(TENANT_B))
        with pytest.raises(DistrustedKey):
            validator.validate(token)

    def test_a_pattern_is_no_issuer_and_the_refusal_says_what_to_do(self, entra: FakeIssuer) -> None:
        with pytest.raises(CommandError, match=r"is an ISSUER pattern.*without --issuer.*one of its issuers"):
            run("distrust", "kid-1", "--issuer", ENTRA)
        assert listed() == []

    def test_top_level_distrusted_kids_reach_pattern_and_source_issuers(
        self, issuer: FakeIssuer, settings: Any
    ) -> None:
        kid = issuer.signing_key.kid
        settings.JWTGUARD = {
            "DISTRUSTED_KIDS": [kid],
            "ISSUER_SOURCE": "tests.test_management_distrust.one_tenant_source",
            "ISSUERS": [{"ISSUER": ENTRA, "AUDIENCE": "api://orders", "JWKS_URL": issuer.jwks_url}],
        }
        with pytest.raises(DistrustedKey):
            validate_token(entra_token(issuer, TENANT_A))
        one_tenant.update(ISSUER="https://tenant.example.com/", JWKS_URL=issuer.jwks_url)
        with pytest.raises(DistrustedKey):
            validate_token(issuer.mint(iss="https://tenant.example.com/", aud="api://orders"))
        assert {row["source"] for row in json.loads(run("distrusted", "--json"))} == {"settings"}

    def test_a_source_tenants_own_distrusted_kids_hold_for_it_whoever_shares_its_key_set(
        self, issuer: FakeIssuer, settings: Any
    ) -> None:
        kid = issuer.signing_key.kid
        settings.JWTGUARD = {"ISSUER_SOURCE": "tests.test_management_distrust.two_tenants_source"}
        two_tenants.update(jwks_url=issuer.jwks_url, distrusted_by="https://b.example.com/", kid=kid)
        token_a = issuer.mint(iss="https://a.example.com/", aud="api://orders")
        assert validate_token(token_a).issuer.issuer == "https://a.example.com/"  # A's provider made first
        with pytest.raises(DistrustedKey):
            validate_token(issuer.mint(iss="https://b.example.com/", aud="api://orders"))
        assert validate_token(token_a).issuer.issuer == "https://a.example.com/"

    def test_with_issuer_source_alone_distrust_is_shared_listed_and_fails_on_a_cache_that_keeps_nothing(
        self, issuer: FakeIssuer, settings: Any
    ) -> None:
        kid = issuer.signing_key.kid
        settings.JWTGUARD = {"ISSUER_SOURCE": "tests.test_management_distrust.one_tenant_source"}
        one_tenant.update(ISSUER="https://tenant.example.com/", JWKS_URL=issuer.jwks_url)
        run("distrust", kid, "--reason", "leaked")
        [row] = listed()
        assert row == {**row, "kid": kid, "issuer": "ISSUER_SOURCE", "every_issuer": True, "source": "cache"}
        with pytest.raises(DistrustedKey):
            validate_token(issuer.mint(iss="https://tenant.example.com/", aud="api://orders"))
        assert f"kid {kid!r} trusted again" in run("trust", kid)
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        with pytest.raises(CommandError, match="does not keep what is written"):
            run("distrust", kid)


#: What ``one_tenant_source`` answers for its one ``ISSUER`` (set by the test).
one_tenant: dict[str, Any] = {}
#: ``two_tenants_source``: tenants a and b with one JWKS URL; b distrusts ``kid``.
two_tenants: dict[str, Any] = {}


def one_tenant_source(iss: str) -> dict[str, Any] | None:
    if iss != one_tenant.get("ISSUER"):
        return None
    return {"AUDIENCE": "api://orders", "JWKS_URL": one_tenant["JWKS_URL"]}


def two_tenants_source(iss: str) -> dict[str, Any] | None:
    if iss not in ("https://a.example.com/", "https://b.example.com/"):
        return None
    answer: dict[str, Any] = {"AUDIENCE": "api://orders", "JWKS_URL": two_tenants["jwks_url"]}
    if iss == two_tenants["distrusted_by"]:
        answer["DISTRUSTED_KIDS"] = [two_tenants["kid"]]
    return answer
