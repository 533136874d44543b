"""``ISSUER_SOURCE``: tenants kept in a database (tests/tenants), asked once per issuer per interval for the
whole deployment, never a fetch for an untrusted issuer, forgotten on ``issuer_changed``, asked off the event
loop, and a 503 for that issuer alone when it fails."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import call_command

from jwtguard import edge, exceptions, issuers
from jwtguard.conf import get_settings
from jwtguard.jwks import providers, resolved_provider_stats
from jwtguard.signals import issuer_changed
from jwtguard.testing import FakeIssuer
from jwtguard.validation import TokenValidator, get_validator
from tests.support.protected_views import STACK, call
from tests.tenants import source
from tests.tenants.models import Tenant

SOURCE = "tests.tenants.source.issuer_source"
STRANGER = "https://stranger.example.com/"


@pytest.fixture(autouse=True)
def _calls() -> Iterator[None]:
    source.calls.clear()
    yield
    source.calls.clear()


@pytest.fixture
def tenant(issuer: FakeIssuer, settings: Any, db: None) -> FakeIssuer:
    """One tenant in the database (the ``issuer`` fixture's), and ``ISSUER_SOURCE`` as the only issuers."""
    Tenant.objects.create(issuer=issuer.issuer, audience=issuer.audience, jwks_url=issuer.jwks_url)
    settings.JWTGUARD = {"ISSUER_SOURCE": SOURCE, "ALGORITHMS": ["RS256"]}
    return issuer


def another_process() -> TokenValidator:
    """What a second worker holds: a validator of its own (nothing resolved yet), sharing the cache."""
    return TokenValidator(get_settings())


def asked() -> list[str]:
    return [iss for iss, _thread, _loop in source.calls]


class TestTenantsFromTheDatabase:
    def test_a_tenant_is_accepted_and_the_source_asked_once(self, tenant: FakeIssuer) -> None:
        validator = get_validator()
        for _ in range(3):
            token = validator.validate(tenant.mint())
        assert token.issuer.issuer == tenant.issuer
        assert token.issuer.origin == "ISSUER_SOURCE"
        assert asked() == [tenant.issuer]
        assert tenant.jwks_requests == 1

    def test_the_answer_is_shared_with_other_processes(self, tenant: FakeIssuer) -> None:
        get_validator().validate(tenant.mint())
        another_process().validate(tenant.mint())
        another_process().validate(tenant.mint())
        assert asked() == [tenant.issuer]
        assert tenant.jwks_requests == 1

    def test_an_untrusted_issuer_is_asked_once_for_the_deployment_and_never_fetched(self, tenant: FakeIssuer) -> None:
        forged = tenant.mint(iss=STRANGER)
        for validator in (get_validator(), get_validator(), another_process(), another_process()):
            with pytest.raises(exceptions.UnknownIssuer) as refused:
                validator.validate(forged)
            assert refused.value.code == "invalid_issuer"
        assert asked() == [STRANGER]
        assert tenant.jwks_requests == 0
        assert providers() == []

    def test_a_flood_of_random_issuers_costs_one_call_each_no_fetch_and_bounded_memory(
        self, tenant: FakeIssuer, settings: Any
    ) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "ISSUER_CACHE_SIZE": 10}
        validator = get_validator()
        forged = [tenant.mint(iss=f"https://forged-{n}.example.com/") for n in range(60)]
        for token in forged + forged:
            with pytest.raises(exceptions.UnknownIssuer):
                validator.validate(token)
        assert len(asked()) == 60
        assert tenant.jwks_requests == 0
        assert providers() == []
        assert validator.issuers.held()["untrusted"] == 10
        validator.validate(tenant.mint())  # the tenant still gets in
        assert validator.issuers.held()["source"] == 1

    def test_an_inactive_tenant_is_not_trusted(self, tenant: FakeIssuer) -> None:
        Tenant.objects.update(active=False)
        with pytest.raises(exceptions.UnknownIssuer):
            get_validator().validate(tenant.mint())
        assert tenant.jwks_requests == 0

    def test_answers_are_asked_again_once_their_time_is_over(
        self, tenant: FakeIssuer, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(issuers, "RECHECK_SECONDS", 0.0)
        validator = get_validator()
        with pytest.raises(exceptions.UnknownIssuer):
            validator.validate(tenant.mint(iss=STRANGER))
        caches["default"].delete(issuers.answer_key(STRANGER))  # as if ISSUER_SOURCE_NEGATIVE_TTL ran out
        with pytest.raises(exceptions.UnknownIssuer):
            validator.validate(tenant.mint(iss=STRANGER))
        assert asked() == [STRANGER, STRANGER]

    def test_the_answer_lives_in_the_shared_cache_for_its_ttl(self, tenant: FakeIssuer, settings: Any) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "ISSUER_SOURCE_TTL": 120, "ISSUER_SOURCE_NEGATIVE_TTL": 7}
        get_validator().validate(tenant.mint())
        with pytest.raises(exceptions.UnknownIssuer):
            get_validator().validate(tenant.mint(iss=STRANGER))
        client = caches["default"]._cache.get_client()  # type: ignore[attr-defined]
        trusted = client.ttl(caches["default"].make_and_validate_key(issuers.answer_key(tenant.issuer)))
        untrusted = client.ttl(caches["default"].make_and_validate_key(issuers.answer_key(STRANGER)))
        assert 110 < trusted <= 120
        assert 0 < untrusted <= 7


