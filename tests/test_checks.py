"""System checks: one condition per id, a sentence naming the key, a hint; and `manage.py check` end to end."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.cache.backends.dummy import DummyCache
from django.core.checks import Error, Info, Tags, Warning
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django_redis.client import SentinelClient

from jwtguard import checks
from jwtguard.checks import CHECK_IDS, check_settings
from tests.support.loopback import real_redis_cache
from tests.support.sentinel import documented_cache

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "ISSUER": "https://tenant.eu.auth0.com/",
    "AUDIENCE": "https://api.example.com",
}
REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


class MyDummy(DummyCache):
    """A site's own DummyCache subclass: still keeps nothing."""


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


@pytest.fixture
def redis_caches(settings: Any) -> None:
    settings.CACHES = {"default": REDIS}


def run_checks(settings: Any, jwtguard: object, caches: dict[str, Any] | None = None) -> list[Any]:
    settings.JWTGUARD = jwtguard
    if caches is not None:
        settings.CACHES = caches
    return check_settings()


class TestIds:
    def test_each_id_is_raised_in_exactly_one_place(self) -> None:
        source = Path(checks.__file__).read_text()
        raised = re.findall(r'id="(jwtguard\.[EWI]\d{3})"', source)
        assert sorted(raised) == sorted(CHECK_IDS), "every id in CHECK_IDS, raised once, and no other"
        assert len(raised) == len(set(raised))

    def test_errors_are_e_warnings_w_and_infos_i(self, settings: Any) -> None:
        source = Path(checks.__file__).read_text()
        found = re.findall(r'\b(Error|Warning|Info)\(\s*(?:.|\n)*?id="(jwtguard\.[EWI]\d{3})"', source)
        assert len(found) == len(CHECK_IDS)
        for kind, check_id in found:
            assert check_id[9] == kind[0], check_id

    def test_the_docs_list_every_id_with_its_condition(self) -> None:
        page = (ROOT / "docs" / "checks.md").read_text()
        documented = re.findall(r"^## `(jwtguard\.[EWI]\d{3})`", page, flags=re.MULTILINE)
        assert documented == sorted(CHECK_IDS)


