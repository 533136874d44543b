"""Routing ``iss``: patterns (Entra ID tenants, Keycloak realms), the near misses they never match, the
per-process bound, and ``ISSUER_SOURCE`` (see also tests/test_issuer_source.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from jwtguard import exceptions, jwks
from jwtguard.cache import SharedCache
from jwtguard.conf import get_settings, parse_settings, pattern_problem, reset
from jwtguard.jwks import providers, resolved_provider_stats
from jwtguard.testing import FakeIssuer, RealmIssuer
from jwtguard.validation import TokenValidator, get_validator

ENTRA = "https://login.microsoftonline.com/{tid}/v2.0"
TENANT_A = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TENANT_B = "9188040d-6c67-4c5b-b112-36a304b66dad"
AUDIENCE = "api://orders"


def entra_iss(tid: str) -> str:
    return f"https://login.microsoftonline.com/{tid}/v2.0"


@pytest.fixture
def entra(issuer: FakeIssuer, settings: Any) -> FakeIssuer:
    """Entra ID multi-tenant: one pattern bound to ``tid``; every tenant's keys at one (local) common URL."""
    settings.JWTGUARD = {
        "ISSUERS": [
            {
                "ISSUER": ENTRA,
                "AUDIENCE": AUDIENCE,
                "JWKS_URL": issuer.jwks_url,
                "BIND_CLAIMS": {"tid": "tid"},
            }
        ]
    }
    return issuer


@pytest.fixture
def realms(settings: Any) -> Iterator[RealmIssuer]:
    with RealmIssuer() as server:
        for name in ("acme", "globex", "initech"):
            server.add_realm(name)
        settings.JWTGUARD = server.settings()
        yield server


def entra_token(issuer: FakeIssuer, tenant: str, **claims: Any) -> str:
    """A token whose iss names ``tenant``, and whose ``tid`` is that tenant unless given."""
    return issuer.mint(**{"iss": entra_iss(tenant), "aud": AUDIENCE, "tid": tenant, **claims})


class TestEntraTenants:
    def test_every_tenant_is_accepted_with_one_key_set_and_one_fetch(self, entra: FakeIssuer) -> None:
        validator = get_validator()
        for tid in (TENANT_A, TENANT_B, TENANT_A):
            token = validator.validate(entra_token(entra, tid))
            assert token.claims["tid"] == tid
            assert token.issuer.issuer == entra_iss(tid)
        assert entra.jwks_requests == 1
        assert resolved_provider_stats()["held"] == 1  # one key provider for every tenant: keyed by its URL

    def test_a_tid_other_than_the_one_iss_names_is_refused_after_the_signature(self, entra: FakeIssuer) -> None:
        # Entra signs every tenant's tokens with the same keys: without BIND_CLAIMS a token of tenant B could
        # claim tenant A's iss and pass.
        with pytest.raises(exceptions.InvalidIssuer, match="tid"):
            get_validator().validate(entra_token(entra, TENANT_A, tid=TENANT_B))
        with pytest.raises(exceptions.InvalidIssuer, match="tid"):
            get_validator().validate(entra_token(entra, TENANT_A, tid=None))

    def test_a_forged_signature_is_refused_before_the_binding_is_looked_at(self, entra: FakeIssuer) -> None:
        other = FakeIssuer("RS256")
        other.keys = [other.keys[0]]
        token = other.mint(iss=entra_iss(TENANT_A), aud=AUDIENCE, tid=TENANT_B, headers={"kid": entra.signing_key.kid})
        with pytest.raises(exceptions.InvalidSignature):
            get_validator().validate(token)

    def test_the_audience_and_algorithms_of_the_pattern_apply(self, entra: FakeIssuer) -> None:
        with pytest.raises(exceptions.InvalidAudience):
            get_validator().validate(entra_token(entra, TENANT_A, aud="api://other"))

    def test_a_token_without_iss_routes_nowhere(self, entra: FakeIssuer) -> None:
        with pytest.raises(exceptions.UnknownIssuer):
            get_validator().validate(entra.mint(iss=None, aud=AUDIENCE, tid=TENANT_A))
        assert entra.jwks_requests == 0


