"""The ``JWTGUARD`` settings, read once into frozen typed objects and re-read when they change."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

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
    # Kids refused whatever the key set holds (incident response, see jwtguard.distrust). Unlike the other keys,
    # the top level's list is added to each ISSUERS entry's own, never replaced by it.
    "DISTRUSTED_KIDS": [],
    # An ISSUER pattern only: {claim: placeholder}; the placeholder's value must equal that verified claim.
    "BIND_CLAIMS": {},
    # RFC 9449 sender-constrained tokens: "off" (Bearer only), "allowed" (DPoP or Bearer), "required" (DPoP only).
    "DPOP": "off",
}

#: ``TOKEN_CACHE_BYTES`` unless set (docs/performance.md says why the cache is on by default).
DEFAULT_TOKEN_CACHE_BYTES = 8 * 1024 * 1024

#: Keys that apply to the whole deployment.
GLOBAL_DEFAULTS: dict[str, Any] = {
    "STRICT_AUTH_HEADER": False,
    "ISSUERS": [],
    "MAX_TOKEN_BYTES": 8 * 1024,
    "USER_RESOLVER": None,
    "SCOPE_CLAIMS": ["scope", "scp"],
    # The verified-token cache's budget per process, in measured bytes (see jwtguard.tokencache); 0: off.
    "TOKEN_CACHE_BYTES": DEFAULT_TOKEN_CACHE_BYTES,
    # At most this many verified tokens too (None: the byte budget alone); 0 turns the cache off, as before
    # TOKEN_CACHE_BYTES existed.
    "TOKEN_CACHE_SIZE": None,
    # Dotted path to callable(iss) -> dict | None: issuers kept elsewhere (a database); see jwtguard.issuers.
    "ISSUER_SOURCE": None,
    "ISSUER_SOURCE_TTL": 300,
    "ISSUER_SOURCE_NEGATIVE_TTL": 60,
    "ISSUER_SOURCE_TIMEOUT": 5,
    # Issuers resolved from patterns or the source, and their key providers, held per process (an LRU).
    "ISSUER_CACHE_SIZE": 100,
    # First fetches of issuers resolved at run time with a key set of their own, per minute, deployment-wide.
    "NEW_ISSUER_FETCHES_PER_MINUTE": 30,
    # DPoP (RFC 9449; see jwtguard.dpop and docs/dpop.md).
    "DPOP_ALGORITHMS": ["ES256", "RS256", "PS256", "EdDSA"],
    "DPOP_PROOF_WINDOW": 60,
    "DPOP_PUBLIC_URL": None,
    "DPOP_NONCE": False,
    "DPOP_NONCE_LIFETIME": 300,
    # RFC 9728 protected resource metadata (see jwtguard.views.protected_resource_metadata); None: not served.
    "RESOURCE_METADATA": None,
}

#: RFC 9728 3: where a resource's metadata lives, between its host and its path.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"

#: The values ``DPOP`` may take, per issuer.
DPOP_MODES = ("off", "allowed", "required")

#: The largest ``TOKEN_CACHE_SIZE``.
MAX_TOKEN_CACHE_SIZE = 1_000_000
#: The largest ``TOKEN_CACHE_BYTES`` (1 GiB per process).
MAX_TOKEN_CACHE_BYTES = 2**30
#: The largest ``ISSUER_CACHE_SIZE`` (each issuer held may hold a parsed key set).
MAX_ISSUER_CACHE_SIZE = 100_000
#: The largest ``NEW_ISSUER_FETCHES_PER_MINUTE``.
MAX_NEW_ISSUER_FETCHES_PER_MINUTE = 100_000

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
    #: ``DISTRUSTED_KIDS``: kids refused whatever the key set holds (the top level's and the entry's own).
    distrusted_kids: frozenset[str] = frozenset()
    #: Claims that must hold exactly these values once verified (``BIND_CLAIMS`` resolved for one issuer).
    bind_claims: tuple[tuple[str, str], ...] = ()
    #: Where the issuer came from: None for ``ISSUERS``, else the pattern or ``"ISSUER_SOURCE"``. Such issuers
    #: are resolved at run time, so their key providers live in a bounded LRU (``jwks.get_provider``).
    origin: str | None = None
    #: ``DPOP``: "off" (Bearer only, as before DPoP), "allowed" (DPoP or Bearer), "required" (DPoP only).
    dpop: str = "off"

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
    #: The verified-token cache's budget per process in bytes (``TOKEN_CACHE_BYTES``); 0: no cache.
    token_cache_bytes: int = 0
    #: At most this many verified tokens per process (``TOKEN_CACHE_SIZE``); None: no count bound.
    token_cache_size: int | None = None

    @property
    def token_cache_on(self) -> bool:
        """Whether each process keeps verified tokens: a byte budget, and no ``TOKEN_CACHE_SIZE`` of 0."""
        return self.token_cache_bytes > 0 and self.token_cache_size != 0

    #: ``ISSUERS`` entries whose ``ISSUER`` holds ``{placeholders}``, in the order given.
    patterns: tuple[IssuerPattern, ...] = ()
    #: ``ISSUER_SOURCE`` and its answer times (seconds); see ``jwtguard.issuers``.
    issuer_source: str | None = None
    issuer_source_ttl: float = 300
    issuer_source_negative_ttl: float = 60
    issuer_source_timeout: float = 5
    #: How many resolved issuers (and their key providers) each process holds.
    issuer_cache_size: int = 100
    #: How many issuers resolved at run time, whose key set is their own and in no cache yet, may fetch it first
    #: per minute for the whole deployment (``NEW_ISSUER_FETCHES_PER_MINUTE``); past it, their tokens get 503.
    new_issuer_fetches_per_minute: int = 30
    #: The issuer keys at the top level, which each ``ISSUER_SOURCE`` answer is read over.
    shared_issuer_values: Mapping[str, Any] | None = field(default=None, compare=False)
    #: The ``alg`` names a DPoP proof may be signed with (``DPOP_ALGORITHMS``).
    dpop_algorithms: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")
    #: How far a proof's ``iat`` may be from now, either way (``DPOP_PROOF_WINDOW``, seconds).
    dpop_proof_window: float = 60.0
    #: The origin clients reach this service at (``DPOP_PUBLIC_URL``), for ``htu``; None: the request's own.
    dpop_public_url: str | None = None
    #: Whether proofs must carry a server nonce (``DPOP_NONCE``), and how long each nonce window lasts.
    dpop_nonce: bool = False
    dpop_nonce_lifetime: float = 300.0
    #: ``RESOURCE_METADATA``: the RFC 9728 members given (``resource`` at least), or None.
    resource_metadata: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def resource_metadata_url(self) -> str | None:
        """Where the resource's metadata is served (RFC 9728 3.1), named by every challenge; None: nowhere."""
        if self.resource_metadata is None:
            return None
        parts = urlsplit(self.resource_metadata["resource"])
        path = "" if parts.path == "/" else parts.path
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.scheme}://{parts.netloc}{RESOURCE_METADATA_PATH}{path}{query}"

    @property
    def dpop_accepted(self) -> bool:
        """Whether any issuer accepts DPoP: only then is ``Authorization: DPoP`` ours to answer."""
        return any(mode != "off" for mode in self._dpop_modes)

    @property
    def bearer_accepted(self) -> bool:
        """Whether any issuer accepts a plain Bearer token (its ``DPOP`` is not ``"required"``)."""
        return any(mode != "required" for mode in self._dpop_modes)

    @property
    def _dpop_modes(self) -> tuple[str, ...]:
        """``DPOP`` of the issuers, of the patterns' templates and, with ``ISSUER_SOURCE``, the top level's (which
        its answers are read over; one that accepts DPoP while nothing here does is refused as a bad answer)."""
        modes = tuple(config.dpop for config in self.issuers + tuple(p.template for p in self.patterns))
        if self.issuer_source is not None:
            modes += (str((self.shared_issuer_values or {}).get("DPOP", ISSUER_DEFAULTS["DPOP"])),)
        return modes

    def issuer_for(self, iss: object) -> IssuerConfig | None:
        """The issuer a token is routed to by its unverified ``iss``: the one whose ``ISSUER`` equals it.

        A token without ``iss`` goes to the only issuer, if there is one (the article's order: its key and
        signature are checked, then the missing ``iss``). Any other ``iss`` that names no configured issuer
        routes nowhere, so the token is refused before any key lookup: it costs no fetch.
        """
        for config in self.issuers:
            if config.issuer == iss:
                return config
        if iss is NO_ISS and len(self.issuers) == 1 and not self.patterns and self.issuer_source is None:
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