class TestConditions:
    def test_good_settings_on_redis_pass(self, settings: Any, redis_caches: None) -> None:
        assert run_checks(settings, GOOD) == []

    def test_unreadable_settings_are_e001_with_the_parser_message(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "JWKS_CACHE_TTL": "ten minutes"})
        assert ids(messages) == ["jwtguard.E001"]
        assert "JWTGUARD['JWKS_CACHE_TTL']" in messages[0].msg
        assert messages[0].hint

    def test_a_setting_that_is_not_a_dict_is_e001(self, settings: Any) -> None:
        assert ids(run_checks(settings, ["ISSUER"])) == ["jwtguard.E001"]

    def test_unknown_keys_are_e001(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "AUDIENCES": ["x"]})
        assert ids(messages) == ["jwtguard.E001"]
        assert "AUDIENCES" in messages[0].msg

    def test_no_jwtguard_setting_at_all_is_e002_and_e003(self, settings: Any) -> None:
        del settings.JWTGUARD
        assert ids(check_settings()) == ["jwtguard.E002", "jwtguard.E003"]

    def test_missing_issuer_is_e002(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {"AUDIENCE": "https://api.example.com"})
        assert ids(messages) == ["jwtguard.E002"]
        assert "JWTGUARD['ISSUER'] is not set" in messages[0].msg
        assert "iss" in messages[0].hint

    def test_missing_audience_is_e003_naming_the_issuer(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {"ISSUER": GOOD["ISSUER"]})
        assert ids(messages) == ["jwtguard.E003"]
        assert "JWTGUARD['AUDIENCE'] is not set for issuer 'https://tenant.eu.auth0.com/'" in messages[0].msg

    def test_missing_audience_in_one_of_several_issuers_names_that_entry(
        self, settings: Any, redis_caches: None
    ) -> None:
        messages = run_checks(settings, {"ISSUERS": [GOOD, {"ISSUER": "https://login.example.org/"}]})
        assert ids(messages) == ["jwtguard.E003"]
        assert "JWTGUARD['ISSUERS'][1]['AUDIENCE']" in messages[0].msg

    @pytest.mark.parametrize("algorithms", [["none"], ["RS256", "HS256"], ["hs512"], ["NONE", "ES256"]])
    def test_none_or_hmac_algorithms_are_e004(self, algorithms: list[str], settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "ALGORITHMS": algorithms})
        assert ids(messages) == ["jwtguard.E004"]
        assert "JWTGUARD['ALGORITHMS']" in messages[0].msg
        assert "RS256" in messages[0].hint

    def test_a_cache_alias_missing_from_caches_is_e005(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "CACHE_ALIAS": "jwks"})
        assert ids(messages) == ["jwtguard.E005"]
        assert "'jwks'" in messages[0].msg
        assert "['default']" in messages[0].hint

    def test_a_per_process_cache_is_w001(self, settings: Any) -> None:
        messages = run_checks(settings, GOOD, {"default": LOCMEM})
        assert ids(messages) == ["jwtguard.W001"]
        assert isinstance(messages[0], Warning)
        assert "LocMemCache" in messages[0].msg
        assert "RedisCache" in messages[0].hint

    def test_issuer_source_alone_has_its_cache_and_dpop_checked(self, settings: Any) -> None:
        # Its answers, and by default its tenants' key sets, live in the top-level CACHE_ALIAS.
        source = {"ISSUER_SOURCE": "tests.tenants.source.issuer_source"}
        dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        assert ids(run_checks(settings, source, dummy)) == ["jwtguard.E008"]
        assert ids(run_checks(settings, {**source, "CACHE_ALIAS": "jwks"}, {"default": REDIS})) == ["jwtguard.E005"]
        public = {"DPOP": "allowed", "DPOP_PUBLIC_URL": "https://api.example.com"}
        assert ids(run_checks(settings, {**source, **public}, {"default": REDIS})) == []
        messages = run_checks(settings, {**source, **public}, {"default": LOCMEM})
        assert ids(messages) == ["jwtguard.W001", "jwtguard.W010"]
        assert "JWTGUARD['CACHE_ALIAS']" in messages[0].msg
        # A top-level key no answer could be read over fails every answer (503s): said at start-up.
        [message] = run_checks(settings, {**source, "ALGORITHMS": ["HS256"]}, {"default": REDIS})
        assert message.id == "jwtguard.E001"
        assert "HS256" in message.msg
        # Checked once when an ISSUERS entry already has the same cache.
        assert ids(run_checks(settings, {**source, "ISSUERS": [GOOD]}, dummy)) == ["jwtguard.E008"]

    @pytest.mark.parametrize("backend", ["django.core.cache.backends.dummy.DummyCache", "tests.test_checks.MyDummy"])
    def test_a_dummy_cache_is_e008_instead_of_w001(self, backend: str, settings: Any) -> None:
        messages = run_checks(settings, GOOD, {"default": {"BACKEND": backend}})
        assert ids(messages) == ["jwtguard.E008"]
        assert isinstance(messages[0], Error)
        assert "a DummyCache, which keeps nothing" in messages[0].msg
        assert "a fetch per process per cooldown" in messages[0].msg
        assert "shares (Redis)" in messages[0].hint

    @pytest.mark.parametrize(
        ("options", "global_setting"), [({"IGNORE_EXCEPTIONS": True}, False), ({}, True), ({"SOCKET_TIMEOUT": 1}, True)]
    )
    def test_django_redis_ignoring_exceptions_is_w009(
        self, settings: Any, options: dict[str, Any], global_setting: bool
    ) -> None:
        settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = global_setting
        cache = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}
        messages = run_checks(settings, GOOD, {"default": {**cache, "OPTIONS": options}})
        assert ids(messages) == ["jwtguard.W009"]
        assert isinstance(messages[0], Warning)
        assert "IGNORE_EXCEPTIONS" in messages[0].msg
        assert "cache alias of its own" in messages[0].hint

    @pytest.mark.parametrize(("options", "global_setting"), [({}, False), ({"IGNORE_EXCEPTIONS": False}, True)])
    def test_django_redis_that_raises_passes(
        self, settings: Any, options: dict[str, Any], global_setting: bool
    ) -> None:
        settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = global_setting
        cache = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}
        assert run_checks(settings, GOOD, {"default": {**cache, "OPTIONS": options}}) == []

    @pytest.mark.parametrize(
        "backend",
        [
            "django.core.cache.backends.redis.RedisCache",
            "django_redis.cache.RedisCache",
            "django.core.cache.backends.db.DatabaseCache",
        ],
    )
    def test_shared_caches_pass(self, backend: str, settings: Any) -> None:
        assert run_checks(settings, GOOD, {"default": {"BACKEND": backend, "LOCATION": "x"}}) == []

    @pytest.mark.parametrize(
        ("cache", "named"),
        [
            pytest.param(
                {
                    "BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": "redis://mymaster/0",
                    "OPTIONS": {
                        "CLIENT_CLASS": "django_redis.client.SentinelClient",
                        "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                        "SENTINELS": [("127.0.0.1", 26379)],
                    },
                },
                "SentinelClient",
                id="django-redis-SentinelClient",
            ),
            pytest.param(
                {**REDIS, "LOCATION": ["redis://primary:6379/0", "redis://replica:6379/0"]},
                "several LOCATIONs",
                id="RedisCache-list",
            ),
            pytest.param(
                {**REDIS, "LOCATION": "redis://primary:6379/0;redis://replica:6379/0"},
                "several LOCATIONs",
                id="RedisCache-string",
            ),
            pytest.param(
                {
                    "BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": "redis://mymaster/0?is_master=1,redis://mymaster/0?is_master=0",
                    "OPTIONS": {"CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory"},
                },
                "several LOCATIONs",
                id="django-redis-is_master-0",
            ),
            pytest.param(
                {**REDIS, "OPTIONS": {"read_from_replicas": True}},
                "'read_from_replicas'",
                id="cluster-read_from_replicas",
            ),
            pytest.param(
                {**REDIS, "OPTIONS": {"load_balancing_strategy": "round_robin_replicas"}},
                "'load_balancing_strategy'",
                id="cluster-load_balancing_strategy",
            ),
        ],
    )
    def test_a_cache_that_reads_from_replicas_is_w008(self, cache: dict[str, Any], named: str, settings: Any) -> None:
        messages = run_checks(settings, {**GOOD, "CACHE_ALIAS": "jwks"}, {"default": REDIS, "jwks": cache})
        assert ids(messages) == ["jwtguard.W008"]
        assert isinstance(messages[0], Warning)
        assert messages[0].msg.startswith("JWTGUARD['CACHE_ALIAS'] is 'jwks', ")
        assert named in messages[0].msg
        assert "django_redis.client.DefaultClient" in messages[0].hint
        assert "SentinelConnectionFactory" in messages[0].hint

    @pytest.mark.parametrize(
        "cache",
        [
            pytest.param(documented_cache(), id="docs-sentinel-recipe"),
            pytest.param(
                {
                    "BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": ["redis://a:6379/0", "redis://b:6379/0"],
                    "OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"},
                },
                id="django-redis-ShardClient",
            ),
            pytest.param(
                {
                    "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                    "LOCATION": ["10.0.0.1:11211", "10.0.0.2:11211"],
                },
                id="memcached-shards",
            ),
            pytest.param({**REDIS, "OPTIONS": {"read_from_replicas": False}}, id="read_from_replicas-False"),
        ],
    )
    def test_caches_whose_reads_go_to_the_primary_pass(self, cache: dict[str, Any], settings: Any) -> None:
        assert run_checks(settings, GOOD, {"default": cache}) == []

    def test_a_subclass_of_sentinel_client_is_w008_too(self, settings: Any) -> None:
        cache = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://mymaster/0",
            "OPTIONS": {"CLIENT_CLASS": f"{__name__}.OwnSentinelClient"},
        }
        assert ids(run_checks(settings, GOOD, {"default": cache})) == ["jwtguard.W008"]

    def test_a_backend_that_cannot_be_imported_is_left_to_django(self, settings: Any) -> None:
        assert run_checks(settings, GOOD, {"default": {"BACKEND": "nowhere.Cache"}}) == []

    @pytest.mark.parametrize(
        ("overrides", "key"),
        [
            ({"JWKS_URL": "http://idp.example.com/jwks.json"}, "JWKS_URL"),
            ({"ISSUER": "http://idp.example.com/"}, "ISSUER"),
            ({"JWKS_URL": "http://10.0.0.5/jwks.json"}, "JWKS_URL"),
        ],
    )
    def test_plain_http_to_a_remote_host_is_e006(
        self, overrides: dict[str, str], key: str, settings: Any, redis_caches: None
    ) -> None:
        messages = run_checks(settings, {**GOOD, **overrides})
        assert ids(messages) == ["jwtguard.E006"]
        assert f"JWTGUARD[{key!r}]" in messages[0].msg
        assert "https" in messages[0].hint

    @pytest.mark.parametrize(
        "overrides",
        [
            {"JWKS_URL": "http://127.0.0.1:8001/.well-known/jwks.json"},
            {"ISSUER": "http://localhost:8001/"},
            {"ISSUER": "http://[::1]:8001/"},
            # The issuer is only compared with `iss` when the JWKS URL is given: nothing is fetched from it.
            {"ISSUER": "http://idp.example.com/", "JWKS_URL": "https://idp.example.com/jwks.json"},
        ],
    )
    def test_plain_http_to_loopback_or_never_fetched_passes(
        self, overrides: dict[str, str], settings: Any, redis_caches: None
    ) -> None:
        assert run_checks(settings, {**GOOD, **overrides}) == []

    def test_leeway_over_five_minutes_is_w002(self, settings: Any, redis_caches: None) -> None:
        assert run_checks(settings, {**GOOD, "LEEWAY": 300}) == []
        messages = run_checks(settings, {**GOOD, "LEEWAY": 301})
        assert ids(messages) == ["jwtguard.W002"]
        assert "JWTGUARD['LEEWAY'] is 301 seconds" in messages[0].msg

    def test_cooldown_not_shorter_than_ttl_is_w003(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "JWKS_CACHE_TTL": 60, "JWKS_REFRESH_COOLDOWN": 60})
        assert ids(messages) == ["jwtguard.W003"]
        assert "JWTGUARD['JWKS_REFRESH_COOLDOWN'] (60s)" in messages[0].msg

    def test_l1_recheck_not_shorter_than_ttl_is_w004(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(
            settings, {**GOOD, "JWKS_CACHE_TTL": 60, "JWKS_REFRESH_COOLDOWN": 10, "JWKS_L1_RECHECK": 90}
        )
        assert ids(messages) == ["jwtguard.W004"]

    def test_max_stale_shorter_than_ttl_is_w005_unless_off(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "JWKS_MAX_STALE": 300})
        assert ids(messages) == ["jwtguard.W005"]
        assert "JWTGUARD['JWKS_MAX_STALE'] (300s)" in messages[0].msg
        assert run_checks(settings, {**GOOD, "JWKS_MAX_STALE": 0}) == []

    def test_no_cooldown_is_w006(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(settings, {**GOOD, "JWKS_REFRESH_COOLDOWN": 0})
        assert ids(messages) == ["jwtguard.W006"]
        assert messages[0].msg.startswith("JWTGUARD['JWKS_REFRESH_COOLDOWN'] is 0")

    @pytest.mark.parametrize("token_type", ["at jwt", "application/at+jwt; charset=utf-8", "a/b/c", "at+jwt\n"])
    def test_a_token_type_that_is_not_a_media_type_is_e007(
        self, token_type: str, settings: Any, redis_caches: None
    ) -> None:
        messages = run_checks(settings, {**GOOD, "TOKEN_TYPE": token_type})
        assert ids(messages) == ["jwtguard.E007"]
        assert "JWTGUARD['TOKEN_TYPE']" in messages[0].msg
        assert "'at+jwt'" in messages[0].hint

    @pytest.mark.parametrize(
        ("key", "url"),
        [
            ("ISSUER", "https://{tenant}.com/"),
            ("ISSUER", "https://login.{domain}/{tid}/v2.0"),
            ("ISSUER", "{scheme}://login.example.com/{tid}"),
            ("ISSUER", "https://login.example.com:{port}/{tid}"),
            ("ISSUER", "http://{tenant}.login.example.com/"),
            ("JWKS_URL", "https://{realm}.com/certs"),
        ],
    )
    def test_a_pattern_that_could_match_too_much_is_e009(
        self, key: str, url: str, settings: Any, redis_caches: None
    ) -> None:
        entry = {"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": "https://api.example.com", key: url}
        messages = run_checks(settings, {"ISSUERS": [entry]})
        assert ids(messages) == ["jwtguard.E009"]
        assert f"JWTGUARD['ISSUERS'][0][{key!r}] pattern {url!r}" in messages[0].msg

    def test_sound_patterns_and_a_source_alone_pass(self, settings: Any, redis_caches: None) -> None:
        patterns = {
            "ISSUERS": [
                {"ISSUER": "https://login.microsoftonline.com/{tid}/v2.0", "AUDIENCE": "api://orders"},
                {"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": "https://api.example.com"},
                GOOD,
            ],
            "TOKEN_TYPE": "at+jwt",
            "USER_ID_NAMESPACE": True,
        }
        assert run_checks(settings, patterns) == []
        assert run_checks(settings, {"ISSUER_SOURCE": "tests.tenants.source.issuer_source"}) == []

    @pytest.mark.parametrize("token_type", ["at+jwt", "application/at+jwt", "JWT"])
    def test_media_types_pass(self, token_type: str, settings: Any, redis_caches: None) -> None:
        assert run_checks(settings, {**GOOD, "TOKEN_TYPE": token_type}) == []

    @pytest.mark.parametrize(
        "audience",
        ["my-api", "0oa1b2c3d4e5f6g7h8i9", "6e74172b-be56-4843-9ff4-e66a39bb12e3", ["https://api.example.com", "abc"]],
    )
    def test_a_client_id_audience_without_token_type_is_i001(
        self, audience: Any, settings: Any, redis_caches: None
    ) -> None:
        messages = run_checks(settings, {**GOOD, "AUDIENCE": audience})
        assert ids(messages) == ["jwtguard.I001"]
        assert isinstance(messages[0], Info)
        assert "JWTGUARD['AUDIENCE']" in messages[0].msg
        assert "TOKEN_TYPE" in messages[0].hint

    @pytest.mark.parametrize(
        "overrides",
        [
            {"AUDIENCE": "https://api.example.com"},
            {"AUDIENCE": "api://6e74172b-be56-4843-9ff4-e66a39bb12e3"},
            {"AUDIENCE": "urn:example:api"},
            {"AUDIENCE": "user-management/apiview-drf-api/api/v1"},
            {"AUDIENCE": "my-api", "TOKEN_TYPE": "at+jwt"},
            {"AUDIENCE": "4r3kc1ient1dexample", "AUDIENCE_CLAIM": "client_id"},
        ],
    )
    def test_api_identifiers_typed_tokens_and_client_id_audiences_pass(
        self, overrides: dict[str, str], settings: Any, redis_caches: None
    ) -> None:
        assert run_checks(settings, {**GOOD, **overrides}) == []

    def test_several_issuers_sharing_bare_user_ids_is_w007(self, settings: Any, redis_caches: None) -> None:
        other = {**GOOD, "ISSUER": "https://b.example/"}
        messages = run_checks(settings, {"ISSUERS": [GOOD, other]})
        assert ids(messages) == ["jwtguard.W007"]
        assert "JWTGUARD['USER_ID_NAMESPACE']" in messages[0].msg
        assert GOOD["ISSUER"] in messages[0].msg
        assert "True" in messages[0].hint

    def test_a_pattern_with_bare_user_ids_is_w007_alone(self, settings: Any, redis_caches: None) -> None:
        pattern = {"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": "https://api.example.com"}
        messages = run_checks(settings, {"ISSUERS": [pattern]})
        assert ids(messages) == ["jwtguard.W007"]
        assert pattern["ISSUER"] in messages[0].msg
        assert run_checks(settings, {"ISSUERS": [{**pattern, "USER_ID_NAMESPACE": True}]}) == []

    @pytest.mark.parametrize(
        ("top", "second"),
        [
            ({"USER_ID_NAMESPACE": True}, {}),  # each issuer its own
            ({"USER_ID_NAMESPACE": "one-population"}, {}),  # shared on purpose
            ({}, {"USER_ID_NAMESPACE": True}),  # one bare namespace cannot collide with itself
        ],
        ids=["true", "label", "one-bare"],
    )
    def test_issuers_in_namespaces_of_their_own_pass(
        self, top: dict[str, Any], second: dict[str, Any], settings: Any, redis_caches: None
    ) -> None:
        entries = [GOOD, {**GOOD, "ISSUER": "https://b.example/", **second}]
        assert run_checks(settings, {**top, "ISSUERS": entries}) == []

    def test_each_issuer_is_checked_and_named(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(
            settings,
            {
                "LEEWAY": 600,
                "USER_ID_NAMESPACE": True,
                "ISSUERS": [GOOD, {"ISSUER": "https://login.example.org/", "AUDIENCE": "api:x", "LEEWAY": 30}],
            },
        )
        assert ids(messages) == ["jwtguard.W002"]
        # Inherited from the top level: named there, where it is to be changed.
        assert "JWTGUARD['LEEWAY'] is 600 seconds" in messages[0].msg

    def test_a_key_set_in_an_entry_is_named_in_that_entry(self, settings: Any, redis_caches: None) -> None:
        messages = run_checks(
            settings,
            {"USER_ID_NAMESPACE": True, "ISSUERS": [GOOD, {**GOOD, "ISSUER": "https://b.example/", "LEEWAY": 900}]},
        )
        assert [m.msg.split(" is ")[0] for m in messages] == ["JWTGUARD['ISSUERS'][1]['LEEWAY']"]

    def test_every_message_is_a_sentence_with_a_hint(self, settings: Any) -> None:
        bad = {"ISSUERS": [{"ALGORITHMS": ["none"]}]}
        messages = [
            *run_checks(settings, bad),
            *run_checks(
                settings,
                {
                    **GOOD,
                    "CACHE_ALIAS": "default",
                    "JWKS_URL": "http://idp.example.com/jwks",
                    "LEEWAY": 3600,
                    "JWKS_CACHE_TTL": 10,
                    "JWKS_L1_RECHECK": 10,
                    "JWKS_REFRESH_COOLDOWN": 10,
                    "JWKS_MAX_STALE": 5,
                },
                {"default": LOCMEM},
            ),
        ]
        assert sorted(ids(messages)) == sorted(
            [
                "jwtguard.E002",
                "jwtguard.E003",
                "jwtguard.E004",
                "jwtguard.W001",
                "jwtguard.E006",
                "jwtguard.W002",
                "jwtguard.W003",
                "jwtguard.W004",
                "jwtguard.W005",
            ]
        )
        for message in messages:
            assert message.msg.startswith("JWTGUARD["), message.msg
            assert message.msg.endswith("."), message.msg
            assert message.hint
            assert message.hint.endswith((".", ")")), message.hint
            assert isinstance(message, Error) == message.id.startswith("jwtguard.E")


class OwnSentinelClient(SentinelClient):
    """A project's own client on top of django-redis's SentinelClient: it still reads from replicas."""


class TestTags:
    """The security checks run under Django's ``security`` tag (``manage.py check --tag security``)."""

    EVERYTHING_WRONG = {
        **GOOD,
        "JWKS_URL": "http://idp.example.com/jwks",
        "LEEWAY": 3600,
        "JWKS_CACHE_TTL": 10,
        "JWKS_L1_RECHECK": 10,
        "JWKS_REFRESH_COOLDOWN": 0,
        "JWKS_MAX_STALE": 5,
    }

    def test_the_security_tag_runs_the_security_checks_only(self, settings: Any) -> None:
        settings.JWTGUARD = self.EVERYTHING_WRONG
        settings.CACHES = {"default": LOCMEM}
        found = {m.id for m in registry.run_checks(tags=[Tags.security]) if m.id.startswith("jwtguard.")}
        assert found == {"jwtguard.E006", "jwtguard.W002", "jwtguard.W006"}
        assert found <= checks.SECURITY_CHECK_IDS
        everything = {m.id for m in registry.run_checks() if m.id.startswith("jwtguard.")}
        assert everything == set(ids(check_settings()))
        assert everything - found == {"jwtguard.W001", "jwtguard.W004", "jwtguard.W005"}

    def test_a_missing_audience_and_hmac_are_security_findings(self, settings: Any, redis_caches: None) -> None:
        settings.JWTGUARD = {"ISSUER": GOOD["ISSUER"], "ALGORITHMS": ["HS256"]}
        found = [m.id for m in registry.run_checks(tags=[Tags.security]) if m.id.startswith("jwtguard.")]
        assert found == ["jwtguard.E003", "jwtguard.E004"]

    def test_the_docs_name_the_tag_of_each_security_check(self) -> None:
        page = (ROOT / "docs" / "checks.md").read_text()
        sections = re.split(r"^## ", page, flags=re.MULTILINE)[1:]
        tagged = {section[1:14] for section in sections if "Tag: `security`" in section}
        assert tagged == checks.SECURITY_CHECK_IDS


class TestManagePyCheck:
    """`manage.py check` itself: the checks are registered by the app config."""

    def test_locmem_cache_prints_the_per_process_warning(self, settings: Any) -> None:
        settings.JWTGUARD = GOOD
        settings.CACHES = {"default": LOCMEM}
        out, err = StringIO(), StringIO()
        call_command("check", stdout=out, stderr=err)
        assert "(jwtguard.W001)" in err.getvalue()
        assert "LocMemCache that lives in one process" in err.getvalue()

    @pytest.mark.parametrize(
        "cache",
        [
            pytest.param(real_redis_cache(), id="RedisCache"),
            pytest.param(
                {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}, id="django-redis"
            ),
        ],
    )
    def test_redis_prints_nothing(self, cache: dict[str, Any], settings: Any) -> None:
        settings.JWTGUARD = GOOD
        settings.CACHES = {"default": cache}
        out, err = StringIO(), StringIO()
        call_command("check", stdout=out, stderr=err)
        assert err.getvalue() == ""
        assert "System check identified no issues" in out.getvalue()

    def test_errors_fail_the_check(self, settings: Any) -> None:
        settings.JWTGUARD = {"ISSUER": GOOD["ISSUER"]}
        with pytest.raises(SystemCheckError, match=r"jwtguard\.E003"):
            call_command("check", stdout=StringIO(), stderr=StringIO())

    def test_a_silenced_warning_is_silent(self, settings: Any) -> None:
        settings.JWTGUARD = GOOD
        settings.CACHES = {"default": LOCMEM}
        settings.SILENCED_SYSTEM_CHECKS = ["jwtguard.W001"]
        err = StringIO()
        call_command("check", stdout=StringIO(), stderr=err)
        assert "jwtguard" not in err.getvalue()


class TestDPoP:
    def test_dpop_on_a_per_process_cache_is_w010(self, settings: Any) -> None:
        settings.ALLOWED_HOSTS = ["api.example.com"]
        assert ids(run_checks(settings, {**GOOD, "DPOP": "allowed"}, {"default": LOCMEM})) == [
            "jwtguard.W001",
            "jwtguard.W010",
        ]
        assert "jwtguard.W010" in checks.SECURITY_CHECK_IDS
        assert ids(run_checks(settings, {**GOOD, "DPOP": "off"}, {"default": LOCMEM})) == ["jwtguard.W001"]

    def test_dpop_with_no_trustworthy_url_is_w011(self, settings: Any, redis_caches: None) -> None:
        settings.ALLOWED_HOSTS = ["*"]
        messages = run_checks(settings, {**GOOD, "DPOP": "required"})
        assert ids(messages) == ["jwtguard.W011"]
        assert messages[0].msg.startswith("JWTGUARD['DPOP_PUBLIC_URL']")
        assert (
            ids(run_checks(settings, {**GOOD, "DPOP": "required", "DPOP_PUBLIC_URL": "https://api.example.com"})) == []
        )
        settings.ALLOWED_HOSTS = ["api.example.com"]
        assert ids(run_checks(settings, {**GOOD, "DPOP": "required"})) == []