class TestKeycloakRealms:
    def test_each_realm_is_discovered_and_fetched_once(self, realms: RealmIssuer) -> None:
        validator = get_validator()
        for _round in range(3):
            for name, realm in realms.realms.items():
                token = validator.validate(realm.mint(sub=f"user-of-{name}"))
                assert token.issuer.issuer == realms.issuer_of(name)
        assert realms.fetches("discovery") == 3
        assert realms.fetches("certs") == 3
        assert resolved_provider_stats()["held"] == 3

    def test_a_realm_cannot_sign_for_another(self, realms: RealmIssuer) -> None:
        acme, globex = realms.realms["acme"], realms.realms["globex"]
        forged = globex.mint(iss=acme.issuer, key=globex.signing_key)
        with pytest.raises(exceptions.UnknownKeyId):
            get_validator().validate(forged)
        forged = globex.mint(iss=acme.issuer, headers={"kid": acme.signing_key.kid})
        with pytest.raises(exceptions.InvalidSignature):
            get_validator().validate(forged)

    def test_a_realm_the_server_does_not_have_is_a_503(self, realms: RealmIssuer) -> None:
        stranger = FakeIssuer("ES256", issuer=realms.issuer_of("nobody"))
        with pytest.raises(exceptions.KeySetUnavailable):
            get_validator().validate(stranger.mint())


# -- the near misses: refused as invalid_issuer, with no fetch ------------------------------------------

NEAR_MISSES = {
    "extra segment": f"https://login.microsoftonline.com/{TENANT_A}/x/v2.0",
    "extra segment before": f"https://login.microsoftonline.com/x/{TENANT_A}/v2.0",
    "encoded slash": f"https://login.microsoftonline.com/a%2F{TENANT_A}/v2.0",
    "dot segment": "https://login.microsoftonline.com/../v2.0",
    "dot in the value": f"https://login.microsoftonline.com/{TENANT_A}.x/v2.0",
    "empty value": "https://login.microsoftonline.com//v2.0",
    "different scheme": f"http://login.microsoftonline.com/{TENANT_A}/v2.0",
    "host that ends with the pattern's host": f"https://evil-login.microsoftonline.com/{TENANT_A}/v2.0",
    "subdomain of the pattern's host": f"https://x.login.microsoftonline.com/{TENANT_A}/v2.0",
    "pattern's host as a prefix": f"https://login.microsoftonline.com.evil.example/{TENANT_A}/v2.0",
    "upper-case host": f"https://LOGIN.microsoftonline.com/{TENANT_A}/v2.0",
    "upper-case path": f"https://login.microsoftonline.com/{TENANT_A}/V2.0",
    "trailing dot": f"https://login.microsoftonline.com./{TENANT_A}/v2.0",
    "userinfo": f"https://user@login.microsoftonline.com/{TENANT_A}/v2.0",
    "port": f"https://login.microsoftonline.com:443/{TENANT_A}/v2.0",
    "trailing slash": f"https://login.microsoftonline.com/{TENANT_A}/v2.0/",
    "query": f"https://login.microsoftonline.com/{TENANT_A}/v2.0?x=1",
    "fragment": f"https://login.microsoftonline.com/{TENANT_A}/v2.0#x",
    "newline after": f"https://login.microsoftonline.com/{TENANT_A}/v2.0\n",
    "colon in the value": "https://login.microsoftonline.com/a:b/v2.0",
    "at in the value": "https://login.microsoftonline.com/a@b/v2.0",
    "non-ASCII value": "https://login.microsoftonline.com/t\u0435nant/v2.0",
    "overlong value": f"https://login.microsoftonline.com/{'a' * 129}/v2.0",
    "the pattern itself": ENTRA,
    "the registered dot as any character": f"https://login.microsoftonline.com/{TENANT_A}/v2x0",
}