def _algorithms(values: Mapping[str, Any], key: str = "ALGORITHMS") -> tuple[str, ...]:
    algorithms = _strings(values, key, allow_single=False)
    if not algorithms:
        raise _fail(key, "must allow at least one algorithm.")
    for alg in algorithms:
        if is_dangerous(alg):
            if alg.lower() == "none":
                raise _fail(key, "must not contain 'none': unsigned tokens are never accepted.")
            raise _fail(
                key,
                f"must not contain {alg!r}: keys come from a JWKS of public keys, and an HMAC algorithm "
                "there lets anyone who has the public key forge tokens.",
            )
        if alg not in SUPPORTED:
            unsupported = f"contains unsupported {alg!r}{_cose_hint(alg)}"
            raise _fail(key, f"{unsupported}; use some of {sorted(SUPPORTED)}.")
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
    share a ``sub``, and so one ``request.user.id`` (check W007 shows them). An ``ISSUER`` pattern with bare ids
    is many issuers by itself."""
    bare_patterns = [pattern.pattern for pattern in settings.patterns if pattern.template.user_id_namespace is None]
    bare = [config.issuer for config in settings.issuers if config.user_id_namespace is None] + bare_patterns
    return bare if len(bare) > 1 or bare_patterns else []


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
    dpop = merged["DPOP"]
    if dpop not in DPOP_MODES:
        raise _fail("DPOP", f"must be one of {list(DPOP_MODES)}, not {dpop!r}.")
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
        distrusted_kids=frozenset(_strings(merged, "DISTRUSTED_KIDS", allow_single=False)),
        dpop=dpop,
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
    issuers, patterns = _issuers(raw, merged["ISSUERS"])
    max_token = merged["MAX_TOKEN_BYTES"]
    if not _is_integer(max_token, 256):
        raise _fail("MAX_TOKEN_BYTES", f"must be an integer of at least 256, not {max_token!r}.")
    resolver = merged["USER_RESOLVER"]
    if resolver is not None and not isinstance(resolver, str):
        raise _fail("USER_RESOLVER", "must be a dotted path to a callable, or None.")
    token_cache_size = merged["TOKEN_CACHE_SIZE"]
    if token_cache_size is not None and not _is_integer(token_cache_size, 0, MAX_TOKEN_CACHE_SIZE):
        raise _fail(
            "TOKEN_CACHE_SIZE",
            f"must be None (no count bound), or an integer from 0 (off) to {MAX_TOKEN_CACHE_SIZE}, "
            f"not {token_cache_size!r}.",
        )
    token_cache_bytes = merged["TOKEN_CACHE_BYTES"]
    if not _is_integer(token_cache_bytes, 0, MAX_TOKEN_CACHE_BYTES):
        raise _fail(
            "TOKEN_CACHE_BYTES",
            f"must be an integer from 0 (off) to {MAX_TOKEN_CACHE_BYTES}, not {token_cache_bytes!r}.",
        )
    source = merged["ISSUER_SOURCE"]
    if source is not None and (not isinstance(source, str) or "." not in source):
        raise _fail("ISSUER_SOURCE", f"must be a dotted path to a callable(iss) -> dict | None, not {source!r}.")
    cache_size = merged["ISSUER_CACHE_SIZE"]
    if not _is_integer(cache_size, 1, MAX_ISSUER_CACHE_SIZE):
        raise _fail("ISSUER_CACHE_SIZE", f"must be an integer from 1 to {MAX_ISSUER_CACHE_SIZE}, not {cache_size!r}.")
    new_issuers = merged["NEW_ISSUER_FETCHES_PER_MINUTE"]
    if not _is_integer(new_issuers, 1, MAX_NEW_ISSUER_FETCHES_PER_MINUTE):
        raise _fail(
            "NEW_ISSUER_FETCHES_PER_MINUTE",
            f"must be an integer from 1 to {MAX_NEW_ISSUER_FETCHES_PER_MINUTE}, not {new_issuers!r}.",
        )
    return JWTGuardSettings(
        issuers=tuple(issuers),
        patterns=tuple(patterns),
        issuer_source=source,
        issuer_source_ttl=_number(merged, "ISSUER_SOURCE_TTL", minimum=1),
        issuer_source_negative_ttl=_number(merged, "ISSUER_SOURCE_NEGATIVE_TTL", minimum=1),
        issuer_source_timeout=_number(merged, "ISSUER_SOURCE_TIMEOUT", minimum=0.01),
        issuer_cache_size=cache_size,
        new_issuer_fetches_per_minute=new_issuers,
        shared_issuer_values={k: v for k, v in raw.items() if k in ISSUER_DEFAULTS and k != "ISSUER"},
        strict_auth_header=bool(merged["STRICT_AUTH_HEADER"]),
        max_token_bytes=max_token,
        user_resolver=resolver,
        scope_claims=_strings(merged, "SCOPE_CLAIMS", allow_single=False),
        token_cache_bytes=token_cache_bytes,
        token_cache_size=token_cache_size,
        dpop_algorithms=_algorithms(merged, "DPOP_ALGORITHMS"),
        dpop_proof_window=_number(merged, "DPOP_PROOF_WINDOW", minimum=1),
        dpop_public_url=_public_url(merged["DPOP_PUBLIC_URL"]),
        dpop_nonce=_flag(merged, "DPOP_NONCE"),
        dpop_nonce_lifetime=_number(merged, "DPOP_NONCE_LIFETIME", minimum=10),
        resource_metadata=_resource_metadata(merged["RESOURCE_METADATA"]),
    )


def _resource_metadata(value: object) -> dict[str, Any] | None:
    """``RESOURCE_METADATA``: JSON members with a ``resource`` that is an https URL without fragment (RFC 9728 2;
    plain http on loopback, for development)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _fail("RESOURCE_METADATA", f"must be None or a dict of RFC 9728 members, not {value!r}.")
    resource = value.get("resource")
    if not isinstance(resource, str) or not is_http_url(resource) or is_remote_plain_http(resource) or "#" in resource:
        raise _fail(
            "RESOURCE_METADATA",
            f"must name the API's 'resource' identifier, an https URL without fragment, not {resource!r}.",
        )
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _fail("RESOURCE_METADATA", f"must hold JSON values only ({exc}).") from exc
    return dict(value)


