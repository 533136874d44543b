"""System checks (``manage.py check``): configuration mistakes reported at startup, not at the first request.

One condition per id; ids are stable API (``SILENCED_SYSTEM_CHECKS``) and listed in ``docs/checks.md``.
Checks read the raw ``JWTGUARD`` dict where ``conf.parse_settings`` would stop at the first problem; the rules
themselves live in ``conf`` (which reports them) and ``jwtguard.urlpolicy``: checks only display what conf finds.
The ones about security are registered under Django's ``security`` tag (``manage.py check --tag security``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Error, Info, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jwtguard.conf import (
    ISSUER_DEFAULTS,
    SETTINGS_NAME,
    IssuerConfig,
    JWTGuardSettings,
    dangerous_algorithms,
    is_media_type,
    issuers_sharing_bare_user_ids,
    parse_settings,
    remote_plain_http,
    untyped_client_id_audiences,
)

#: Above this LEEWAY, expired tokens stay usable long enough to matter.
MAX_SENSIBLE_LEEWAY = 300
#: Cache backends whose entries live in one process: every worker would fetch the key set for itself.
PER_PROCESS_BACKENDS: tuple[type[Any], ...] = (LocMemCache, DummyCache)

#: Every check id with its one condition (docs/checks.md lists the same; a test keeps the two in step).
CHECK_IDS: dict[str, str] = {
    "jwtguard.E001": "settings.JWTGUARD cannot be read (the message says which key and why)",
    "jwtguard.E002": "an issuer has no ISSUER",
    "jwtguard.E003": "an issuer has no AUDIENCE",
    "jwtguard.E004": "ALGORITHMS contains 'none' or an HMAC algorithm (HS256, HS384, HS512)",
    "jwtguard.E005": "CACHE_ALIAS names a cache that settings.CACHES does not define",
    "jwtguard.E006": "the JWKS URL (or, without one, the ISSUER used for discovery) is plain http to a remote host",
    "jwtguard.E007": "TOKEN_TYPE is not a media type (spaces, parameters, more than one '/')",
    "jwtguard.W001": "CACHE_ALIAS names a per-process cache (LocMemCache, DummyCache)",
    "jwtguard.W002": "LEEWAY is over 5 minutes",
    "jwtguard.W003": "JWKS_REFRESH_COOLDOWN is not shorter than JWKS_CACHE_TTL",
    "jwtguard.W004": "JWKS_L1_RECHECK is not shorter than JWKS_CACHE_TTL",
    "jwtguard.W005": "JWKS_MAX_STALE is shorter than JWKS_CACHE_TTL (and not 0)",
    "jwtguard.W006": "JWKS_REFRESH_COOLDOWN is 0: forged kids are not rate-limited",
    "jwtguard.W007": "several issuers share the bare user id namespace (USER_ID_NAMESPACE off for more than one)",
    "jwtguard.I001": "AUDIENCE looks like a client id (no ':' nor '/') and TOKEN_TYPE is not set: ID tokens may pass",
}

#: The ids about security (tokens accepted that should not be, keys an attacker could swap, a refresh flood,
#: two issuers' users taken for one):
#: registered under ``Tags.security``; the others under no tag.
SECURITY_CHECK_IDS = frozenset(
    {
        "jwtguard.E003",
        "jwtguard.E004",
        "jwtguard.E006",
        "jwtguard.I001",
        "jwtguard.W002",
        "jwtguard.W006",
        "jwtguard.W007",
    }
)


def check_security(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Registered from ``JWTGuardConfig.ready`` under ``Tags.security``: the security problems."""
    return [message for message in check_settings() if message.id in SECURITY_CHECK_IDS]


def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Registered from ``JWTGuardConfig.ready``: every other problem."""
    return [message for message in check_settings() if message.id not in SECURITY_CHECK_IDS]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every problem with ``settings.JWTGUARD`` and its caches (``check_security`` and ``check_configuration``
    split them by tag)."""
    raw = getattr(settings, SETTINGS_NAME, {})
    if not isinstance(raw, Mapping):
        return [_parse_error(f"settings.{SETTINGS_NAME} must be a dict, not {type(raw).__name__}.")]
    entries = _raw_issuers(raw)
    messages: list[CheckMessage] = []
    for name, values in entries:
        messages.extend(_check_raw_issuer(name, values))
    if messages:
        # The parser would stop at one of these very problems; reporting it again as E001 adds nothing.
        return messages
    try:
        parsed = parse_settings(raw)
    except ImproperlyConfigured as exc:
        return [_parse_error(str(exc))]
    for (name, _values), config in zip(entries, parsed.issuers, strict=True):
        messages.extend(_check_issuer(config, name))
    messages.extend(_check_user_ids(parsed))
    return messages