class TestForget:
    @pytest.mark.parametrize(
        "cache",
        [
            None,  # the test settings' shared cache
            {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},  # per-process: this process's memory
            {  # Redis down: this process's memory until it answers
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:9/0",
                "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
            },
        ],
    )
    def test_issuer_changed_drops_the_tenant_at_once(
        self, tenant: FakeIssuer, settings: Any, cache: dict[str, Any] | None
    ) -> None:
        if cache is not None:
            settings.CACHES = {**settings.CACHES, "default": cache}
        validator = get_validator()
        validator.validate(tenant.mint())
        Tenant.objects.all().delete()
        issuer_changed.send(sender=None, issuer=tenant.issuer)
        with pytest.raises(exceptions.UnknownIssuer):
            validator.validate(tenant.mint())
        assert asked() == [tenant.issuer, tenant.issuer]
        assert resolved_provider_stats()["held"] == 0

    def test_manage_py_forget_issuer(self, tenant: FakeIssuer, capsys: pytest.CaptureFixture[str]) -> None:
        get_validator().validate(tenant.mint())
        Tenant.objects.update(audience="https://another.api.example")
        call_command("jwtguard", "forget-issuer", tenant.issuer)
        assert "answer dropped" in capsys.readouterr().out
        with pytest.raises(exceptions.InvalidAudience):
            get_validator().validate(tenant.mint())
        assert caches["default"].get(issuers.answer_key(tenant.issuer))["answer"]["AUDIENCE"] == (
            "https://another.api.example"
        )

    def test_another_process_sees_the_forget_within_its_recheck(
        self, tenant: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        other = another_process()
        other.validate(tenant.mint())
        Tenant.objects.all().delete()
        issuers.forget(tenant.issuer, routers=[])  # what issuer_changed does in another process: the shared answer
        other.validate(tenant.mint())  # still held here, until the recheck
        monkeypatch.setattr(issuers, "RECHECK_SECONDS", 0.0)  # the recheck is due
        with pytest.raises(exceptions.UnknownIssuer):
            other.validate(tenant.mint())

    def test_a_cached_token_of_a_dropped_tenant_is_refused(
        self, tenant: FakeIssuer, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "TOKEN_CACHE_SIZE": 8}
        other = another_process()
        raw = tenant.mint()
        for _ in range(3):  # stored on its second verification, a hit on the third
            other.validate(raw)
        assert other.token_cache is not None
        assert other.token_cache.hits == 1
        Tenant.objects.all().delete()
        issuers.forget(tenant.issuer, routers=[])  # dropped from another process
        monkeypatch.setattr(issuers, "RECHECK_SECONDS", 0.0)
        with pytest.raises(exceptions.UnknownIssuer):
            other.validate(raw)


class TestFailures:
    def test_a_raising_source_is_a_503_for_that_issuer_only_logged_once(
        self, issuer: FakeIssuer, settings: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings.JWTGUARD = {
            "ISSUER_SOURCE": "tests.tenants.source.failing_source",
            "ISSUERS": [issuer.settings()],
        }
        tenant_token = issuer.mint(iss="https://tenant.example.com/")
        with caplog.at_level(logging.ERROR, logger="jwtguard"):
            for validator in (get_validator(), get_validator(), another_process()):
                with pytest.raises(exceptions.IssuerSourceUnavailable) as unavailable:
                    validator.validate(tenant_token)
        assert unavailable.value.code == "issuer_source_unavailable"
        assert unavailable.value.detail == exceptions.ISSUER_LOOKUP_UNAVAILABLE
        assert len(asked()) == 1
        assert [r.getMessage() for r in caplog.records if "ISSUER_SOURCE failed" in r.getMessage()] != []
        assert len([r for r in caplog.records if "ISSUER_SOURCE failed" in r.getMessage()]) == 1
        assert get_validator().validate(issuer.mint()).issuer.issuer == issuer.issuer  # the others are served
        response = edge.refusal_response(unavailable.value)
        assert response.status_code == 503
        assert response["Retry-After"] == "5"

    def test_an_answer_that_is_no_issuer_is_a_503(self, issuer: FakeIssuer, settings: Any) -> None:
        settings.JWTGUARD = {"ISSUER_SOURCE": "tests.tenants.source.bad_answer_source"}
        with pytest.raises(exceptions.IssuerSourceUnavailable, match="HS256"):
            get_validator().validate(issuer.mint())

    def test_a_drf_view_answers_503(self, issuer: FakeIssuer, settings: Any, client: Any) -> None:
        settings.JWTGUARD = {"ISSUER_SOURCE": "tests.tenants.source.failing_source"}
        response = client.get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {issuer.mint()}")
        assert response.status_code == 503
        assert "Retry-After" in response
        assert response.json() == {"detail": exceptions.ISSUER_LOOKUP_UNAVAILABLE}

    @pytest.mark.parametrize("mode", ["wsgi", "asgi"])
    def test_the_middleware_answers_503_with_its_code(self, issuer: FakeIssuer, settings: Any, mode: str) -> None:
        settings.JWTGUARD = {"ISSUER_SOURCE": "tests.tenants.source.failing_source"}
        settings.MIDDLEWARE = STACK
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        response = call(mode, "/jwt/whoami" if mode == "wsgi" else "/jwt/awhoami", f"Bearer {issuer.mint()}")
        assert response.status_code == 503
        assert response.json()["code"] == "issuer_source_unavailable"

    def test_only_the_process_that_wins_the_claim_asks_the_others_wait_for_its_answer(
        self, tenant: FakeIssuer, settings: Any
    ) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "ISSUER_SOURCE_TIMEOUT": 2}
        key = issuers.answer_key(tenant.issuer)
        assert caches["default"].add(f"{key}:claim", "another-process", 5)  # another process is asking
        answer = {"v": issuers.ANSWER_VERSION, "iss": tenant.issuer, "answer": {"AUDIENCE": tenant.audience}}
        answer["answer"]["JWKS_URL"] = tenant.jwks_url
        timer = threading.Timer(0.3, lambda: caches["default"].set(key, answer, 60))
        timer.start()
        try:
            assert get_validator().validate(tenant.mint()).issuer.issuer == tenant.issuer
        finally:
            timer.join()
        assert asked() == []

    def test_a_claim_whose_answer_never_comes_is_a_503_after_the_timeout(
        self, tenant: FakeIssuer, settings: Any
    ) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "ISSUER_SOURCE_TIMEOUT": 0.1}
        caches["default"].add(f"{issuers.answer_key(tenant.issuer)}:claim", "another-process", 5)
        with pytest.raises(exceptions.IssuerSourceUnavailable, match="did not answer in time"):
            get_validator().validate(tenant.mint())
        assert asked() == []