def _flag(values: Mapping[str, Any], key: str) -> bool:
    value = values[key]
    if not isinstance(value, bool):
        raise _fail(key, f"must be True or False, not {value!r}.")
    return value


def _public_url(value: object) -> str | None:
    """``DPOP_PUBLIC_URL``: an origin (scheme, host, port) and nothing more; the path comes from each request."""
    if value is None:
        return None
    if isinstance(value, str) and is_http_url(value):
        parts = urlsplit(value)
        if parts.path in ("", "/") and not parts.query and not parts.fragment and not parts.username:
            return f"{parts.scheme}://{parts.netloc}"
    raise _fail(
        "DPOP_PUBLIC_URL",
        f"must be the origin clients call this service at, such as 'https://api.example.com' (no path), not {value!r}.",
    )


def _issuers(raw: Mapping[str, Any], entries: object) -> tuple[list[IssuerConfig], list[IssuerPattern]]:
    """The issuers: each ``ISSUERS`` entry over the top-level issuer keys, or the top level alone; those whose
    ``ISSUER`` holds placeholders become patterns. With ``ISSUER_SOURCE`` there may be none at all."""
    shared = {k: v for k, v in raw.items() if k in ISSUER_DEFAULTS}
    if not isinstance(entries, (list, tuple)):
        raise _fail("ISSUERS", "must be a list of dicts, one per issuer.")
    if not entries:
        if raw.get("ISSUER_SOURCE") is not None and "ISSUER" not in raw:
            return [], []
        entries = [{}]
    elif "ISSUER" in raw:
        raise _fail("ISSUER", "and ISSUERS cannot both be set; put every issuer in ISSUERS.")
    # Distrust given at the top level holds for every issuer: an entry's own list adds to it, never replaces it.
    everywhere = frozenset(_strings({**ISSUER_DEFAULTS, **shared}, "DISTRUSTED_KIDS", allow_single=False))
    top_level = entries == [{}]
    issuers: list[IssuerConfig] = []
    patterns: list[IssuerPattern] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _fail("ISSUERS", f"entry {index} must be a dict, not {type(entry).__name__}.")
        values = {**shared, **entry}
        where = SETTINGS_NAME if top_level else f"ISSUERS[{index}]"
        if is_issuer_pattern(values.get("ISSUER")):
            found = _issuer_pattern(values, where)
            template = replace(found.template, distrusted_kids=found.template.distrusted_kids | everywhere)
            patterns.append(replace(found, template=template))
        else:
            if values.get("BIND_CLAIMS"):
                raise _fail("BIND_CLAIMS", "binds placeholders of an ISSUER pattern; this ISSUER has none.")
            config = _issuer_config(values, where)
            issuers.append(replace(config, distrusted_kids=config.distrusted_kids | everywhere))
    names = [c.issuer for c in issuers] + [p.pattern for p in patterns]
    if len(set(names)) != len(names):
        raise _fail("ISSUERS", "names the same ISSUER twice.")
    return issuers, patterns


