"""conf: the JWTGUARD dict becomes frozen, typed objects; every bad value names its key."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from jwtguard import conf
from jwtguard.conf import NO_ISS, get_settings, parse_settings

MINIMAL = {"ISSUER": "https://tenant.eu.auth0.com/", "AUDIENCE": "https://api.example.com"}


def test_defaults_follow_the_design() -> None:
    settings = parse_settings(MINIMAL)
    (issuer,) = settings.issuers
    assert issuer.issuer == "https://tenant.eu.auth0.com/"
    assert issuer.audience == ("https://api.example.com",)
    assert issuer.jwks_url is None
    assert issuer.algorithms == ("RS256",)
    assert issuer.cache_alias == "default"
    assert (issuer.jwks_cache_ttl, issuer.jwks_refresh_cooldown, issuer.jwks_max_stale) == (600, 1, 86400)
    assert (issuer.http_timeout, issuer.leeway) == (5, 60)
    assert issuer.required_claims == ()
    assert issuer.discovery_url == "https://tenant.eu.auth0.com/.well-known/openid-configuration"
    assert settings.strict_auth_header is False
    assert settings.max_token_bytes == 8192


def test_settings_are_frozen() -> None:
    settings = parse_settings(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.issuers[0].leeway = 0  # type: ignore[misc]


def test_audience_may_be_a_list() -> None:
    settings = parse_settings({**MINIMAL, "AUDIENCE": ["a", "b"]})
    assert settings.issuers[0].audience == ("a", "b")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({**MINIMAL, "AUDIENCES": "x"}, "AUDIENCES"),
        ({"ISSUER": "https://i/"}, "AUDIENCE"),
        ({"AUDIENCE": "a"}, "ISSUER"),
        ({**MINIMAL, "AUDIENCE": []}, "AUDIENCE"),
        ({**MINIMAL, "AUDIENCE": 42}, "AUDIENCE"),
        ({**MINIMAL, "ALGORITHMS": ["RS256", "none"]}, "ALGORITHMS"),
        ({**MINIMAL, "ALGORITHMS": ["NONE"]}, "ALGORITHMS"),
        ({**MINIMAL, "ALGORITHMS": ["RS256", "HS256"]}, "ALGORITHMS"),
        ({**MINIMAL, "ALGORITHMS": ["XS999"]}, "ALGORITHMS"),
        ({**MINIMAL, "ALGORITHMS": "RS256"}, "ALGORITHMS"),
        ({**MINIMAL, "ALGORITHMS": []}, "ALGORITHMS"),
        ({**MINIMAL, "JWKS_URL": "ftp://x/jwks"}, "JWKS_URL"),
        ({**MINIMAL, "JWKS_URL": "https://[::1/jwks"}, "JWKS_URL"),
        ({**MINIMAL, "JWKS_URL": "https://idp.example:99999/jwks"}, "JWKS_URL"),
        ({**MINIMAL, "JWKS_URL": "https:///jwks"}, "JWKS_URL"),
        ({**MINIMAL, "JWKS_CACHE_TTL": 0}, "JWKS_CACHE_TTL"),
        ({**MINIMAL, "JWKS_REFRESH_COOLDOWN": -1}, "JWKS_REFRESH_COOLDOWN"),
        ({**MINIMAL, "HTTP_TIMEOUT": "5"}, "HTTP_TIMEOUT"),
        ({**MINIMAL, "LEEWAY": True}, "LEEWAY"),
        ({**MINIMAL, "CACHE_ALIAS": ""}, "CACHE_ALIAS"),
        ({**MINIMAL, "TOKEN_TYPE": 1}, "TOKEN_TYPE"),
        ({**MINIMAL, "TOKEN_TYPE": "at jwt"}, "TOKEN_TYPE"),
        ({**MINIMAL, "TOKEN_TYPE": "application/at+jwt; v=1"}, "TOKEN_TYPE"),
        ({**MINIMAL, "TOKEN_TYPE": "application/x/at+jwt"}, "TOKEN_TYPE"),
        ({**MINIMAL, "TOKEN_TYPE": "/at+jwt"}, "TOKEN_TYPE"),
        ({**MINIMAL, "USER_ID_NAMESPACE": None}, "USER_ID_NAMESPACE"),
        ({**MINIMAL, "USER_ID_NAMESPACE": ""}, "USER_ID_NAMESPACE"),
        ({**MINIMAL, "USER_ID_NAMESPACE": "a#b"}, "USER_ID_NAMESPACE"),
        ({**MINIMAL, "USER_ID_NAMESPACE": 1}, "USER_ID_NAMESPACE"),
        ({**MINIMAL, "ISSUER": "https://i.example/#x", "USER_ID_NAMESPACE": True}, "USER_ID_NAMESPACE"),
        ({**MINIMAL, "REQUIRED_CLAIMS": "sub"}, "REQUIRED_CLAIMS"),
        ({**MINIMAL, "MAX_TOKEN_BYTES": 10}, "MAX_TOKEN_BYTES"),
        ({**MINIMAL, "JWKS_MAX_BYTES": 10}, "JWKS_MAX_BYTES"),
        ({**MINIMAL, "USER_RESOLVER": 3}, "USER_RESOLVER"),
        ({**MINIMAL, "ISSUERS": [MINIMAL]}, "ISSUER"),
        ({"ISSUERS": "x"}, "ISSUERS"),
        ({"ISSUERS": ["x"]}, "ISSUERS"),
        ({"ISSUERS": [MINIMAL, MINIMAL]}, "ISSUERS"),
        ({"ISSUERS": [{**MINIMAL, "STRICT_AUTH_HEADER": True}]}, "ISSUERS[0]"),
    ],
)
def test_a_bad_value_is_improperly_configured_naming_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(f"JWTGUARD[{key!r}]")):
        parse_settings(raw)


@pytest.mark.parametrize(
    "key", ["LEEWAY", "JWKS_CACHE_TTL", "JWKS_REFRESH_COOLDOWN", "JWKS_MAX_STALE", "JWKS_L1_RECHECK", "HTTP_TIMEOUT"]
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400], ids=["nan", "inf", "huge"])
def test_a_number_of_seconds_must_be_finite(key: str, value: float) -> None:
    # A LEEWAY of nan or inf accepted every expired token (nothing compares below it); a TTL of nan was
    # never fresh (a fetch per request); an infinite timeout made every shared-cache write fail.
    with pytest.raises(ImproperlyConfigured, match=re.escape(f"JWTGUARD[{key!r}]")):
        parse_settings({**MINIMAL, key: value})


def test_the_setting_must_be_a_dict() -> None:
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        parse_settings(["ISSUER"])


def test_several_issuers_inherit_top_level_keys() -> None:
    settings = parse_settings(
        {
            "LEEWAY": 10,
            "ALGORITHMS": ["ES256"],
            "ISSUERS": [
                {"ISSUER": "https://a/", "AUDIENCE": "api"},
                {"ISSUER": "https://b/", "AUDIENCE": "api", "ALGORITHMS": ["RS256"]},
            ],
        }
    )
    a, b = settings.issuers
    assert (a.leeway, a.algorithms) == (10, ("ES256",))
    assert (b.leeway, b.algorithms) == (10, ("RS256",))


def test_routing_by_iss_and_a_token_without_iss_to_the_only_issuer() -> None:
    several = parse_settings(
        {"ISSUERS": [{"ISSUER": "https://a/", "AUDIENCE": "x"}, {"ISSUER": "https://b/", "AUDIENCE": "x"}]}
    )
    assert several.issuer_for("https://b/") is several.issuers[1]
    assert several.issuer_for("https://B/") is None
    assert several.issuer_for(None) is None
    assert several.issuer_for(NO_ISS) is None
    single = parse_settings(MINIMAL)
    assert single.issuer_for(NO_ISS) is single.issuers[0]
    assert single.issuer_for(single.issuers[0].issuer) is single.issuers[0]
    # An iss that names nobody routes nowhere, with one issuer too: refused before any fetch.
    for untrusted in ("https://elsewhere/", None, 7, [single.issuers[0].issuer]):
        assert single.issuer_for(untrusted) is None


def test_nothing_is_read_at_import_and_override_settings_is_seen() -> None:
    first = get_settings()
    with override_settings(JWTGUARD={**MINIMAL, "LEEWAY": 7}):
        assert get_settings().issuers[0].leeway == 7
        assert get_settings() is get_settings()
    assert get_settings() == first


def test_reset_runs_the_registered_callbacks() -> None:
    calls: list[int] = []
    callback = conf.on_reset(lambda: calls.append(1))
    try:
        with override_settings(JWTGUARD=MINIMAL):
            pass
    finally:
        conf._reset_callbacks.remove(callback)
    assert calls == [1, 1]


@pytest.mark.parametrize(
    ("values", "found"),
    [
        ({"JWKS_URL": "http://idp.example.com/jwks"}, ("JWKS_URL", "http://idp.example.com/jwks")),
        ({"ISSUER": "http://idp.example.com"}, ("ISSUER", "http://idp.example.com/.well-known/openid-configuration")),
        ({"ISSUER": "http://idp.example.com", "JWKS_URL": "https://idp.example.com/jwks"}, None),
        ({"JWKS_URL": "http://127.0.0.1:8000/jwks"}, None),
        ({}, None),
    ],
)
def test_conf_reports_a_url_that_would_be_fetched_over_plain_http(values: dict[str, Any], found: object) -> None:
    config = parse_settings({**MINIMAL, **values}).issuers[0]
    assert conf.remote_plain_http(config) == found


@pytest.mark.parametrize("token_type", ["at+jwt", "application/at+jwt", "AT+JWT", "JWT", "application/jwt"])
def test_token_type_is_a_media_type_kept_as_given(token_type: str) -> None:
    assert parse_settings({**MINIMAL, "TOKEN_TYPE": token_type}).issuers[0].token_type == token_type


@pytest.mark.parametrize(
    ("value", "namespace"),
    [(False, None), (True, "https://tenant.eu.auth0.com/"), ("auth0", "auth0"), ("entra:tenant-1", "entra:tenant-1")],
)
def test_user_id_namespace_is_resolved_per_issuer(value: object, namespace: str | None) -> None:
    assert parse_settings({**MINIMAL, "USER_ID_NAMESPACE": value}).issuers[0].user_id_namespace == namespace


def test_user_id_namespace_at_the_top_level_is_each_entrys_own_issuer() -> None:
    second = {"ISSUER": "https://login.example.org/", "AUDIENCE": "api"}
    settings = parse_settings({"USER_ID_NAMESPACE": True, "ISSUERS": [MINIMAL, {**second}]})
    assert [c.user_id_namespace for c in settings.issuers] == [MINIMAL["ISSUER"], second["ISSUER"]]
    settings = parse_settings({"ISSUERS": [MINIMAL, {**second, "USER_ID_NAMESPACE": "b"}]})
    assert [c.user_id_namespace for c in settings.issuers] == [None, "b"]


@pytest.mark.parametrize(
    ("values", "found"),
    [
        ({"AUDIENCE": ["my-api", "https://api.example.com", "urn:x:api", "orders/api"]}, ["my-api"]),
        ({"AUDIENCE": "my-api", "TOKEN_TYPE": "at+jwt"}, []),
        ({"AUDIENCE": "my-api", "AUDIENCE_CLAIM": "client_id"}, []),
        ({}, []),
    ],
)
def test_conf_reports_client_id_audiences_left_untyped(values: dict[str, Any], found: list[str]) -> None:
    assert conf.untyped_client_id_audiences(parse_settings({**MINIMAL, **values}).issuers[0]) == found


def test_conf_reports_issuers_sharing_bare_user_ids() -> None:
    a, b, c = ({**MINIMAL, "ISSUER": f"https://{name}.example/"} for name in "abc")
    assert conf.issuers_sharing_bare_user_ids(parse_settings(MINIMAL)) == []
    assert conf.issuers_sharing_bare_user_ids(parse_settings({"ISSUERS": [a, b]})) == [a["ISSUER"], b["ISSUER"]]
    labelled = {**c, "USER_ID_NAMESPACE": "c"}
    assert conf.issuers_sharing_bare_user_ids(parse_settings({"ISSUERS": [a, labelled]})) == []


def test_dpop_defaults_to_off_and_is_set_per_issuer() -> None:
    parsed = parse_settings(MINIMAL)
    assert parsed.issuers[0].dpop == "off"
    assert (parsed.dpop_accepted, parsed.bearer_accepted) == (False, True)
    assert parsed.dpop_algorithms == ("ES256", "RS256", "PS256", "EdDSA")
    two = parse_settings(
        {"DPOP": "required", "ISSUERS": [MINIMAL, {**MINIMAL, "ISSUER": "https://b.example/", "DPOP": "allowed"}]}
    )
    assert [config.dpop for config in two.issuers] == ["required", "allowed"]
    assert (two.dpop_accepted, two.bearer_accepted) == (True, True)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"DPOP": "on"}, "DPOP"),
        ({"DPOP": True}, "DPOP"),
        ({"DPOP_ALGORITHMS": ["HS256"]}, "DPOP_ALGORITHMS"),
        ({"DPOP_ALGORITHMS": ["none"]}, "DPOP_ALGORITHMS"),
        ({"DPOP_ALGORITHMS": []}, "DPOP_ALGORITHMS"),
        ({"DPOP_PROOF_WINDOW": 0}, "DPOP_PROOF_WINDOW"),
        ({"DPOP_PUBLIC_URL": "https://api.example.com/v1"}, "DPOP_PUBLIC_URL"),
        ({"DPOP_PUBLIC_URL": "api.example.com"}, "DPOP_PUBLIC_URL"),
        ({"DPOP_PUBLIC_URL": "https://api.example.com/?q"}, "DPOP_PUBLIC_URL"),
        ({"DPOP_NONCE": "yes"}, "DPOP_NONCE"),
        ({"DPOP_NONCE_LIFETIME": 1}, "DPOP_NONCE_LIFETIME"),
    ],
)
def test_a_bad_dpop_setting_names_its_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=rf"\['{key}'\]"):
        parse_settings({**MINIMAL, **raw})


def test_the_public_url_is_kept_as_an_origin() -> None:
    assert parse_settings({**MINIMAL, "DPOP_PUBLIC_URL": "https://API.example.com:8443/"}).dpop_public_url == (
        "https://API.example.com:8443"
    )


def test_resource_metadata_and_where_it_is_served() -> None:
    assert parse_settings(MINIMAL).resource_metadata_url is None
    for resource, url in [
        ("https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"),
        ("https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"),
        ("https://api.example.com/v1", "https://api.example.com/.well-known/oauth-protected-resource/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/.well-known/oauth-protected-resource"),
    ]:
        parsed = parse_settings({**MINIMAL, "RESOURCE_METADATA": {"resource": resource}})
        assert parsed.resource_metadata_url == url


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"resource": "http://api.example.com"},
        {"resource": "https://api.example.com#frag"},
        {"resource": "https://api.example.com", "scopes_supported": {1, 2}},
        {"resource": "https://api.example.com", 3: "x"},
        ["https://api.example.com"],
    ],
)
def test_bad_resource_metadata_names_its_key(value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"\['RESOURCE_METADATA'\]"):
        parse_settings({**MINIMAL, "RESOURCE_METADATA": value})
