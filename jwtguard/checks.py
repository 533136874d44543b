"""System checks (``manage.py check``): configuration mistakes reported at startup, not at the first request.

One condition per id; ids are stable API (``SILENCED_SYSTEM_CHECKS``) and listed in ``docs/checks.md``.
Checks read the raw ``JWTGUARD`` dict where ``conf.parse_settings`` would stop at the first problem; the rules
themselves live in ``conf`` (which reports them) and ``jwtguard.urlpolicy``: checks only display what conf finds.
The ones about security are registered under Django's ``security`` tag (``manage.py check --tag security``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.core.checks import CheckMessage, Error, Info, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jwtguard.conf import (
    ISSUER_DEFAULTS,
    SETTINGS_NAME,
    IssuerConfig,
    JWTGuardSettings,
    dangerous_algorithms,
    is_issuer_pattern,
    is_media_type,
    issuers_sharing_bare_user_ids,
    parse_settings,
    pattern_problem,
    remote_plain_http,
    source_defaults,
    untyped_client_id_audiences,
)

#: Above this LEEWAY, expired tokens stay usable long enough to matter.
MAX_SENSIBLE_LEEWAY = 300
#: Cache backends whose entries live in one process: every worker would fetch the key set for itself.
PER_PROCESS_BACKENDS: tuple[type[Any], ...] = (LocMemCache, DummyCache)
#: django-redis's client that sends reads to the replicas Sentinel lists.
SENTINEL_REPLICA_CLIENT = "django_redis.client.SentinelClient"
#: django-redis's client whose several LOCATIONs are shards, each its own primary (not replicas).
SHARDING_CLIENT = "django_redis.client.ShardClient"
#: redis-py's RedisCluster options that send reads to replicas (the Cluster recipe passes OPTIONS to it).
REPLICA_READ_OPTIONS = frozenset({"read_from_replicas", "load_balancing_strategy"})

#: Every check id with its one condition (docs/checks.md lists the same; a test keeps the two in step).
CHECK_IDS: dict[str, str] = {
    "jwtguard.E001": "settings.JWTGUARD cannot be read (the message says which key and why)",
    "jwtguard.E002": "an issuer has no ISSUER",
    "jwtguard.E003": "an issuer has no AUDIENCE",
    "jwtguard.E004": "ALGORITHMS contains 'none' or an HMAC algorithm (HS256, HS384, HS512)",
    "jwtguard.E005": "CACHE_ALIAS names a cache that settings.CACHES does not define",
    "jwtguard.E006": "the JWKS URL (or, without one, the ISSUER used for discovery) is plain http to a remote host",
    "jwtguard.E007": "TOKEN_TYPE is not a media type (spaces, parameters, more than one '/')",
    "jwtguard.E008": "CACHE_ALIAS names a DummyCache (reported instead of W001)",
    "jwtguard.E009": "an ISSUER pattern (or its JWKS_URL) has a placeholder in the scheme, port or the host's "
    "registrable part, has userinfo, a query or a stray brace, or is not https",
    "jwtguard.W001": "CACHE_ALIAS names a per-process cache (LocMemCache, DummyCache)",
    "jwtguard.W002": "LEEWAY is over 5 minutes",
    "jwtguard.W003": "JWKS_REFRESH_COOLDOWN is not shorter than JWKS_CACHE_TTL",
    "jwtguard.W004": "JWKS_L1_RECHECK is not shorter than JWKS_CACHE_TTL",
    "jwtguard.W005": "JWKS_MAX_STALE is shorter than JWKS_CACHE_TTL (and not 0)",
    "jwtguard.W006": "JWKS_REFRESH_COOLDOWN is 0: forged kids are not rate-limited",
    "jwtguard.W007": "several issuers share the bare user id namespace (USER_ID_NAMESPACE off for more than one)",
    "jwtguard.W008": "CACHE_ALIAS names a cache that reads from replicas (SentinelClient, several Redis LOCATIONs, "
    "a cluster reading from replicas)",
    "jwtguard.W009": "CACHE_ALIAS names django-redis with IGNORE_EXCEPTIONS (or DJANGO_REDIS_IGNORE_EXCEPTIONS)",
    "jwtguard.W010": "DPOP is on for an issuer whose CACHE_ALIAS is per-process: replays refused per process only",
    "jwtguard.W011": "DPOP is on, DPOP_PUBLIC_URL is unset and ALLOWED_HOSTS has '*': every DPoP proof is refused",
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
        "jwtguard.E008",
        "jwtguard.E009",
        "jwtguard.I001",
        "jwtguard.W002",
        "jwtguard.W006",
        "jwtguard.W007",
        "jwtguard.W010",
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
    statics, patterns = iter(parsed.issuers), iter(parsed.patterns)
    for name, values in entries:
        config = next(patterns).template if is_issuer_pattern(values.get("ISSUER")) else next(statics)
        messages.extend(_check_issuer(config, name))
    messages.extend(_check_source(parsed, raw, checked={config.cache_alias for config in parsed.issuers}))
    messages.extend(_check_user_ids(parsed))
    messages.extend(_check_dpop_url(parsed))
    return messages


def _check_source(parsed: JWTGuardSettings, raw: Mapping[str, Any], checked: set[str]) -> list[CheckMessage]:
    """``ISSUER_SOURCE``'s answers are read over the top-level keys, and shared in the top-level ``CACHE_ALIAS``
    (with, unless an answer says otherwise, its tenants' key sets and DPoP replays): that cache and ``DPOP`` are
    checked as an entry's would be, unless an ``ISSUERS`` entry's check already looked at that cache."""
    if parsed.issuer_source is None:
        return []
    try:
        config = source_defaults(parsed)
    except ImproperlyConfigured as exc:  # a top-level key no answer could be read over
        return [_parse_error(str(exc))]
    if config.cache_alias in checked | {p.template.cache_alias for p in parsed.patterns}:
        return []
    name = _Names(SETTINGS_NAME, {key: value for key, value in raw.items() if key in ISSUER_DEFAULTS}, {})
    return [*_check_cache(config, name), *_check_dpop_replay(config, name)]


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
    if not entries and raw.get("ISSUER_SOURCE") is not None and "ISSUER" not in raw:
        return []  # every issuer comes from the source
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
    messages.extend(_check_patterns(name, values))
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


def _check_patterns(name: _Names, values: Mapping[str, Any]) -> list[CheckMessage]:
    """E009: an ``ISSUER`` pattern, or a ``JWKS_URL`` with placeholders, that could match or reach too much."""
    messages: list[CheckMessage] = []
    for key in ("ISSUER", "JWKS_URL"):
        url = values.get(key)
        problem = pattern_problem(url) if isinstance(url, str) and is_issuer_pattern(url) else None
        if problem:
            messages.append(
                Error(
                    f"{name(key)} pattern {url!r} {problem}.",
                    hint="A placeholder stands for one path segment or one host label left of the registrable "
                    "domain, e.g. 'https://login.microsoftonline.com/{tid}/v2.0' or "
                    "'https://sso.example.com/realms/{realm}' (docs/tenants.md).",
                    id="jwtguard.E009",
                )
            )
    return messages


def _check_issuer(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    return [
        *_check_cache(config, name),
        *_check_urls(config, name),
        *_check_timing(config, name),
        *_check_token_type(config, name),
        *_check_dpop_replay(config, name),
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


def _per_process_backend(alias: str) -> type[Any] | None:
    """The backend class of cache ``alias`` when its entries live in one process; None otherwise (or unknown)."""
    backend = getattr(settings, "CACHES", {}).get(alias, {}).get("BACKEND", "")
    try:
        backend_class = import_string(backend)
    except ImportError:
        return None  # Django's own cache checks report a backend that cannot be imported.
    if isinstance(backend_class, type) and issubclass(backend_class, PER_PROCESS_BACKENDS):
        return backend_class
    return None


def _check_dpop_replay(config: IssuerConfig, name: _Names) -> list[CheckMessage]:
    backend = _per_process_backend(config.cache_alias) if config.dpop != "off" else None
    if backend is None:
        return []
    return [
        Warning(
            f"{name('DPOP')} is {config.dpop!r} and {name('CACHE_ALIAS')} is {config.cache_alias!r}, a "
            f"{backend.__name__} that lives in one process: a DPoP proof replayed to another worker or pod is "
            "accepted there; each process refuses only the replays it sees itself.",
            hint="Point CACHE_ALIAS at a cache every process shares (Redis), so that each proof's jti is spent "
            "once for the whole deployment (docs/dpop.md, replay).",
            id="jwtguard.W010",
        )
    ]


def _check_dpop_url(parsed: JWTGuardSettings) -> list[CheckMessage]:
    if not parsed.dpop_accepted or parsed.dpop_public_url is not None:
        return []
    if "*" not in getattr(settings, "ALLOWED_HOSTS", ()):
        return []
    return [
        Warning(
            f"{SETTINGS_NAME}['DPOP_PUBLIC_URL'] is not set while an issuer accepts DPoP and settings.ALLOWED_HOSTS "
            "has '*': the Host header is anyone's to choose, so no request URL can be trusted for a proof's htu, "
            "and every DPoP proof is refused (dpop_htu_mismatch).",
            hint="Set DPOP_PUBLIC_URL to the origin clients call (e.g. 'https://api.example.com'), or list the "
            "service's hosts in ALLOWED_HOSTS (docs/dpop.md, proxies and htu).",
            id="jwtguard.W011",
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
    if not isinstance(backend_class, type):
        return []
    if issubclass(backend_class, DummyCache):
        return [_dummy_cache(config, name)]
    if issubclass(backend_class, PER_PROCESS_BACKENDS):
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
    cache = caches[config.cache_alias]
    return _check_replica_reads(config, name, cache, backend_class) + _check_ignored_exceptions(
        config, name, cache, backend_class
    )


def _check_ignored_exceptions(
    config: IssuerConfig, name: _Names, cache: Mapping[str, Any], backend_class: Any
) -> list[CheckMessage]:
    if backend_class.__module__.startswith("django_redis.") and _ignores_exceptions(cache):
        return [
            Warning(
                f"{name('CACHE_ALIAS')} is {config.cache_alias!r}, a django-redis cache with IGNORE_EXCEPTIONS: "
                "while Redis is down it answers every read and write with nothing, which hides the outage; "
                "jwtguard goes around it to its client (so its locks fall back to process memory), but the "
                "rest of the site keeps guessing.",
                hint="Give jwtguard a cache alias of its own without IGNORE_EXCEPTIONS (jwtguard never raises "
                "when its cache fails), or silence jwtguard.W009 if the option is meant.",
                id="jwtguard.W009",
            )
        ]
    return []


def _check_replica_reads(
    config: IssuerConfig, name: _Names, cache: Mapping[str, Any], backend_class: Any
) -> list[CheckMessage]:
    why = replica_reads(cache, backend_class)
    if why is None:
        return []
    return [
        Warning(
            f"{name('CACHE_ALIAS')} is {config.cache_alias!r}, {why}: a replica lags behind the primary "
            "jwtguard writes to (and after a failover the old primary, restarted empty, is listed as a "
            "replica before it has synced), so processes miss the shared key set and fetch it again.",
            hint="Give jwtguard an alias whose every command goes to the primary: with Sentinel, django-redis's "
            "'django_redis.client.DefaultClient' with 'CONNECTION_FACTORY': "
            "'django_redis.pool.SentinelConnectionFactory' and one LOCATION; otherwise the primary's LOCATION "
            "alone, and no read_from_replicas or load_balancing_strategy (docs/caches.md).",
            id="jwtguard.W008",
        )
    ]


def replica_reads(cache: Mapping[str, Any], backend_class: Any) -> str | None:
    """Why a ``settings.CACHES`` entry sends reads to replicas, or None when every command goes to the primary."""
    options = cache.get("OPTIONS") or {}
    client = options.get("CLIENT_CLASS")
    if _is_client(client, SENTINEL_REPLICA_CLIENT):
        return "a django-redis SentinelClient, which reads from the replicas Sentinel lists"
    for key, value in options.items():
        if str(key).lower() in REPLICA_READ_OPTIONS and value:
            return f"whose OPTIONS set {key!r}, which reads from replicas"
    redis_backend = isinstance(backend_class, type) and (
        issubclass(backend_class, RedisCache) or backend_class.__module__.startswith("django_redis.")
    )
    if redis_backend and len(_locations(cache.get("LOCATION"))) > 1 and not _is_client(client, SHARDING_CLIENT):
        return "a Redis cache with several LOCATIONs, which writes to the first and reads from the others (replicas)"
    return None


def _is_client(client: Any, path: str) -> bool:
    """``CLIENT_CLASS`` (a dotted path or a class) is the client at ``path`` or a subclass of it."""
    if isinstance(client, str):
        if client == path:
            return True
        try:
            client = import_string(client)
        except ImportError:
            return False
    try:
        target = import_string(path)
    except ImportError:  # django-redis is not installed: no client can be one of its own
        return False
    return isinstance(client, type) and issubclass(client, target)


def _locations(location: Any) -> list[str]:
    """The servers of a LOCATION as Django's and django-redis's Redis backends split it."""
    if isinstance(location, str):
        return [server for server in re.split("[;,]", location) if server.strip()]
    if isinstance(location, (list, tuple)):
        return [str(server) for server in location]
    return []


def _dummy_cache(config: IssuerConfig, name: _Names) -> CheckMessage:
    return Error(
        f"{name('CACHE_ALIAS')} is {config.cache_alias!r}, a DummyCache, which keeps nothing: jwtguard keeps the "
        "key set, its lock, cooldown and backoff in each process's memory instead, so every worker fetches "
        "the key set for itself and forged kids cost a fetch per process per cooldown.",
        hint="Point CACHE_ALIAS at a cache every process shares (Redis); for a site that caches nothing "
        "else, add a cache alias for jwtguard alone and set CACHE_ALIAS to it.",
        id="jwtguard.E008",
    )


def _ignores_exceptions(cache: Mapping[str, Any]) -> bool:
    # django-redis's own rule: the OPTIONS key wins, else the global setting.
    options = cache.get("OPTIONS") or {}
    return bool(options.get("IGNORE_EXCEPTIONS", getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False)))


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