# -- issuer patterns ---------------------------------------------------------------------------------------

#: A placeholder: ``{name}``, a Python identifier.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")
#: What a placeholder in a path segment matches: RFC 3986 unreserved characters but ``.``, 1 to 128 of them.
#: Never ``/ . % ? # @ :``, so never another segment, an encoded slash, a query, userinfo or a port.
PATH_VALUE = "[A-Za-z0-9_~-]{1,128}"
#: What a placeholder in a host label matches: one lower-case DNS label (no ``.``: never another host).
HOST_VALUE = "[a-z0-9-]{1,63}"
#: Second-level labels under which a country's registrable domains sit (``example.co.uk``): a short list, not
#: the Public Suffix List, so a placeholder is refused anywhere in the last three labels there.
_SECOND_LEVEL_LABELS = frozenset({"ac", "co", "com", "edu", "gov", "go", "ne", "net", "or", "org"})
#: Longer ``iss`` values are never looked up in a pattern or the source.
MAX_ISSUER_LENGTH = 1024


def is_issuer_pattern(issuer: object) -> bool:
    """Whether an ``ISSUER`` is a pattern: it holds ``{`` or ``}`` (a stray one is reported as a problem)."""
    return isinstance(issuer, str) and ("{" in issuer or "}" in issuer)