@pytest.mark.django_db(transaction=True)
class TestAsync:
    def test_the_source_is_asked_off_the_event_loop(self, issuer: FakeIssuer, settings: Any) -> None:
        Tenant.objects.create(issuer=issuer.issuer, audience=issuer.audience, jwks_url=issuer.jwks_url)
        settings.JWTGUARD = {"ISSUER_SOURCE": SOURCE}
        validator = get_validator()
        raw = issuer.mint()
        assert validator.validate_local(raw) is None  # only the source can tell: not on the loop
        token = asyncio.run(edge.avalidate(validator, raw))
        assert token.issuer.issuer == issuer.issuer
        [(iss, thread, loop_running)] = source.calls
        assert iss == issuer.issuer
        assert not loop_running
        assert thread != threading.main_thread().name
        assert validator.validate_local(raw) is not None  # held now: answered on the loop

    def test_an_async_view_behind_the_middleware_gets_the_tenant(self, issuer: FakeIssuer, settings: Any) -> None:
        Tenant.objects.create(issuer=issuer.issuer, audience=issuer.audience, jwks_url=issuer.jwks_url)
        settings.JWTGUARD = {"ISSUER_SOURCE": SOURCE}
        settings.MIDDLEWARE = STACK
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        response = call("asgi", "/jwt/awhoami", f"Bearer {issuer.mint()}")
        assert response.status_code == 200
        assert response.json()["user"] == f"{issuer.issuer}#user-1"
        [(_iss, _thread, loop_running)] = source.calls
        assert not loop_running

    def test_an_untrusted_issuer_is_refused_through_the_async_path(self, issuer: FakeIssuer, settings: Any) -> None:
        settings.JWTGUARD = {"ISSUER_SOURCE": SOURCE}
        with pytest.raises(exceptions.UnknownIssuer):
            asyncio.run(edge.avalidate(get_validator(), issuer.mint(iss=STRANGER)))
        assert asked() == [STRANGER]


class TestTheDocumentedRecipe:
    """docs/tenants.md's test, as a user writes it with the pytest plugin (``jwt_issuer``) and DRF."""

    TENANT = "https://acme.tenants.example.com/"

    @pytest.mark.jwt_issuer(settings={"ISSUER_SOURCE": SOURCE})
    def test_an_onboarded_tenant_gets_in_and_a_stranger_does_not(
        self, jwt_issuer: FakeIssuer, client: Any, db: None
    ) -> None:
        Tenant.objects.create(issuer=self.TENANT, audience=jwt_issuer.audience, jwks_url=jwt_issuer.jwks_url)

        tenant_token = jwt_issuer.mint(iss=self.TENANT, sub="alice")
        response = client.get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {tenant_token}")
        assert response.status_code == 200
        assert response.json() == {"user": f"{self.TENANT}#alice"}

        stranger_token = jwt_issuer.mint(iss="https://stranger.example.com/")
        response = client.get("/api/v1/friends", HTTP_AUTHORIZATION=f"Bearer {stranger_token}")
        assert response.status_code == 401