@pytest.mark.parametrize("iss", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_an_iss_that_almost_matches_is_refused_with_no_fetch(entra: FakeIssuer, iss: str) -> None:
    token = entra.mint(iss=iss, aud=AUDIENCE, tid=TENANT_A)
    with pytest.raises(exceptions.InvalidIssuer) as raised:
        get_validator().validate(token)
    assert raised.value.code == "invalid_issuer"
    assert entra.jwks_requests == 0
    assert providers() == []


HOST_NEAR_MISSES = [
    "https://a.b.auth.example.com/",  # two labels for one placeholder
    "https://ACME.auth.example.com/",  # a host in upper case: another spelling
    "https://acme.auth.example.com.evil.example/",
    "https://acme.auth.example.com:8443/",
    "https://acme.auth.example.com",  # no trailing slash: not the pattern
    "https://acme%2e.auth.example.com/",
]


@pytest.mark.parametrize("iss", HOST_NEAR_MISSES)
def test_a_host_label_placeholder_matches_one_lower_case_label(iss: str) -> None:
    settings = parse_settings({"ISSUER": "https://{tenant}.auth.example.com/", "AUDIENCE": AUDIENCE})
    assert settings.patterns[0].resolve(iss) is None
    assert settings.patterns[0].resolve("https://acme.auth.example.com/") is not None


class TestPatternSettings:
    @pytest.mark.parametrize(
        "pattern",
        [
            "https://{x}.com/",
            "https://login.{x}/",
            "https://{x}.co.uk/",
            "{scheme}://login.example.com/{t}",
            "https://login.example.com:{port}/{t}",
            "https://user@{x}.login.example.com/",
            "http://{x}.login.example.com/",
            "https://login.example.com/{a}{b}",
            "https://login.example.com/{t}?x",
            "https://login.example.com/{t",
            "https://login.example.com/{t}/{t}",
        ],
    )
    def test_a_pattern_that_could_match_too_much_is_refused(self, pattern: str) -> None:
        assert pattern_problem(pattern) is not None
        with pytest.raises(ImproperlyConfigured, match="ISSUER"):
            parse_settings({"ISSUER": pattern, "AUDIENCE": AUDIENCE})

    @pytest.mark.parametrize(
        "pattern",
        [ENTRA, "https://sso.example.com/realms/{realm}", "https://{t}.auth.example.com/", "http://127.0.0.1:80/r/{r}"],
    )
    def test_a_sound_pattern_is_accepted(self, pattern: str) -> None:
        assert pattern_problem(pattern) is None
        assert parse_settings({"ISSUER": pattern, "AUDIENCE": AUDIENCE}).patterns[0].pattern == pattern

    def test_jwks_url_may_use_the_issuers_placeholders_only(self) -> None:
        base = {"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": AUDIENCE}
        parsed = parse_settings({**base, "JWKS_URL": "https://keys.example.com/{realm}/certs"})
        config = parsed.patterns[0].resolve("https://sso.example.com/realms/acme")
        assert config is not None
        assert config.jwks_url == "https://keys.example.com/acme/certs"
        with pytest.raises(ImproperlyConfigured, match="JWKS_URL"):
            parse_settings({**base, "JWKS_URL": "https://keys.example.com/{tenant}/certs"})
        with pytest.raises(ImproperlyConfigured, match="JWKS_URL"):
            parse_settings({**base, "JWKS_URL": "https://{realm}.com/certs"})

    def test_bind_claims_name_placeholders_of_a_pattern(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="BIND_CLAIMS"):
            parse_settings({"ISSUER": ENTRA, "AUDIENCE": AUDIENCE, "BIND_CLAIMS": {"tid": "tenant"}})
        with pytest.raises(ImproperlyConfigured, match="BIND_CLAIMS"):
            parse_settings({"ISSUER": "https://a.example.com/", "AUDIENCE": AUDIENCE, "BIND_CLAIMS": {"tid": "x"}})

    def test_user_id_namespace_true_is_each_concrete_issuer(self) -> None:
        parsed = parse_settings({"ISSUER": ENTRA, "AUDIENCE": AUDIENCE, "USER_ID_NAMESPACE": True})
        config = parsed.patterns[0].resolve(entra_iss(TENANT_A))
        assert config is not None
        assert config.user_id_namespace == entra_iss(TENANT_A)

    def test_exact_issuers_are_tried_before_patterns(self) -> None:
        exact = "https://login.microsoftonline.com/common-tenant/v2.0"
        parsed = parse_settings(
            {"ISSUERS": [{"ISSUER": ENTRA, "AUDIENCE": AUDIENCE}, {"ISSUER": exact, "AUDIENCE": "api://exact"}]}
        )
        assert parsed.issuer_for(exact) is parsed.issuers[0]
        assert parsed.issuers[0].audience == ("api://exact",)


class TestBoundedPerProcess:
    def test_more_realms_than_the_lru_hold_no_more_providers_and_come_back_without_a_fetch(self, settings: Any) -> None:
        with RealmIssuer() as server:
            names = [f"tenant-{n}" for n in range(12)]
            for name in names:
                server.add_realm(name)
            settings.JWTGUARD = {**server.settings(), "ISSUER_CACHE_SIZE": 4}
            validator = get_validator()
            tokens = {name: server.realms[name].mint() for name in names}
            for name in names:
                validator.validate(tokens[name])
            assert server.fetches("certs") == len(names)
            stats = resolved_provider_stats()
            assert stats["held"] == 4
            assert stats["evicted"] == len(names) - 4
            assert len(providers()) == 4
            assert validator.issuers.held()["patterns"] == 4
            # The first realms were evicted: they come back from the shared cache, with no fetch at all.
            for name in names[:4]:
                validator.validate(tokens[name])
            assert server.fetches("certs") == len(names)
            assert server.fetches("discovery") == len(names)
            assert resolved_provider_stats()["held"] == 4

    def test_the_size_is_a_setting(self) -> None:
        assert get_settings().issuer_cache_size == 100
        with pytest.raises(ImproperlyConfigured, match="ISSUER_CACHE_SIZE"):
            parse_settings({"ISSUER": ENTRA, "AUDIENCE": AUDIENCE, "ISSUER_CACHE_SIZE": 0})


# -- new issuers: a bounded number of first fetches per minute, for the whole deployment ------------------

CAP = 4


@pytest.fixture
def minute(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The minute the new issuers are counted in, held still (``minute[0] += 1`` moves to the next one)."""
    held = [uuid.uuid4().int % 10**9]
    monkeypatch.setattr(jwks, "new_issuer_minute", lambda: held[0])
    return held


def exhaust_the_cap(minute: int) -> None:
    """Count the cap's worth of new issuers this minute, as other processes would have."""
    for _ in range(get_settings().new_issuer_fetches_per_minute):
        SharedCache("default").incr(f"{jwks.NEW_ISSUERS_KEY}:{minute}", 120)


def refused_after_asking(validator: TokenValidator, token: str) -> None:
    """The token's issuer was asked (it answered 404: a forged realm), not held back by the cap."""
    with pytest.raises(exceptions.KeySetUnavailable) as unavailable:
        validator.validate(token)
    assert "too many new issuers" not in str(unavailable.value)


def another_process() -> TokenValidator:
    """What another worker holds: no resolved issuer nor key provider of its own yet, the same shared cache."""
    reset()
    return get_validator()


class TestNewIssuersPerMinute:
    def test_a_flood_of_forged_realms_costs_at_most_the_cap_in_requests_and_a_known_realm_keeps_working(
        self, shared_cache: str, settings: Any, minute: list[int]
    ) -> None:
        with RealmIssuer() as server:
            acme = server.add_realm("acme")
            settings.JWTGUARD = {**server.settings(), "NEW_ISSUER_FETCHES_PER_MINUTE": CAP}
            validator = get_validator()
            validator.validate(acme.mint())
            refused = []
            for n in range(40):
                forged = FakeIssuer("ES256", issuer=server.issuer_of(f"forged-{uuid.uuid4().hex[:8]}-{n}"))
                with pytest.raises(exceptions.KeySetUnavailable) as unavailable:
                    validator.validate(forged.mint())
                if "too many new issuers this minute" in str(unavailable.value):
                    refused.append(unavailable.value)
                validator.validate(acme.mint())  # a realm already fetched is never held back
            # acme (which gave its count back once fetched), then CAP forged realms (each one request, answered
            # 404); the rest never asked.
            assert (server.fetches("discovery"), server.not_found) == (1, CAP)
            assert server.fetches("certs") == 1
            assert len(refused) == 40 - CAP
            assert all(1 <= exc.retry_after <= 60 and exc.code == "jwks_unavailable" for exc in refused)
            # A realm onboarded during the flood waits for the next minute, then gets in.
            globex = server.add_realm("globex")
            with pytest.raises(exceptions.KeySetUnavailable, match="too many new issuers"):
                validator.validate(globex.mint())
            minute[0] += 1
            validator.validate(globex.mint())
            assert server.fetches("discovery") == 2

    def test_the_count_is_one_for_every_process(self, shared_cache: str, settings: Any, minute: list[int]) -> None:
        with RealmIssuer() as server:
            acme = server.add_realm("acme").mint()
            settings.JWTGUARD = {**server.settings(), "NEW_ISSUER_FETCHES_PER_MINUTE": CAP}
            forged = [FakeIssuer("ES256", issuer=server.issuer_of(f"forged-{n}")).mint() for n in range(CAP + 1)]
            get_validator().validate(acme)
            first = get_validator()
            for token in forged[: CAP // 2]:
                refused_after_asking(first, token)
            second = another_process()
            for token in forged[CAP // 2 : CAP]:
                refused_after_asking(second, token)
            for validator in (second, None):
                validator = validator or another_process()
                with pytest.raises(exceptions.KeySetUnavailable, match="too many new issuers"):
                    validator.validate(forged[CAP])
                validator.validate(acme)  # fetched by the first process: read from the shared cache
            assert (server.not_found, server.fetches("certs")) == (CAP, 1)

    def test_genuine_new_issuers_give_their_count_back(
        self, shared_cache: str, settings: Any, minute: list[int]
    ) -> None:
        with RealmIssuer() as server:
            tokens = [server.add_realm(f"tenant-{n}").mint() for n in range(3 * CAP)]
            settings.JWTGUARD = {**server.settings(), "NEW_ISSUER_FETCHES_PER_MINUTE": CAP}
            for index, token in enumerate(tokens):  # an onboarding, or every tenant cold after a Redis restart
                (get_validator() if index % 2 else another_process()).validate(token)
            assert server.fetches("certs") == 3 * CAP

    def test_a_forged_realm_counts_once_whatever_the_processes_that_see_it(
        self, settings: Any, minute: list[int]
    ) -> None:
        with RealmIssuer() as server:
            settings.JWTGUARD = {**server.settings(), "NEW_ISSUER_FETCHES_PER_MINUTE": 2}
            forged = FakeIssuer("ES256", issuer=server.issuer_of("nobody")).mint()
            for process in (get_validator, get_validator, another_process, another_process):
                with pytest.raises(exceptions.KeySetUnavailable) as unavailable:
                    process().validate(forged)
                assert "too many new issuers" not in str(unavailable.value)
            assert server.not_found == 1  # then that issuer's backoff
            validator = another_process()
            validator.validate(server.add_realm("acme").mint())  # the second new issuer of the minute

    def test_on_a_per_process_cache_the_cap_holds_for_each_process(self, settings: Any, minute: list[int]) -> None:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        with RealmIssuer() as server:
            settings.JWTGUARD = {**server.settings(), "NEW_ISSUER_FETCHES_PER_MINUTE": 2}
            validator = get_validator()
            for n in range(10):
                with pytest.raises(exceptions.KeySetUnavailable):
                    validator.validate(FakeIssuer("ES256", issuer=server.issuer_of(f"forged-{n}")).mint())
            assert server.not_found == 2

    def test_a_pattern_with_one_jwks_url_for_all_is_not_counted(self, entra: FakeIssuer, minute: list[int]) -> None:
        exhaust_the_cap(minute[0])
        for tid in (TENANT_A, TENANT_B, str(uuid.uuid4())):
            get_validator().validate(entra_token(entra, tid))
        assert entra.jwks_requests == 1

    def test_an_issuer_of_issuers_is_not_counted(
        self, jwtguard_settings: FakeIssuer, settings: Any, minute: list[int]
    ) -> None:
        settings.JWTGUARD = {**settings.JWTGUARD, "NEW_ISSUER_FETCHES_PER_MINUTE": CAP}
        exhaust_the_cap(minute[0])
        get_validator().validate(jwtguard_settings.mint())
        assert jwtguard_settings.jwks_requests == 1

    def test_the_cap_is_a_setting(self) -> None:
        assert get_settings().new_issuer_fetches_per_minute == 30
        for bad in (0, -1, 1.5, True, "30", None):
            with pytest.raises(ImproperlyConfigured, match="NEW_ISSUER_FETCHES_PER_MINUTE"):
                parse_settings({"ISSUER": ENTRA, "AUDIENCE": AUDIENCE, "NEW_ISSUER_FETCHES_PER_MINUTE": bad})


# -- any iss at all -------------------------------------------------------------------------------------

_ISS_ALPHABET = st.sampled_from(list("aAzZ09-_~./:%?#@ \n\u0435\u200b") + ["%2F", "%2e", "v2.0", TENANT_A])
_PATTERNS = parse_settings(
    {
        "ISSUERS": [
            {"ISSUER": ENTRA, "AUDIENCE": AUDIENCE},
            {"ISSUER": "https://{tenant}.auth.example.com/realms/{realm}", "AUDIENCE": AUDIENCE},
        ]
    }
).patterns


@hypothesis.settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["https://login.microsoftonline.com/", "https://", "https://x.auth.example.com/realms/"]),
    middle=st.lists(_ISS_ALPHABET, max_size=8).map("".join),
    suffix=st.sampled_from(["/v2.0", ".auth.example.com/realms/r", "", "/"]),
)
def test_whatever_a_pattern_matches_is_the_pattern_with_safe_values(prefix: str, middle: str, suffix: str) -> None:
    iss = prefix + middle + suffix
    for pattern in _PATTERNS:
        config = pattern.resolve(iss)
        if config is None:
            continue
        values = pattern.regex.fullmatch(iss)
        assert values is not None
        rebuilt = pattern.pattern
        for name, value in values.groupdict().items():
            assert re.fullmatch(r"[A-Za-z0-9_~-]{1,128}", value), value
            rebuilt = rebuilt.replace("{" + name + "}", value)
        assert rebuilt == iss == config.issuer