@dataclass(frozen=True)
class IssuerPattern:
    """An ``ISSUERS`` entry whose ``ISSUER`` has ``{placeholders}``: a matcher compiled once, and the
    ``IssuerConfig`` every issuer it matches gets (with that issuer's values put in)."""

    pattern: str
    regex: re.Pattern[str]
    #: The entry's settings; ``issuer`` is the pattern and ``jwks_url`` the ``JWKS_URL`` as written.
    template: IssuerConfig
    #: ``BIND_CLAIMS`` as (claim, placeholder) pairs.
    bind: tuple[tuple[str, str], ...] = ()
    #: ``USER_ID_NAMESPACE = True``: each issuer is its own namespace.
    namespace_is_issuer: bool = False

    @property
    def shares_keys(self) -> bool:
        """Whether every issuer it matches has the same key set: a ``JWKS_URL`` without placeholders (Entra ID)."""
        return self.template.jwks_url is not None and not is_issuer_pattern(self.template.jwks_url)

    def resolve(self, iss: object) -> IssuerConfig | None:
        """The concrete issuer ``iss`` is, if this pattern matches it exactly; else None. Pure, no I/O."""
        if not isinstance(iss, str) or len(iss) > MAX_ISSUER_LENGTH:
            return None
        match = self.regex.fullmatch(iss)
        if match is None:
            return None
        values = match.groupdict()
        jwks_url = self.template.jwks_url
        if jwks_url is not None:
            for name, value in values.items():
                jwks_url = jwks_url.replace("{" + name + "}", value)
        return replace(
            self.template,
            issuer=iss,
            jwks_url=jwks_url,
            bind_claims=tuple((claim, values[name]) for claim, name in self.bind),
            user_id_namespace=iss if self.namespace_is_issuer else self.template.user_id_namespace,
            origin=self.pattern,
        )