class _Names:
    """How to name a key in messages: ``JWTGUARD['ISSUERS'][1]['LEEWAY']`` in an ``ISSUERS`` entry, unless
    the entry inherits the key from the top level (``JWTGUARD['LEEWAY']``), where it is to be changed."""

    def __init__(self, where: str, own: Mapping[str, Any], inherited: Mapping[str, Any]) -> None:
        self.where = where
        self.own = own
        self.inherited = inherited

    def __call__(self, key: str) -> str:
        if self.where == SETTINGS_NAME or (key not in self.own and key in self.inherited):
            return f"{SETTINGS_NAME}[{key!r}]"
        return f"{self.where}[{key!r}]"


def _raw_issuers(raw: Mapping[str, Any]) -> list[tuple[_Names, dict[str, Any]]]:
    """Per issuer, how to name its keys and its values as ``parse_settings`` sees them (entries inherit)."""
    shared = {key: value for key, value in raw.items() if key in ISSUER_DEFAULTS}
    entries = raw.get("ISSUERS") or []
    if not entries or not isinstance(entries, (list, tuple)) or not all(isinstance(e, Mapping) for e in entries):
        return [(_Names(SETTINGS_NAME, shared, {}), shared)]  # a malformed ISSUERS is the parser's to name (E001)
    return [
        (_Names(f"{SETTINGS_NAME}['ISSUERS'][{index}]", entry, shared), {**shared, **entry})
        for index, entry in enumerate(entries)
    ]


