"""The ``JWTGUARD`` settings, read once into frozen typed objects and re-read when they change."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from jwtguard.algorithms import COSE_ONLY, SUPPORTED, is_dangerous
from jwtguard.mediatypes import is_media_type as is_media_type  # checks shows what conf refuses (E007)
from jwtguard.urlpolicy import is_http_url, is_remote_plain_http

SETTINGS_NAME = "JWTGUARD"

#: Claims that may carry the audience: ``aud`` (RFC 7519), or ``client_id`` (Amazon Cognito access tokens).
AUDIENCE_CLAIMS = ("aud", "client_id")

#: Keys that may be given per issuer (at the top level, or in each ``ISSUERS`` entry).
ISSUER_DEFAULTS: dict[str, Any] = {
    "ISSUER": None,
    "AUDIENCE": None,
    "AUDIENCE_CLAIM": "aud",
    "JWKS_URL": None,
    "ALGORITHMS": ["RS256"],
    "CACHE_ALIAS": "default",
    "JWKS_CACHE_TTL": 600,
    "JWKS_REFRESH_COOLDOWN": 1,
    "JWKS_MAX_STALE": 86400,
    "JWKS_L1_RECHECK": 5,
    "JWKS_MAX_BYTES": 256 * 1024,
    "HTTP_TIMEOUT": 5,
    "LEEWAY": 60,
    "REQUIRED_CLAIMS": [],
    "TOKEN_TYPE": None,
    # False: TokenUser.id is the token's own sub; True or a label: "<ISSUER or label>#<sub>" (see jwtguard.user).
    "USER_ID_NAMESPACE": False,
}

#: Keys that apply to the whole deployment.
GLOBAL_DEFAULTS: dict[str, Any] = {
    "STRICT_AUTH_HEADER": False,
    "ISSUERS": [],
    "MAX_TOKEN_BYTES": 8 * 1024,
    "USER_RESOLVER": None,
    "SCOPE_CLAIMS": ["scope", "scp"],
    # Verified tokens remembered per process (see jwtguard.tokencache); 0 turns the cache off.
    "TOKEN_CACHE_SIZE": 0,
}

#: The largest ``TOKEN_CACHE_SIZE``: a bound on the memory the verified-token cache may take.
MAX_TOKEN_CACHE_SIZE = 1_000_000

KNOWN_KEYS = frozenset(ISSUER_DEFAULTS) | frozenset(GLOBAL_DEFAULTS)


@dataclass(frozen=True)
class IssuerConfig:
    """Everything jwtguard needs to accept tokens from one issuer."""

    issuer: str
    audience: tuple[str, ...]
    jwks_url: str | None
    algorithms: tuple[str, ...]
    cache_alias: str
    jwks_cache_ttl: float
    jwks_refresh_cooldown: float
    jwks_max_stale: float
    jwks_l1_recheck: float
    jwks_max_bytes: int
    http_timeout: float
    leeway: float
    required_claims: tuple[str, ...]
    token_type: str | None
    #: The claim holding the audience: ``aud``, or ``client_id`` for Amazon Cognito access tokens.
    audience_claim: str = "aud"
    #: ``USER_ID_NAMESPACE`` resolved: what user ids of this issuer are qualified with (``<namespace>#<sub>``);
    #: None: bare, as the token has them.
    user_id_namespace: str | None = None

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class JWTGuardSettings:
    """The whole ``JWTGUARD`` setting, validated."""

    issuers: tuple[IssuerConfig, ...]
    strict_auth_header: bool
    max_token_bytes: int
    user_resolver: str | None
    scope_claims: tuple[str, ...]
    #: How many verified tokens each process remembers (``TOKEN_CACHE_SIZE``); 0: none.
    token_cache_size: int = 0

    def issuer_for(self, iss: object) -> IssuerConfig | None:
        """The issuer a token is routed to by its unverified ``iss``: the one whose ``ISSUER`` equals it.

        A token without ``iss`` goes to the only issuer, if there is one (the article's order: its key and
        signature are checked, then the missing ``iss``). Any other ``iss`` that names no configured issuer
        routes nowhere, so the token is refused before any key lookup: it costs no fetch.
        """
        for config in self.issuers:
            if config.issuer == iss:
                return config
        if iss is NO_ISS and len(self.issuers) == 1:
            return self.issuers[0]
        return None


#: What ``issuer_for`` is given for a token without an ``iss`` claim (None is a JSON null: an ``iss`` too).
NO_ISS: Any = object()


def _fail(key: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{SETTINGS_NAME}[{key!r}] {problem}")


def _number(values: Mapping[str, Any], key: str, *, minimum: float = 0) -> float:
    value = values[key]
    number = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an int beyond any float
            number = float(value)
    # Finite: nothing compares below nan, nor beyond inf (a LEEWAY of either accepted every expired token).
    if not math.isfinite(number) or number < minimum:
        raise _fail(key, f"must be a finite number of seconds >= {minimum}, not {value!r}.")
    return number


def _strings(values: Mapping[str, Any], key: str, *, allow_single: bool) -> tuple[str, ...]:
    value = values[key]
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise _fail(key, f"must be a list of non-empty strings, not {value!r}.")
    return tuple(value)


def _url(values: Mapping[str, Any], key: str) -> str | None:
    value = values[key]
    if value is None:
        return None
    # "https://[::1/jwks", "https://host:99999/": ImproperlyConfigured, not a ValueError.
    if isinstance(value, str) and is_http_url(value):
        return value
    raise _fail(key, f"must be an http(s) URL, not {value!r}.")


def _is_integer(value: object, minimum: int, maximum: float = math.inf) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def dangerous_algorithms(algorithms: object) -> list[str]:
    """The names in a raw ``ALGORITHMS`` value that must never be allowed (parsing refuses the first; the
    system check shows them all)."""
    if not isinstance(algorithms, (list, tuple)):
        return []
    return [alg for alg in algorithms if isinstance(alg, str) and is_dangerous(alg)]


def _algorithms(values: Mapping[str, Any]) -> tuple[str, ...]:
    algorithms = _strings(values, "ALGORITHMS", allow_single=False)
    if not algorithms:
        raise _fail("ALGORITHMS", "must allow at least one algorithm.")
    for alg in algorithms:
        if is_dangerous(alg):
            if alg.lower() == "none":
                raise _fail("ALGORITHMS", "must not contain 'none': unsigned tokens are never accepted.")
            raise _fail(
                "ALGORITHMS",
                f"must not contain {alg!r}: keys come from a JWKS of public keys, and an HMAC algorithm "
                "there lets anyone who has the public key forge tokens.",
            )
        if alg not in SUPPORTED:
            unsupported = f"contains unsupported {alg!r}{_cose_hint(alg)}"
            raise _fail("ALGORITHMS", f"{unsupported}; use some of {sorted(SUPPORTED)}.")
    return algorithms


def _cose_hint(alg: str) -> str:
    """What to say of an RFC 9864 name that only COSE has: the JWS name for the same operation, if any."""
    if alg not in COSE_ONLY:
        return ""
    jose = COSE_ONLY[alg]
    return f" (a COSE name of RFC 9864; a JWS says {jose!r})" if jose else " (a COSE name of RFC 9864; JOSE has none)"


def remote_plain_http(config: IssuerConfig) -> tuple[str, str] | None:
    """The key (``JWKS_URL``, or ``ISSUER`` for discovery) whose URL would be fetched over plain http off
    loopback, and that URL; None when there is none. Fetching refuses such a URL; check E006 shows it."""
    if config.jwks_url is not None:
        key, url = "JWKS_URL", config.jwks_url
    else:
        key, url = "ISSUER", config.discovery_url
    return (key, url) if is_remote_plain_http(url) else None


def looks_like_client_id(audience: str) -> bool:
    """Whether an ``AUDIENCE`` looks like an OAuth client id rather than an API identifier.

    API identifiers are usually URLs or URNs (``https://api.example.com``, ``api://<app-id>``,
    ``urn:example:api``), which always have a scheme and its ``:``, or paths (``orders/api/v1``). Client ids
    (Auth0's 32-character ids, Okta's ``0oa...``, Entra ID's GUIDs, Keycloak's client names, Google's
    ``...apps.googleusercontent.com``) have neither ``:`` nor ``/``.
    """
    return ":" not in audience and "/" not in audience


def untyped_client_id_audiences(config: IssuerConfig) -> list[str]:
    """The ``AUDIENCE`` entries that look like client ids while ``TOKEN_TYPE`` is unset: an ID token's ``aud`` is
    the client id it was minted for, so the issuer's ID tokens for that client would pass (check I001 shows
    them). None with ``AUDIENCE_CLAIM = "client_id"``: ID tokens carry no ``client_id`` (Amazon Cognito)."""
    if config.token_type is not None or config.audience_claim != "aud":
        return []
    return [audience for audience in config.audience if looks_like_client_id(audience)]


def issuers_sharing_bare_user_ids(settings: JWTGuardSettings) -> list[str]:
    """The issuers whose users' ids are bare (``USER_ID_NAMESPACE`` off), when more than one is: their users may
    share a ``sub``, and so one ``request.user.id`` (check W007 shows them)."""
    bare = [config.issuer for config in settings.issuers if config.user_id_namespace is None]
    return bare if len(bare) > 1 else []


def _issuer_and_audience(values: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    issuer = values["ISSUER"]
    if not isinstance(issuer, str) or not issuer:
        raise _fail("ISSUER", "is required: the exact `iss` value of the tokens to accept.")
    if values["AUDIENCE"] is None:
        raise _fail("AUDIENCE", f"is required for issuer {issuer!r}: the `aud` your API is known by.")
    audience = _strings(values, "AUDIENCE", allow_single=True)
    if not audience:
        raise _fail("AUDIENCE", "must name at least one audience.")
    return issuer, audience


def _issuer_config(values: Mapping[str, Any], where: str) -> IssuerConfig:
    unknown = set(values) - set(ISSUER_DEFAULTS)
    if unknown:
        raise _fail(where, f"has unknown keys {sorted(unknown)}; known keys are {sorted(ISSUER_DEFAULTS)}.")
    merged = {**ISSUER_DEFAULTS, **values}
    issuer, audience = _issuer_and_audience(merged)
    algorithms = _algorithms(merged)
    cache_alias = merged["CACHE_ALIAS"]
    if not isinstance(cache_alias, str) or not cache_alias:
        raise _fail("CACHE_ALIAS", f"must name a cache in settings.CACHES, not {cache_alias!r}.")
    audience_claim = merged["AUDIENCE_CLAIM"]
    if audience_claim not in AUDIENCE_CLAIMS:
        raise _fail("AUDIENCE_CLAIM", f"must be one of {list(AUDIENCE_CLAIMS)}, not {audience_claim!r}.")
    max_bytes = merged["JWKS_MAX_BYTES"]
    if not _is_integer(max_bytes, 1024):
        raise _fail("JWKS_MAX_BYTES", f"must be an integer of at least 1024, not {max_bytes!r}.")
    return IssuerConfig(
        issuer=issuer,
        audience=audience,
        jwks_url=_url(merged, "JWKS_URL"),
        algorithms=algorithms,
        cache_alias=cache_alias,
        jwks_cache_ttl=_number(merged, "JWKS_CACHE_TTL", minimum=1),
        jwks_refresh_cooldown=_number(merged, "JWKS_REFRESH_COOLDOWN"),
        jwks_max_stale=_number(merged, "JWKS_MAX_STALE"),
        jwks_l1_recheck=_number(merged, "JWKS_L1_RECHECK"),
        jwks_max_bytes=max_bytes,
        http_timeout=_number(merged, "HTTP_TIMEOUT", minimum=0.01),
        leeway=_number(merged, "LEEWAY"),
        required_claims=_strings(merged, "REQUIRED_CLAIMS", allow_single=False),
        token_type=_token_type(merged["TOKEN_TYPE"]),
        audience_claim=audience_claim,
        user_id_namespace=_user_id_namespace(merged["USER_ID_NAMESPACE"], issuer),
    )


def _token_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _fail("TOKEN_TYPE", f"must be None or a string such as 'at+jwt', not {value!r}.")
    if not is_media_type(value):
        raise _fail(
            "TOKEN_TYPE",
            f"must be a media type such as 'at+jwt' or 'application/at+jwt', without parameters, not {value!r}.",
        )
    return value


def _user_id_namespace(value: object, issuer: str) -> str | None:
    """``USER_ID_NAMESPACE`` resolved: False -> None (bare ids), True -> the issuer itself, or the label given.

    ``#`` separates the namespace from the id, so the namespace may not hold one (RFC 8414 issuer identifiers
    have no fragment; an ``ISSUER`` with a ``#`` needs a label).
    """
    if value is False:
        return None
    namespace = issuer if value is True else value
    if not isinstance(namespace, str) or not namespace or "#" in namespace:
        raise _fail(
            "USER_ID_NAMESPACE",
            f"must be False, True (the issuer) or a label without '#', not {value!r}"
            + (f" (ISSUER {issuer!r} holds a '#': give a label)." if value is True else "."),
        )
    return namespace


def parse_settings(raw: object) -> JWTGuardSettings:
    """Validate a ``JWTGUARD`` dict; raise ``ImproperlyConfigured`` naming the offending key."""
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"settings.{SETTINGS_NAME} must be a dict, not {type(raw).__name__}.")
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise _fail(sorted(unknown)[0], f"is not a jwtguard setting; known keys are {sorted(KNOWN_KEYS)}.")
    merged = {**GLOBAL_DEFAULTS, **raw}
    issuers = _issuers(raw, merged["ISSUERS"])
    max_token = merged["MAX_TOKEN_BYTES"]
    if not _is_integer(max_token, 256):
        raise _fail("MAX_TOKEN_BYTES", f"must be an integer of at least 256, not {max_token!r}.")
    resolver = merged["USER_RESOLVER"]
    if resolver is not None and not isinstance(resolver, str):
        raise _fail("USER_RESOLVER", "must be a dotted path to a callable, or None.")
    token_cache_size = merged["TOKEN_CACHE_SIZE"]
    if not _is_integer(token_cache_size, 0, MAX_TOKEN_CACHE_SIZE):
        raise _fail(
            "TOKEN_CACHE_SIZE",
            f"must be an integer from 0 (off) to {MAX_TOKEN_CACHE_SIZE}, not {token_cache_size!r}.",
        )
    return JWTGuardSettings(
        issuers=tuple(issuers),
        strict_auth_header=bool(merged["STRICT_AUTH_HEADER"]),
        max_token_bytes=max_token,
        user_resolver=resolver,
        scope_claims=_strings(merged, "SCOPE_CLAIMS", allow_single=False),
        token_cache_size=token_cache_size,
    )


def _issuers(raw: Mapping[str, Any], entries: object) -> list[IssuerConfig]:
    """The issuers: each ``ISSUERS`` entry over the top-level issuer keys, or the top level alone."""
    shared = {k: v for k, v in raw.items() if k in ISSUER_DEFAULTS}
    if not isinstance(entries, (list, tuple)):
        raise _fail("ISSUERS", "must be a list of dicts, one per issuer.")
    if not entries:
        return [_issuer_config(shared, SETTINGS_NAME)]
    if "ISSUER" in raw:
        raise _fail("ISSUER", "and ISSUERS cannot both be set; put every issuer in ISSUERS.")
    issuers = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _fail("ISSUERS", f"entry {index} must be a dict, not {type(entry).__name__}.")
        issuers.append(_issuer_config({**shared, **entry}, f"ISSUERS[{index}]"))
    names = [c.issuer for c in issuers]
    if len(set(names)) != len(names):
        raise _fail("ISSUERS", "names the same ISSUER twice.")
    return issuers


_reset_callbacks: list[Callable[[], None]] = []


def on_reset(callback: Callable[[], None]) -> Callable[[], None]:
    """Register ``callback`` to drop objects derived from the settings when they change."""
    _reset_callbacks.append(callback)
    return callback


@functools.cache
def get_settings() -> JWTGuardSettings:
    """The validated ``JWTGUARD`` setting; read on first use, never at import time."""
    from django.conf import settings

    return parse_settings(getattr(settings, SETTINGS_NAME, {}))


def reset() -> None:
    get_settings.cache_clear()
    for callback in _reset_callbacks:
        callback()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "CACHES"):
        reset()


# Connected at import (not in AppConfig.ready) so that override_settings works even for projects
# that use the DRF class without adding jwtguard to INSTALLED_APPS.
setting_changed.connect(_setting_changed, dispatch_uid="jwtguard.conf.setting_changed")