def _authority_end(url: str) -> int:
    """Where the authority of ``url`` ends (the first ``/``, ``?`` or ``#`` after ``scheme://``)."""
    start = url.find("://") + 3
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return min(ends, default=len(url))


def pattern_problem(url: str) -> str | None:
    """What is wrong with an ``ISSUER`` pattern (or a ``JWKS_URL`` with placeholders), or None.

    A placeholder may stand for a path segment (or part of one) or a host label left of the registrable
    domain (the last two labels); never the scheme, userinfo, port, query or fragment, nor a host an attacker
    could register. The pattern must be https (plain http to loopback only, as any fetched URL).
    """
    names = _PLACEHOLDER.findall(url)
    bare = _PLACEHOLDER.sub("", url)
    if "{" in bare or "}" in bare:
        return "holds a '{' or '}' that is not a {placeholder} (a name of letters, digits and _)"
    if len(set(names)) != len(names):
        return "names a placeholder twice"
    if "}{" in url:
        return "puts two placeholders side by side: where one ends would be a guess"
    scheme, sep, _rest = url.partition("://")
    if not sep or _PLACEHOLDER.search(scheme):
        return "has a placeholder in its scheme (or no scheme): a pattern names its scheme, https"
    authority = url[len(scheme) + 3 : _authority_end(url)]
    if "@" in authority:
        return "must not have userinfo (user@)"
    bracket = authority.rfind("]")
    host, _colon, port = authority.rpartition(":") if authority.rfind(":") > bracket else (authority, "", "")
    if _PLACEHOLDER.search(port):
        return "has a placeholder in its port"
    if "?" in url or "#" in url:
        return "must not have a query or fragment"
    probe = _PLACEHOLDER.sub("x", url)
    if not is_http_url(probe) or is_remote_plain_http(probe):
        return "must be an https URL (plain http to a loopback address only)"
    labels = host.split(".")
    registrable = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL_LABELS else 2
    if _PLACEHOLDER.search(host) and (
        host.startswith("[")
        or len(labels) <= registrable
        or any(_PLACEHOLDER.search(label) for label in labels[-registrable:])
    ):
        return (
            "has a placeholder in the registrable part of its host (its last two labels, three under a "
            "country's co/com/org...): a token could then name, and send jwtguard to, a host anyone can register"
        )
    return None


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """The anchored matcher: literal parts escaped, each placeholder a named group of safe characters."""
    authority_end = _authority_end(pattern)
    pieces: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        pieces.append(re.escape(pattern[position : match.start()]))
        value = HOST_VALUE if match.start() < authority_end else PATH_VALUE
        pieces.append(f"(?P<{match.group(1)}>{value})")
        position = match.end()
    pieces.append(re.escape(pattern[position:]))
    return re.compile("".join(pieces))