def _check_raw_issuer(name: _Names, values: Mapping[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    issuer = values.get("ISSUER")
    if not issuer:
        messages.append(
            Error(
                f"{name('ISSUER')} is not set: jwtguard cannot tell which tokens to accept.",
                hint="Set it to the exact `iss` value of your identity provider's tokens, "
                "e.g. 'https://tenant.eu.auth0.com/' (mind the trailing slash).",
                id="jwtguard.E002",
            )
        )
    if values.get("AUDIENCE") is None:
        messages.append(
            Error(
                f"{name('AUDIENCE')} is not set{f' for issuer {issuer!r}' if issuer else ''}: without it a token "
                "minted for any other API of the same issuer would be accepted.",
                hint="Set it to the identifier your API has at the issuer (the `aud` its tokens carry), "
                "e.g. 'https://api.example.com'; a list accepts any of several.",
                id="jwtguard.E003",
            )
        )
    dangerous = dangerous_algorithms(values.get("ALGORITHMS", ISSUER_DEFAULTS["ALGORITHMS"]))
    if dangerous:
        messages.append(
            Error(
                f"{name('ALGORITHMS')} contains {dangerous}: 'none' accepts unsigned tokens, and an HMAC "
                "algorithm with keys from a JWKS lets anyone who has the public key forge tokens.",
                hint="Allow only the asymmetric algorithms your issuer signs with, e.g. ['RS256'] "
                "(the issuer's discovery document lists them).",
                id="jwtguard.E004",
            )
        )
    token_type = values.get("TOKEN_TYPE")
    if isinstance(token_type, str) and not is_media_type(token_type):
        messages.append(
            Error(
                f"{name('TOKEN_TYPE')} is {token_type!r}, which is not a media type: no token's typ could "
                "match it, so every token would be refused.",
                hint="Give the type alone, e.g. 'at+jwt' (RFC 9068) or 'application/at+jwt': one '/' at most, "
                "no spaces, no parameters.",
                id="jwtguard.E007",
            )
        )
    return messages


def _check_issuer(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    return [
        *_check_cache(config, name),
        *_check_urls(config, name),
        *_check_timing(config, name),
        *_check_token_type(config, name),
    ]


def _check_token_type(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    client_ids = untyped_client_id_audiences(config)
    if not client_ids:
        return []
    return [
        Info(
            f"{name('AUDIENCE')} names {client_ids}, which looks like a client id, and {name('TOKEN_TYPE')} is "
            "not set: an ID token the issuer minted for that client carries the same aud and would be accepted "
            "as an access token.",
            hint="Set TOKEN_TYPE to the typ your issuer puts on access tokens (e.g. 'at+jwt', RFC 9068), or "
            "require a claim only access tokens carry (docs/providers.md says which, per identity provider).",
            id="jwtguard.I001",
        )
    ]


def _check_user_ids(parsed: JWTGuardSettings) -> list[CheckMessage]:
    bare = issuers_sharing_bare_user_ids(parsed)
    if not bare:
        return []
    return [
        Warning(
            f"{SETTINGS_NAME}['USER_ID_NAMESPACE'] is off for several issuers ({bare}): users of two of them who "
            "share a sub get the same request.user.id, and the same database user through USER_RESOLVER.",
            hint="Set USER_ID_NAMESPACE to True (ids become '<ISSUER>#<sub>'), or give issuers whose users are "
            "one population the same label; docs/settings.md weighs the ids changing once.",
            id="jwtguard.W007",
        )
    ]


def _check_cache(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    caches = getattr(settings, "CACHES", {})
    if config.cache_alias not in caches:
        return [
            Error(
                f"{name('CACHE_ALIAS')} is {config.cache_alias!r}, which settings.CACHES does not define.",
                hint=f"Add a {config.cache_alias!r} entry to settings.CACHES (Redis in production), "
                f"or set {name('CACHE_ALIAS')} to one of {sorted(caches)}.",
                id="jwtguard.E005",
            )
        ]
    backend = caches[config.cache_alias].get("BACKEND", "")
    try:
        backend_class = import_string(backend)
    except ImportError:
        return []  # Django's own cache checks report a backend that cannot be imported.
    if isinstance(backend_class, type) and issubclass(backend_class, PER_PROCESS_BACKENDS):
        return [
            Warning(
                f"{name('CACHE_ALIAS')} is {config.cache_alias!r}, a {backend_class.__name__} that lives in one "
                "process: workers and pods will not share the key set, and each will fetch it from the issuer "
                "for itself.",
                hint="Point CACHE_ALIAS at a cache every process shares: "
                "'django.core.cache.backends.redis.RedisCache' or django-redis "
                "(silence jwtguard.W001 for a single-process development server).",
                id="jwtguard.W001",
            )
        ]
    return []


def _check_urls(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    found = remote_plain_http(config)
    if found is None:
        return []
    key, url = found
    return [
        Error(
            f"{name(key)} fetches {url!r} over plain http from a host that is not loopback: jwtguard refuses "
            "to, since anyone on the path could swap the keys.",
            hint="Use the https URL; plain http is allowed only to 127.0.0.1, ::1 or localhost, "
            "for a development issuer.",
            id="jwtguard.E006",
        )
    ]


def _check_timing(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    ttl = config.jwks_cache_ttl
    if config.leeway > MAX_SENSIBLE_LEEWAY:
        messages.append(
            Warning(
                f"{name('LEEWAY')} is {config.leeway:g} seconds: tokens stay accepted that long after they "
                "expire, which is more than clock skew needs.",
                hint=f"Keep it at most {MAX_SENSIBLE_LEEWAY} seconds (60 is usual) and keep server clocks in sync.",
                id="jwtguard.W002",
            )
        )
    if config.jwks_refresh_cooldown >= ttl:
        messages.append(
            Warning(
                f"{name('JWKS_REFRESH_COOLDOWN')} ({config.jwks_refresh_cooldown:g}s) is not shorter than "
                f"{name('JWKS_CACHE_TTL')} ({ttl:g}s): a token signed with a new key is refused until the next "
                "scheduled refresh instead of triggering one.",
                hint="Make the cooldown a small fraction of the TTL (the defaults are 1 and 600 seconds).",
                id="jwtguard.W003",
            )
        )
    if config.jwks_refresh_cooldown == 0:
        messages.append(
            Warning(
                f"{name('JWKS_REFRESH_COOLDOWN')} is 0: every token with an unknown kid refreshes the key set, "
                "so a flood of forged tokens becomes a flood of requests to your issuer.",
                hint="Keep a cooldown of at least 1 second (the default).",
                id="jwtguard.W006",
            )
        )
    if config.jwks_l1_recheck >= ttl:
        messages.append(
            Warning(
                f"{name('JWKS_L1_RECHECK')} ({config.jwks_l1_recheck:g}s) is not shorter than "
                f"{name('JWKS_CACHE_TTL')} ({ttl:g}s): processes would not notice a key set refreshed by "
                "another process before their own copy expires.",
                hint="Keep JWKS_L1_RECHECK at a few seconds (the default is 5).",
                id="jwtguard.W004",
            )
        )
    if 0 < config.jwks_max_stale < ttl:
        messages.append(
            Warning(
                f"{name('JWKS_MAX_STALE')} ({config.jwks_max_stale:g}s) is shorter than "
                f"{name('JWKS_CACHE_TTL')} ({ttl:g}s): an issuer outage shorter than one refresh interval "
                "would already turn every request into a 503.",
                hint="Keep the last good key set for at least one TTL (the default is 86400 seconds), "
                "or set 0 to turn stale serving off on purpose.",
                id="jwtguard.W005",
            )
        )
    return messages


def _parse_error(message: str) -> Error:
    return Error(
        message,
        hint=f"Fix settings.{SETTINGS_NAME}; docs/settings.md lists every key with its type and default.",
        id="jwtguard.E001",
    )