def _issuer_pattern(values: Mapping[str, Any], where: str) -> IssuerPattern:
    pattern = values.get("ISSUER")
    assert isinstance(pattern, str)
    problem = pattern_problem(pattern)
    if problem:
        raise _fail("ISSUER", f"pattern {pattern!r} {problem}.")
    names = set(_PLACEHOLDER.findall(pattern))
    jwks_url = values.get("JWKS_URL")
    if isinstance(jwks_url, str) and is_issuer_pattern(jwks_url):
        problem = pattern_problem(jwks_url)
        unknown = set(_PLACEHOLDER.findall(jwks_url)) - names
        if problem or unknown:
            detail = problem or f"uses placeholders {sorted(unknown)} that ISSUER {pattern!r} does not have"
            raise _fail("JWKS_URL", f"{jwks_url!r} {detail}.")
    bind = values.get("BIND_CLAIMS") or {}
    if not isinstance(bind, Mapping) or not all(
        isinstance(claim, str) and claim and placeholder in names for claim, placeholder in bind.items()
    ):
        raise _fail("BIND_CLAIMS", f"must map claim names to placeholders of {pattern!r}, not {bind!r}.")
    template = _issuer_config(values, where)
    return IssuerPattern(
        pattern=pattern,
        regex=_compile_pattern(pattern),
        template=template,
        bind=tuple(bind.items()),
        namespace_is_issuer=values.get("USER_ID_NAMESPACE") is True,
    )


def source_issuer_config(settings: JWTGuardSettings, iss: str, answer: object) -> IssuerConfig:
    """The issuer an ``ISSUER_SOURCE`` answer describes, read over the top-level issuer keys like an ``ISSUERS``
    entry; ``ImproperlyConfigured`` for an answer that is not one (the caller answers 503 and logs it)."""
    if not isinstance(answer, Mapping):
        raise _fail("ISSUER_SOURCE", f"answered {type(answer).__name__} for {iss!r}; a dict or None is expected.")
    if answer.get("ISSUER", iss) != iss:
        raise _fail("ISSUER_SOURCE", f"answered ISSUER {answer.get('ISSUER')!r} when asked for {iss!r}.")
    if answer.get("BIND_CLAIMS") or is_issuer_pattern(answer.get("JWKS_URL")):
        raise _fail("ISSUER_SOURCE", f"answered a pattern's keys (BIND_CLAIMS, placeholders) for {iss!r}.")
    shared = settings.shared_issuer_values or {}
    config = _issuer_config({**shared, **answer, "ISSUER": iss}, "ISSUER_SOURCE")
    if config.dpop != "off" and not settings.dpop_accepted:
        # The edges read `Authorization: DPoP` only when some issuer accepts DPoP: this tenant's would never pass.
        raise _fail(
            "ISSUER_SOURCE",
            f"answered DPOP {config.dpop!r} for {iss!r} while DPoP is off for every issuer: set the top-level "
            "DPOP to 'allowed' (each answer may still say 'off' or 'required').",
        )
    # As for ISSUERS entries, the top level's DISTRUSTED_KIDS holds for every issuer the source names too.
    everywhere = frozenset(_strings({**ISSUER_DEFAULTS, **shared}, "DISTRUSTED_KIDS", allow_single=False))
    return replace(config, origin="ISSUER_SOURCE", distrusted_kids=config.distrusted_kids | everywhere)


#: The ``ISSUER`` of ``source_defaults``: no URL, so never the ``iss`` of a token.
SOURCE_DEFAULTS_ISSUER = "ISSUER_SOURCE"


def source_defaults(settings: JWTGuardSettings) -> IssuerConfig:
    """What every ``ISSUER_SOURCE`` answer gets from the top level unless it says otherwise (its cache, ``DPOP``,
    ``DISTRUSTED_KIDS``), as the issuer ``SOURCE_DEFAULTS_ISSUER``; ``ImproperlyConfigured`` when a top-level key
    is one no answer could be read over."""
    return source_issuer_config(settings, SOURCE_DEFAULTS_ISSUER, {"AUDIENCE": "-"})


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
