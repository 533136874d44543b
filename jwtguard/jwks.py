"""``KeyProvider``: the issuer's signing keys, fetched once per TTL for the whole deployment.

Three layers, each consulted only when the one before cannot answer:

* L1, this process: the parsed keys of the shared entry it last read. Rechecked against L2 at most every
  ``JWKS_L1_RECHECK`` seconds, so steady-state requests do no I/O at all.
* L2, the Django cache (Redis in production): one entry per JWKS URL holding the raw key set,
  ``fetched_at`` and validators (ETag, Last-Modified). Kept for ``JWKS_MAX_STALE`` past its freshness so an
  old copy survives an issuer outage.
* The issuer, over HTTP, by one process at a time cluster-wide: ``cache.add`` of a lock key picks the
  fetcher; the others keep serving what they have, or wait a bounded time when they have nothing.

Unknown ``kid``: look in L2 first, then open the unknown-kid window if the cluster-wide cooldown key can be
added (its fetch runs in a thread of its own; the next window opens ``JWKS_REFRESH_COOLDOWN`` after it ends),
so a flood of forged kids costs at most one fetch per cooldown for the whole deployment, and a key published
and used at once is fetched within a cooldown and two fetches. No unknown-kid request is kept longer than
``UNKNOWN_KID_WAIT``, and few are kept at all (see ``_wait_for_kid``).
Failed fetches never remove a cached key set; they arm an exponential backoff shared by every process.
Coordination never reads back what it wrote: replicas may lag (see the refresh section below).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from jwt.exceptions import PyJWTError

from jwtguard import signals
from jwtguard.algorithms import KEY_LOADERS, algorithms_for_key
from jwtguard.cache import SharedCache
from jwtguard.clock import elapsed, time_left
from jwtguard.conf import IssuerConfig, get_settings, on_reset
from jwtguard.distrust import Distrust, IssuerDistrust
from jwtguard.exceptions import AlgorithmNotAllowed, FetchError, KeySetUnavailable, UnknownKeyId
from jwtguard.fetch import FetchResult, discover_jwks_url, fetch_json

logger = logging.getLogger("jwtguard")

ENTRY_VERSION = 1
MIN_RSA_BITS = 2048
#: Verification costs grow with the modulus (about cubically) and with the public exponent's bit length: an
#: issuer's key over these would make every token under its kid, forged ones too, cost many times the usual.
MAX_RSA_BITS = 8192
MAX_RSA_EXPONENT = 2**32
MAX_KEYS = 100
#: Share of the freshness after which one process refreshes ahead of expiry.
REFRESH_AHEAD_AT = 0.8
#: How often a process waiting for another's fetch looks at the shared entry.
POLL_INTERVAL = 0.05
MAX_BACKOFF = 300.0
#: The shortest freshness an issuer's ``Cache-Control`` can impose (unless ``JWKS_CACHE_TTL`` is shorter).
MIN_FRESH_FOR = 30.0
#: The longest an unknown-kid request waits for a key-set fetch (its own window's, or the one in flight):
#: enough for an issuer that answers in normal time, short enough that a forged kid holds a worker only briefly.
UNKNOWN_KID_WAIT = 1.0
#: An owner deletes its lock without reading it back only while, by its own clock, the lock is this far from
#: expiring (so it cannot be another process's by then).
LOCK_MARGIN = 0.5
#: While the window's fetch is younger than this, one request per process waits for it (until it is this old).
PENDING_GRACE = 0.5
#: The deployment's count of new issuers' first fetches, one key per minute (``NEW_ISSUER_FETCHES_PER_MINUTE``),
#: kept 120 s, past its minute, for clocks a little apart.
NEW_ISSUERS_KEY = "jwtguard:new-issuers:v1"
_PENDING, _BACKOFF = "pending", "backoff"
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The JWK members only a private (or symmetric) key has; ``jwtguard.dpop`` refuses a proof key with any.
PRIVATE_MEMBERS = _PRIVATE_MEMBERS


@dataclass(frozen=True)
class VerificationKey:
    """One public key from the key set, with the algorithms it may verify (``jwtguard.algorithms``)."""

    kid: str
    kty: str
    algorithms: frozenset[str]
    key: Any = field(repr=False)


@dataclass(frozen=True)
class KeySet:
    """The parsed keys of one shared entry, and when that entry stops being fresh and usable."""

    keys: Mapping[str, tuple[VerificationKey, ...]]
    document: Mapping[str, Any] = field(repr=False)
    url: str
    fetched_at: float
    fresh_for: float
    max_stale: float
    etag: str | None = None
    last_modified: str | None = None

    @property
    def fresh_until(self) -> float:
        return self.fetched_at + self.fresh_for

    @property
    def stale_until(self) -> float:
        return self.fresh_until + self.max_stale

    def find(self, kid: str, alg: str) -> VerificationKey | None:
        """The key for ``kid`` that can verify ``alg``; None for an unknown kid."""
        candidates = self.keys.get(kid)
        if not candidates:
            return None
        for candidate in candidates:
            if alg in candidate.algorithms:
                return candidate
        raise AlgorithmNotAllowed(f"key {kid!r} cannot verify {alg}")

    def to_entry(self) -> dict[str, Any]:
        return {
            "v": ENTRY_VERSION,
            "url": self.url,
            "jwks": dict(self.document),
            "fetched_at": self.fetched_at,
            "fresh_for": self.fresh_for,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }


def parse_jwks(
    document: Mapping[str, Any], allowed: tuple[str, ...], *, source: str
) -> dict[str, tuple[VerificationKey, ...]]:
    """The usable signature keys of a JWKS, by kid. Everything else is skipped, with a log line saying why."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise FetchError(f"{source}: key set has no 'keys' list")
    keys: dict[str, list[VerificationKey]] = {}
    for index, jwk in enumerate(entries[: MAX_KEYS * 4]):
        if not isinstance(jwk, dict):
            logger.warning("jwtguard: %s: key %d is not an object; skipped", source, index)
            continue
        key = _parse_key(jwk, allowed, source=source, index=index)
        if key is not None:
            keys.setdefault(key.kid, []).append(key)
            if sum(len(v) for v in keys.values()) >= MAX_KEYS:
                logger.warning("jwtguard: %s: more than %d usable keys; the rest are skipped", source, MAX_KEYS)
                break
    for kid, same in keys.items():
        if len(same) > 1:
            logger.warning("jwtguard: %s: %d keys share kid %r; each is tried by algorithm", source, len(same), kid)
    return {kid: tuple(same) for kid, same in keys.items()}


def _parse_key(jwk: dict[str, Any], allowed: tuple[str, ...], *, source: str, index: int) -> VerificationKey | None:
    kid, kty = jwk.get("kid"), jwk.get("kty")
    label = f"{source}: key {index} (kid {kid!r})"
    if not isinstance(kid, str) or not kid:
        logger.info("jwtguard: %s has no kid; skipped (tokens must name their key)", label)
        return None
    if not _is_public_signing_key(jwk, label) or not isinstance(kty, str):
        return None
    usable = _usable_algorithms(jwk, kty, allowed, label)
    if not usable:
        return None
    key = _load_key(jwk, kty, label)
    return None if key is None else VerificationKey(kid=kid, kty=kty, algorithms=usable, key=key)


def _is_public_signing_key(jwk: dict[str, Any], label: str) -> bool:
    """No private members, ``use`` (if any) ``sig``, ``key_ops`` (if any) a list with ``verify``."""
    if _PRIVATE_MEMBERS & jwk.keys():
        logger.error("jwtguard: %s publishes PRIVATE key material; the key is not used. Rotate it now.", label)
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    key_ops = jwk.get("key_ops")
    return key_ops is None or (isinstance(key_ops, list) and "verify" in key_ops)


def _usable_algorithms(jwk: dict[str, Any], kty: str, allowed: tuple[str, ...], label: str) -> frozenset[str]:
    """The allowed algorithms the key's type and curve bind it to, narrowed to its own ``alg`` if it names one."""
    can_do = algorithms_for_key(kty, jwk.get("crv"))
    if not can_do:
        logger.info("jwtguard: %s has unsupported kty/crv %r/%r; skipped", label, kty, jwk.get("crv"))
        return can_do
    declared = jwk.get("alg")
    if declared is not None:
        can_do = can_do & {declared} if isinstance(declared, str) else frozenset()
        if not can_do:
            logger.info(
                "jwtguard: %s declares alg %r, which jwtguard does not accept for kty/crv %r/%r; skipped",
                label,
                declared,
                kty,
                jwk.get("crv"),
            )
            return can_do
    usable = can_do & frozenset(allowed)
    if not usable:
        logger.info("jwtguard: %s serves %s, none of ALGORITHMS %s; skipped", label, sorted(can_do), list(allowed))
    return usable


def _load_key(jwk: dict[str, Any], kty: str, label: str) -> Any:
    """The cryptography public key, or None (logged) for a key that cannot be loaded or is too weak."""
    try:
        key = KEY_LOADERS[kty](jwk)
    except (PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
        logger.warning("jwtguard: %s cannot be loaded (%s); skipped", label, exc)
        return None
    if kty == "RSA":
        return _rsa_within_caps(key, label)
    # EC keys are bound to the one curve of their alg (jwtguard.algorithms) and OKP keys to Ed25519 or Ed448:
    # their verification cost is fixed by the algorithm table, whatever the key set says.
    return key


def _rsa_within_caps(key: Any, label: str) -> Any:
    """The RSA key, or None (logged) when it is too weak or would make each verification cost unbounded."""
    if key.key_size < MIN_RSA_BITS:
        logger.warning("jwtguard: %s is a %d-bit RSA key, under %d; skipped", label, key.key_size, MIN_RSA_BITS)
        return None
    if key.key_size > MAX_RSA_BITS:
        logger.warning("jwtguard: %s is a %d-bit RSA key, over %d; skipped", label, key.key_size, MAX_RSA_BITS)
        return None
    exponent = key.public_numbers().e
    if not 3 <= exponent <= MAX_RSA_EXPONENT or exponent % 2 == 0:
        logger.warning(
            "jwtguard: %s has RSA public exponent %s, not an odd number from 3 to 2**32 (65537 is usual); skipped",
            label,
            exponent if exponent.bit_length() <= 64 else f"of {exponent.bit_length()} bits",
        )
        return None
    return key


@dataclass(frozen=True, kw_only=True)
class KeySetCounters:
    """What a ``KeyProvider`` counted in this process; the one list of counters (``jwtguard.metrics`` reports
    each field, so a counter added here is exported without touching anything else)."""

    #: Key sets fetched from the issuer (200 or 304).
    fetches: int = 0
    #: Fetches that failed (network, HTTP status, size, bad JSON, no usable key).
    fetch_failures: int = 0
    #: Times a key set past its freshness was used because no fresh one could be had.
    stale_served: int = 0
    #: Key look-ups answered from this process's memory, without any I/O.
    l1_hits: int = 0
    #: Reads of the shared cache entry.
    l2_reads: int = 0
    #: Unknown-kid refreshes refused by the cluster-wide cooldown.
    unknown_kid_refused: int = 0

    def __add__(self, other: KeySetCounters) -> KeySetCounters:
        return KeySetCounters(**{name: getattr(self, name) + getattr(other, name) for name in KEYSET_COUNTERS})

    def counters(self) -> dict[str, int]:
        """The counters by name, in ``KEYSET_COUNTERS`` order."""
        return {name: getattr(self, name) for name in KEYSET_COUNTERS}


#: The names of the ``KeySetCounters``, in the order they are reported.
KEYSET_COUNTERS: tuple[str, ...] = tuple(counter.name for counter in fields(KeySetCounters))

#: Whether a key set is held and fit to verify: ``stale`` ones are, while the issuer fails.
KeySetState = Literal["none", "fresh", "stale", "expired"]


@dataclass(frozen=True, kw_only=True)
class KeyProviderStatus:
    """One issuer's key set as a status page or a probe shows it: plain data, taken at one moment."""

    issuer: str
    cache_alias: str
    #: The key of the shared entry every process reads.
    cache_key: str
    #: Where the key set is fetched from: ``JWKS_URL``, else the discovered URL once known (else None).
    jwks_url: str | None
    #: True when ``jwks_url`` comes from OIDC discovery (``discovery_url``) rather than ``JWKS_URL``.
    discovered: bool
    discovery_url: str
    #: Where the key set held was fetched from (after redirects); None when none is held.
    keyset_url: str | None
    fetched_at: float | None
    fresh_until: float | None
    stale_until: float | None
    #: Each kid of the key set held, with the algorithms its keys may verify (sorted).
    kids: Mapping[str, tuple[str, ...]]
    etag: str | None
    #: The last fetch error this process saw (None after a successful fetch).
    last_error: str | None
    #: Failed fetches in a row and when the shared backoff ends, as every process sees them; None when not
    #: read (``KeyProvider.status()`` does no I/O).
    failures: int | None
    retry_at: float | None
    counters: KeySetCounters

    def state(self, now: float) -> KeySetState:
        """The state of the key set held, at ``now``."""
        if self.fresh_until is None or self.stale_until is None:
            return "none"
        return "fresh" if now < self.fresh_until else "stale" if now < self.stale_until else "expired"

    def describe(self, now: float) -> dict[str, Any]:
        """Age, freshness and kids of the key set held, as plain data (the probe and ``manage.py jwtguard``)."""
        if self.fetched_at is None or self.fresh_until is None or self.stale_until is None:
            return {"state": "none", "kids": {}}
        return {
            "state": self.state(now),
            "jwks_url": self.keyset_url,
            "age_seconds": round(max(0.0, now - self.fetched_at), 1),
            "fresh_for_seconds": round(max(0.0, self.fresh_until - now), 1),
            "usable_for_seconds": round(max(0.0, self.stale_until - now), 1),
            "kids": {kid: list(algorithms) for kid, algorithms in self.kids.items()},
        }


class KeyProvider:
    """The signing keys of one issuer, shared through the cache by every worker and pod.

    One instance per issuer per process (see ``get_provider``); thread-safe. Other modules use only its
    public methods and attributes: ``get_key``, ``get_key_nowait``, ``usable_keyset``, ``read_shared_keyset``,
    ``refresh``, ``status``, ``read_shared_status``, ``counters``, ``cache_keys``, ``forget``, ``forget_stale``,
    ``refuse_distrusted``, ``distrusted``.
    """

    def __init__(self, config: IssuerConfig) -> None:
        self.config = config
        self.cache = SharedCache(config.cache_alias)
        digest = hashlib.sha256((config.jwks_url or config.issuer).encode()).hexdigest()[:32]
        base = f"jwtguard:jwks:v{ENTRY_VERSION}:{digest}"
        self.entry_key = base
        self.lock_key = f"{base}:lock"
        self.cooldown_key = f"{base}:cooldown"
        self.backoff_key = f"{base}:backoff"
        self.failures_key = f"{base}:failures"
        self.discovery_key = f"jwtguard:discovery:v1:{digest}"
        self.last_error: str | None = None
        # Incremented in place on the hot path; unknown names fail (KeyError) instead of counting nowhere.
        self._counts = dict.fromkeys(KEYSET_COUNTERS, 0)
        self._keyset: KeySet | None = None
        self._checked_at = float("-inf")
        # While serving a stale set (the issuer failing, or another process fetching): until when (monotonic)
        # to serve it from memory without asking the shared cache again.
        self._stale_quiet_until = float("-inf")
        self._ahead_for: float | None = None
        self._adopt_lock = threading.Lock()
        self._distrust = IssuerDistrust(config, self.cache)
        # The unknown-kid fetch this process runs (set when over), and the one waiter this process allows.
        self._kid_fetch: threading.Event | None = None
        self._kid_fetch_guard = threading.Lock()
        self._waiter_guard = threading.Lock()
        # Per thread: the backoff a failed fetch under the lock leaves on the lock (see _fetch_lock).
        self._held = threading.local()
        #: ``NEW_ISSUER_FETCHES_PER_MINUTE`` when a cold start of this provider counts as a new issuer's first
        #: fetch (set by ``get_provider`` for issuers resolved at run time with a key set of their own); else None.
        self.new_issuer_cap: int | None = None
        self._admitted_minute: int | None = None
        self._new_issuer_key = ""
        self._admit_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------------------

    def get_key(self, kid: str, alg: str) -> VerificationKey:
        """The key for ``kid`` and ``alg``, refreshing the key set once if the kid is new and the cooldown allows.

        Raises ``UnknownKeyId`` when the kid is still unknown, ``AlgorithmNotAllowed`` when its key cannot
        verify ``alg``, ``DistrustedKey`` when the kid is distrusted (before any key set is looked at), and
        ``KeySetUnavailable`` when no key set can be had at all.
        """
        self._distrust.refuse(kid)
        keyset = self.usable_keyset()
        key = keyset.find(kid, alg)
        if key is None:
            keyset = self._refresh_for_unknown_kid(kid, keyset)
            key = keyset.find(kid, alg)
        if key is None:
            raise UnknownKeyId(f"no key {kid!r} in the key set of {self.config.issuer}")
        return key

    def get_key_nowait(self, kid: str, alg: str) -> VerificationKey | None:
        """``get_key`` if this process can answer from memory right now, else None (the caller then calls
        ``get_key`` off the event loop). Never waits on I/O, but like ``get_key`` it may start a background
        refresh-ahead thread when the key set nears the end of its freshness."""
        if not self._distrust.refuse_nowait(kid):
            return None
        keyset = self._fresh_in_memory(time.time())
        return None if keyset is None else keyset.find(kid, alg)

    def read_shared_keyset(self) -> KeySet | None:
        """The shared entry (one cache read), made this process's own; never fetches from the issuer."""
        return self._adopt(self.cache.get(self.entry_key))

    def refresh(self, reason: str = "manual") -> KeySet:
        """Fetch now, bypassing freshness (deploy hooks, readiness). Raises ``KeySetUnavailable`` on failure;
        the last good key set, if any, stays in use."""
        started = time.time()
        current = self.read_shared_keyset()
        with self._fetch_lock(force=True) as won:
            if won:
                keyset = self._fetch_and_store(reason, self.read_shared_keyset() or current)
            else:
                keyset = self._wait_for_update(current, reason)
        if keyset is None or keyset.fetched_at < started:
            raise KeySetUnavailable(self.last_error or "the key set was not fetched", retry_after=self._retry_after())
        return keyset

    def usable_keyset(self) -> KeySet:
        """A key set fit to verify with: fresh, or stale within ``JWKS_MAX_STALE`` while the issuer fails."""
        now = time.time()
        keyset = self._fresh_in_memory(now) or self._stale_in_memory(now)
        if keyset is not None:
            return keyset
        keyset = self.read_shared_keyset()
        self._counts["l2_reads"] += 1
        # The distrust list is looked at with the shared entry, so that get_key_nowait() can answer from memory
        # as long as the key set can (one hand-over to a thread per recheck, not two).
        self._distrust.read_if_due()
        if keyset is not None and now < keyset.fresh_until:
            self._refresh_ahead_if_due(keyset, now)
            return keyset
        counted = keyset is None and self.new_issuer_cap is not None and self._admit_new_issuer(self.new_issuer_cap)
        keyset = self._refresh("cold" if keyset is None else "expired", keyset)
        if counted and keyset is not None:
            # A genuine new issuer gives its count back once its key set is in: onboarding many tenants at once
            # (or a Redis restart) is never held back; failed first fetches (forged names) keep counting.
            _new_issuer_counter(self.config.cache_alias).incr(self._new_issuer_key, 120, delta=-1)
        if keyset is None or now >= keyset.stale_until:
            raise KeySetUnavailable(
                f"no key set for {self.config.issuer}: {self.last_error or 'never fetched'}",
                retry_after=self._retry_after(),
            )
        if now >= keyset.fresh_until:
            # Like a fresh set, a stale one is served from memory until the next recheck: an issuer outage
            # must not cost a cache round-trip per request (a new set still arrives by L2).
            self._counts["stale_served"] += 1
            self._stale_quiet_until = elapsed() + self.config.jwks_l1_recheck
        return keyset

    def counters(self) -> KeySetCounters:
        """This process's counters for this issuer, now."""
        return KeySetCounters(**self._counts)

    @property
    def cache_keys(self) -> tuple[str, ...]:
        """Every key this provider uses in the shared cache: the entry first, then lock, cooldown, backoff,
        failures and discovery."""
        return (
            self.entry_key,
            self.lock_key,
            self.cooldown_key,
            self.backoff_key,
            self.failures_key,
            self.discovery_key,
        )

    def status(self) -> KeyProviderStatus:
        """What this process holds now, without any I/O (the readiness probe, metrics)."""
        keyset = self._keyset
        return self._status(keyset, self.config.jwks_url or (keyset.url if keyset else None), None, None)

    def read_shared_status(self) -> KeyProviderStatus:
        """What every process sees: reads the shared entry (made this process's own), the shared failure count
        and backoff, and the discovered JWKS URL; never fetches (``manage.py jwtguard status``)."""
        keyset = self.read_shared_keyset()
        jwks_url = self.config.jwks_url or (keyset.url if keyset else None)
        if jwks_url is None:
            discovered = self.cache.get(self.discovery_key)
            jwks_url = discovered if isinstance(discovered, str) else None
        failures = self.cache.get(self.failures_key)
        retry_at = self.cache.get(self.backoff_key)
        return self._status(
            keyset,
            jwks_url,
            failures if isinstance(failures, int) else 0,
            retry_at if isinstance(retry_at, float) else None,
        )

    def forget(self) -> None:
        """Drop this provider's shared entries (``cache_keys``) and its memory: the next use starts cold.

        For tests (a later issuer may get the same URL) and operators; the counters keep counting.
        """
        for key in self.cache_keys:
            self.cache.delete(key)
        with self._adopt_lock:
            self._keyset = None
            self._checked_at = float("-inf")
            self._stale_quiet_until = float("-inf")
            self._ahead_for = None
        self.last_error = None

    def refuse_distrusted(self, kid: str) -> None:
        """Raise ``DistrustedKey`` when ``kid`` is distrusted for this issuer (``get_key`` does this first); reads
        the shared distrust list when this process last read it ``JWKS_L1_RECHECK`` ago or more."""
        self._distrust.refuse(kid)

    def distrusted(self) -> list[Distrust]:
        """The kids this issuer refuses: ``DISTRUSTED_KIDS``, then the shared list, read now (one cache read)."""
        self._distrust.read()
        return self._distrust.entries()

    def forget_stale(self) -> None:
        """Drop the key set held, in every process: the shared entry becomes a marker that makes each process
        drop its copy at its next recheck (within ``JWKS_L1_RECHECK``) rather than give it back. Until a fetch
        succeeds there is no key set: 503s. For an operator who no longer trusts the set the issuer last served."""
        forgotten_at = time.time()
        marker = {"v": ENTRY_VERSION, "forgotten_at": forgotten_at}
        self.cache.set(self.entry_key, marker, self.config.jwks_cache_ttl + self.config.jwks_max_stale)
        # The backoff armed while a set was in hand is long (up to 300 s); without one, the next request tries,
        # and failures then back off as for a cold start.
        self.cache.delete(self.backoff_key)
        self.cache.delete(self.failures_key)
        if self.cache.get(self.lock_key) == _BACKOFF:
            # A failed fetch keeps the lock for its backoff (see _fetch_lock): that backoff ends here too.
            self.cache.delete(self.lock_key)
        self._adopt(marker)

    # -- L1 / L2 --------------------------------------------------------------------------------------

    def _status(
        self, keyset: KeySet | None, jwks_url: str | None, failures: int | None, retry_at: float | None
    ) -> KeyProviderStatus:
        config = self.config
        return KeyProviderStatus(
            issuer=config.issuer,
            cache_alias=config.cache_alias,
            cache_key=self.entry_key,
            jwks_url=jwks_url,
            discovered=not config.jwks_url,
            discovery_url=config.discovery_url,
            keyset_url=keyset.url if keyset else None,
            fetched_at=keyset.fetched_at if keyset else None,
            fresh_until=keyset.fresh_until if keyset else None,
            stale_until=keyset.stale_until if keyset else None,
            kids=_algorithms_by_kid(keyset),
            etag=keyset.etag if keyset else None,
            last_error=self.last_error,
            failures=failures,
            retry_at=retry_at,
            counters=self.counters(),
        )

    def _fresh_in_memory(self, now: float) -> KeySet | None:
        """L1 when it may answer without I/O: fresh and rechecked against L2 within ``JWKS_L1_RECHECK``."""
        keyset = self._keyset
        if keyset is None or not self._l1_current(keyset, now):
            return None
        self._counts["l1_hits"] += 1
        self._refresh_ahead_if_due(keyset, now)
        return keyset

    def _stale_in_memory(self, now: float) -> KeySet | None:
        """L1 past its freshness, while a stale set is served from memory (see ``usable_keyset``)."""
        keyset = self._keyset
        if keyset is None or now >= keyset.stale_until or elapsed() >= self._stale_quiet_until:
            return None
        self._counts["stale_served"] += 1
        return keyset

    def _l1_current(self, keyset: KeySet, now: float) -> bool:
        return now < keyset.fresh_until and elapsed() - self._checked_at < self.config.jwks_l1_recheck

    def _adopt(self, entry: Any) -> KeySet | None:
        """Make a shared entry this process's L1 (parsing only when it changed); returns the L1 key set."""
        with self._adopt_lock:
            current = self._keyset
            self._checked_at = elapsed()
            if _is_forgotten(entry) and current is not None and current.fetched_at <= entry["forgotten_at"]:
                # An operator dropped the set (``forget_stale``): not served, not given back.
                self._keyset = None
                self._stale_quiet_until = float("-inf")
                return None
            if not _is_entry(entry):
                if entry is None and current is not None and time.time() < current.stale_until:
                    # The shared entry is gone (evicted, or a Redis restart): give it back without a fetch,
                    # for no longer than it can still serve.
                    self.cache.add(self.entry_key, current.to_entry(), current.stale_until - time.time())
                return current
            if current is not None and entry["fetched_at"] <= current.fetched_at:
                return current
            if current is not None and entry["jwks"] == current.document:
                # Renewed (a 304, or the same set fetched again): the keys are the ones we hold, unparsed.
                keys: Mapping[str, tuple[VerificationKey, ...]] = current.keys
            else:
                try:
                    keys = parse_jwks(entry["jwks"], self.config.algorithms, source=entry["url"])
                except FetchError:
                    return current
                if not keys:
                    return current
            self._keyset = KeySet(
                keys=keys,
                document=entry["jwks"],
                url=entry["url"],
                fetched_at=entry["fetched_at"],
                fresh_for=entry["fresh_for"],
                max_stale=self.config.jwks_max_stale,
                etag=entry.get("etag"),
                last_modified=entry.get("last_modified"),
            )
            return self._keyset

    def _entry_timeout(self, fresh_for: float) -> float:
        return fresh_for + self.config.jwks_max_stale

    def _admit_new_issuer(self, cap: int) -> bool:
        """Let this cold provider fetch only while the deployment's new issuers this minute, whose first fetch
        failed or is in flight, are within ``cap`` (the count ``incr`` answers from the primary); else
        ``KeySetUnavailable``, with no fetch: forged tenants of a discovered pattern cost at most ``cap``
        requests to the identity provider per minute. True when this call counted the issuer (a fetch that
        succeeds gives the count back, see ``usable_keyset``).

        Each issuer counts once a minute: one thread per process counts it, and a marker tells the other
        processes (a read, so only a hint: a lagging replica costs one count more, never a fetch more)."""
        minute = new_issuer_minute()
        with self._admit_lock:
            if self._admitted_minute == minute:
                return False
            marker = f"{self.entry_key}:new:{minute}"
            counted = False
            if self.cache.get(marker) is None:
                self._new_issuer_key = f"{NEW_ISSUERS_KEY}:{minute}"
                if _new_issuer_counter(self.config.cache_alias).incr(self._new_issuer_key, 120) > cap:
                    raise KeySetUnavailable(
                        f"no key set for {self.config.issuer}: too many new issuers this minute "
                        f"(NEW_ISSUER_FETCHES_PER_MINUTE is {cap}); not fetched",
                        retry_after=60 - int(time.time() % 60),
                    )
                self.cache.set(marker, minute, 120)
                counted = True
            self._admitted_minute = minute
            return counted

    # -- refresh ---------------------------------------------------------------------------------------
    #
    # Every decision that coordinates processes (who fetches, whether a window is spent, whether a backoff
    # runs, how many fetches failed) comes from a write's own answer on the primary: ``add`` (set if absent)
    # and ``incr``. Reads (``get``) may come from a lagging or empty replica (django-redis SentinelClient,
    # Django's RedisCache with several LOCATIONs); they are only hints, and a wrong one costs at most a short
    # bounded wait or one extra fetch. See docs/shared-cache.md, "Replicas".

    @contextlib.contextmanager
    def _fetch_lock(self, *, force: bool = False) -> Iterator[bool]:
        """The cluster-wide fetch lock, if free: yields True to the one process that holds it.

        ``force`` (a manual ``refresh()``) takes over a lock that the shared backoff holds. When the fetch
        under the lock fails, the lock is kept for the backoff: nobody can take it before the backoff ends,
        whatever a replica says about the backoff key.
        """
        timeout = self._lock_timeout()
        token = uuid.uuid4().hex
        if not self.cache.add(self.lock_key, token, timeout):
            if not (force and self.cache.get(self.lock_key) == _BACKOFF):
                yield False
                return
            self.cache.set(self.lock_key, token, timeout)
        taken = elapsed()
        self._held.backoff = None
        try:
            yield True
        finally:
            # Released without reading it back (a replica may not show it yet): the owner knows by the clock
            # that its lock has not expired, so it is not another process's. Past that, it expires by itself.
            if elapsed() - taken < timeout - LOCK_MARGIN:
                backoff = self._held.backoff
                if backoff:
                    self.cache.set(self.lock_key, _BACKOFF, backoff)
                else:
                    self.cache.delete(self.lock_key)

    def _refresh(self, reason: str, current: KeySet | None) -> KeySet | None:
        """Renew a cold, expired or ageing key set: one fetcher cluster-wide. The others keep serving
        ``current``, or wait for the fetcher when they have nothing. Returns the best set this process then has."""
        if self._backing_off():
            return current
        with self._fetch_lock() as won:
            if won:
                return self._fetch_unless_renewed(reason, current, kid=None)
        return current if current is not None else self._wait_for_update(None, reason)

    def _wait_for_update(self, current: KeySet | None, reason: str) -> KeySet | None:
        """Wait, bounded, for another process's fetch to land in the shared entry. The fetcher is over when its
        lock can be taken (asked of the primary with ``add``, never read from a replica): then this process,
        holding the lock, fetches itself unless the entry it can see is newer."""
        deadline = elapsed() + self._lock_timeout()
        baseline = current.fetched_at if current is not None else None
        while elapsed() < deadline:
            time.sleep(POLL_INTERVAL)
            entry = self.cache.get(self.entry_key)
            if _is_entry(entry) and (baseline is None or entry["fetched_at"] > baseline):
                return self._adopt(entry)
            if self._backing_off():
                break  # the fetch failed: no point waiting out its backoff
            with self._fetch_lock() as won:
                if won:
                    return self._fetch_unless_renewed(reason, current, kid=None)
        return self._keyset or current

    def _fetch_unless_renewed(self, reason: str, current: KeySet | None, *, kid: str | None) -> KeySet | None:
        """Under the lock: fetch, unless another process renewed the shared entry between our read and our lock."""
        shared = self.read_shared_keyset()
        if (
            shared is not None
            and (current is None or shared.fetched_at > current.fetched_at)
            and time.time() < shared.fresh_until
            and (kid is None or kid in shared.keys)
        ):
            return shared
        return self._fetch_and_store(reason, shared or current)

    def _backing_off(self) -> bool:
        """True while the shared backoff after failed fetches runs (a hint read; the lock enforces it)."""
        return self.cache.get(self.backoff_key) is not None

    def _refresh_for_unknown_kid(self, kid: str, keyset: KeySet) -> KeySet:
        """The best set for a kid ``keyset`` lacks: the shared entry first; then the unknown-kid refresh window
        if it is open (one per ``JWKS_REFRESH_COOLDOWN`` for the whole deployment, each a full cooldown after the
        previous one ended); else a wait of at most ``UNKNOWN_KID_WAIT`` for the fetch in flight, by few
        requests (``_wait_for_kid``). Every other request is answered at once."""
        shared = self.read_shared_keyset() or keyset
        if kid in shared.keys:
            return shared
        deadline = elapsed() + UNKNOWN_KID_WAIT
        fetch = self._open_window(kid, shared)
        if fetch is not None:
            fetch.wait(max(0.0, deadline - elapsed()))
            return self._keyset or shared
        shared = self._wait_for_kid(kid, shared, deadline)
        if kid not in shared.keys:
            # The window's fetch may have landed since our first look (then the window reads as closed).
            shared = self.read_shared_keyset() or shared
        if kid not in shared.keys:
            self._counts["unknown_kid_refused"] += 1
        return shared

    def _open_window(self, kid: str, shared: KeySet) -> threading.Event | None:
        """Claim this cooldown window (``add``: one winner cluster-wide) and start its fetch in a thread of its
        own, so that no request waits on a slow issuer longer than ``UNKNOWN_KID_WAIT``. Returns the event set
        when the fetch is over, or None when the window is spent or this process already fetches for a kid."""
        cooldown = self.config.jwks_refresh_cooldown
        with self._kid_fetch_guard:
            if self._kid_fetch is not None and not self._kid_fetch.is_set():
                return None
            # The claim outlives the longest fetch (a wait for a routine fetch's lock, then one HTTP_TIMEOUT), so
            # only its owner ends it; a crashed owner's claim expires by itself.
            claim = f"{_PENDING} {time.time()!r}"
            if cooldown > 0 and not self.cache.add(self.cooldown_key, claim, cooldown + 2 * self._lock_timeout()):
                return None
            done = self._kid_fetch = threading.Event()
        threading.Thread(
            target=self._fetch_for_kid, args=(kid, shared, done), name="jwtguard-unknown-kid", daemon=True
        ).start()
        return done

    def _fetch_for_kid(self, kid: str, shared: KeySet, done: threading.Event) -> None:
        """The window's fetch (in its own thread); the next window opens a full cooldown after it ends, so a
        fetch that outlasts the cooldown never starts the next one back to back."""
        try:
            self._refresh_for_kid(kid, shared)
        except Exception:  # pragma: no cover - a background thread must never die noisily
            logger.exception("jwtguard: unknown-kid refresh for %s failed", self.config.issuer)
        finally:
            cooldown = self.config.jwks_refresh_cooldown
            if cooldown > 0:
                self.cache.set(self.cooldown_key, time.time() + cooldown, cooldown)
            done.set()
            from django.db import connections

            connections.close_all()

    def _refresh_for_kid(self, kid: str, current: KeySet | None) -> KeySet | None:
        """Fetch for a kid ``current`` lacks. A fetch already in flight (its lock taken) is waited out, probing
        the lock with ``add``; its answer counts only if it has the kid, since it may have asked the issuer
        before the kid was published: otherwise this fetches once more."""
        if self._backing_off():
            return current
        deadline = elapsed() + self._lock_timeout()
        while True:
            with self._fetch_lock() as won:
                if won:
                    return self._fetch_unless_renewed("unknown_kid", current, kid=kid)
            if elapsed() >= deadline:
                return current
            time.sleep(POLL_INTERVAL)

    def _wait_for_kid(self, kid: str, shared: KeySet, deadline: float) -> KeySet:
        """The window is spent: wait for its fetch if it has just started (it may bring this very kid: a new
        key is often seen by several processes at the same moment), else answer at once; the next window is
        opened by whichever request comes once it reopens.

        One request per process waits, and only until the fetch is ``PENDING_GRACE`` old: a slow issuer keeps
        no worker beyond that. The window is read (a hint: a replica may show it late, or not at all, and then
        nobody waits)."""
        since = _pending_since(self.cache.get(self.cooldown_key))
        if since is None or time.time() - since >= PENDING_GRACE:
            return shared
        if not self._waiter_guard.acquire(blocking=False):
            return shared
        try:
            return self._poll_for_kid(kid, shared, min(deadline, elapsed() + PENDING_GRACE - (time.time() - since)))
        finally:
            self._waiter_guard.release()

    def _poll_for_kid(self, kid: str, shared: KeySet, deadline: float) -> KeySet:
        """Until ``deadline``, or until the window's fetch is over: the shared entry, if it brings the kid."""
        while elapsed() < deadline:
            time.sleep(min(POLL_INTERVAL, max(0.0, deadline - elapsed())))
            shared = self.read_shared_keyset() or shared
            if kid in shared.keys:
                return shared
            if _pending_since(self.cache.get(self.cooldown_key)) is None:
                return self.read_shared_keyset() or shared  # the fetch is over: what it brought
        return shared

    def _refresh_ahead_if_due(self, keyset: KeySet, now: float) -> None:
        """Past ``REFRESH_AHEAD_AT`` of its freshness, renew the set in a background thread (once per set)."""
        if now < keyset.fetched_at + keyset.fresh_for * REFRESH_AHEAD_AT or self._ahead_for == keyset.fetched_at:
            return
        self._ahead_for = keyset.fetched_at
        threading.Thread(
            target=self._refresh_in_background, args=(keyset,), name="jwtguard-refresh-ahead", daemon=True
        ).start()

    def _refresh_in_background(self, keyset: KeySet) -> None:
        try:
            self._refresh("refresh_ahead", keyset)
        except Exception:  # pragma: no cover - a background thread must never die noisily
            logger.exception("jwtguard: refresh-ahead for %s failed", self.config.issuer)
        finally:
            from django.db import connections

            connections.close_all()

    def _lock_timeout(self) -> float:
        # A fetch (discovery included) ends within HTTP_TIMEOUT; a crashed fetcher's lock expires soon after.
        return self.config.http_timeout + 1

    def _jwks_url(self, deadline: float) -> str:
        if self.config.jwks_url:
            return self.config.jwks_url
        cached = self.cache.get(self.discovery_key)
        if isinstance(cached, str):
            return cached
        url = discover_jwks_url(
            self.config.issuer, timeout=time_left(deadline, self.config.issuer), max_bytes=self.config.jwks_max_bytes
        )
        self.cache.set(self.discovery_key, url, max(self.config.jwks_cache_ttl, 3600))
        return url

    def _fetch_and_store(self, reason: str, base: KeySet | None) -> KeySet | None:
        """Fetch from the issuer and share the result; on failure arm the backoff and keep ``base``."""
        config = self.config
        started = elapsed()
        # One HTTP_TIMEOUT for discovery and key set together: no request waits on the issuer longer.
        deadline = started + config.http_timeout
        url = config.jwks_url or "(discovery)"
        try:
            url = self._jwks_url(deadline)
            same_url = base is not None and base.url == url
            result = fetch_json(
                url,
                timeout=time_left(deadline, url),
                max_bytes=config.jwks_max_bytes,
                etag=base.etag if same_url and base else None,
                last_modified=base.last_modified if same_url and base else None,
            )
            keyset = self._keyset_from(result, base)
        except FetchError as exc:
            return self._fetch_failed(reason, url, exc, base, elapsed() - started)
        duration = elapsed() - started
        self._store(keyset)
        self._fetched(reason, url, result.status, keyset, duration)
        return keyset

    def _store(self, keyset: KeySet) -> None:
        """A fetched set becomes the shared entry and this process's L1; the failures and backoff end."""
        self.cache.set(self.entry_key, keyset.to_entry(), self._entry_timeout(keyset.fresh_for))
        self.cache.delete(self.backoff_key)
        self.cache.delete(self.failures_key)
        with self._adopt_lock:
            self._keyset = keyset
            self._checked_at = elapsed()
        self.last_error = None

    def _fetched(self, reason: str, url: str, status: int, keyset: KeySet, duration: float) -> None:
        """Count, log and signal a successful fetch."""
        self._counts["fetches"] += 1
        kids = sorted(keyset.keys)
        logger.info(
            "jwtguard: fetched key set of %s from %s (reason: %s) in %.0f ms: HTTP %d, kids %s, fresh for %.0fs",
            self.config.issuer,
            url,
            reason,
            duration * 1000,
            status,
            kids,
            keyset.fresh_for,
        )
        signals.jwks_fetched.send(
            sender=KeyProvider,
            issuer=self.config.issuer,
            url=url,
            reason=reason,
            duration=duration,
            status=status,
            kids=kids,
        )

    def _keyset_from(self, result: FetchResult, base: KeySet | None) -> KeySet:
        ttl = self.config.jwks_cache_ttl
        # An issuer's max-age may shorten the TTL, but not below MIN_FRESH_FOR: `no-cache` (Keycloak sends it)
        # must not turn "one fetch per TTL for the deployment" into one per second.
        floor = max(1.0, min(ttl, MIN_FRESH_FOR))
        fresh_for = ttl if result.max_age is None else max(floor, min(ttl, result.max_age))
        if result.document is None:
            # 304 Not Modified: the same keys, fresh again, without parsing anything.
            assert base is not None
            keys, document, url = base.keys, base.document, base.url
        else:
            keys = parse_jwks(result.document, self.config.algorithms, source=result.url)
            if not keys:
                raise FetchError(
                    f"{result.url}: key set has no usable key for algorithms {list(self.config.algorithms)}"
                )
            document, url = result.document, result.url
        return KeySet(
            keys=keys,
            document=document,
            url=url,
            fetched_at=time.time(),
            fresh_for=fresh_for,
            max_stale=self.config.jwks_max_stale,
            etag=result.etag,
            last_modified=result.last_modified,
        )

    def _fetch_failed(
        self, reason: str, url: str, exc: FetchError, base: KeySet | None, duration: float
    ) -> KeySet | None:
        # The count as the primary answers it (a read could come from a replica that lags behind).
        failures = self.cache.incr(self.failures_key, max(self.config.jwks_max_stale, 3600))
        usable = base is not None and time.time() < base.stale_until
        backoff = self._backoff(failures, have_keys=usable)
        # The backoff key says until when (status, Retry-After); the fetch lock, kept for the backoff, enforces it.
        self.cache.set(self.backoff_key, time.time() + backoff, backoff)
        self._held.backoff = backoff
        self.last_error = exc.reason
        self._counts["fetch_failures"] += 1
        logger.warning(
            "jwtguard: fetching key set of %s (reason: %s) failed after %.0f ms: %s; %s; next try in %.0fs",
            self.config.issuer,
            reason,
            duration * 1000,
            exc.reason,
            "serving the last good key set" if usable else "no usable key set",
            backoff,
        )
        signals.jwks_fetch_failed.send(
            sender=KeyProvider,
            issuer=self.config.issuer,
            url=url,
            reason=reason,
            duration=duration,
            error=exc.reason,
        )
        return base

    def _backoff(self, failures: int, *, have_keys: bool) -> float:
        # With a key set in hand there is no hurry; without one, every second of backoff is a 503.
        base = max(self.config.jwks_refresh_cooldown, 1.0) if have_keys else 1.0
        ceiling = MAX_BACKOFF if have_keys else max(self.config.jwks_refresh_cooldown, 1.0)
        # The exponent is capped: failures keep counting through a long outage, and 2.0 ** 1024 overflows.
        return float(min(ceiling, base * 2.0 ** min(failures - 1, 32)))

    def _retry_after(self) -> int:
        until = self.cache.get(self.backoff_key)
        if isinstance(until, float):
            return max(1, int(until - time.time()) + 1)
        return max(1, int(self.config.http_timeout))


def _algorithms_by_kid(keyset: KeySet | None) -> dict[str, tuple[str, ...]]:
    if keyset is None:
        return {}
    return {
        kid: tuple(sorted({alg for key in keys for alg in key.algorithms})) for kid, keys in sorted(keyset.keys.items())
    }


def _is_forgotten(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("v") == ENTRY_VERSION and isinstance(entry.get("forgotten_at"), float)


def _pending_since(window: Any) -> float | None:
    """When the window's fetch started, from the window's value (``"pending <time>"``; ``-inf`` when it does
    not say); None when no fetch is in flight as far as the value shows."""
    if not isinstance(window, str) or not window.startswith(_PENDING):
        return None
    try:
        return float(window[len(_PENDING) :])
    except ValueError:
        return float("-inf")


def _is_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("v") == ENTRY_VERSION
        and isinstance(entry.get("jwks"), dict)
        and isinstance(entry.get("fetched_at"), float)
        and isinstance(entry.get("fresh_for"), (int, float))
        and isinstance(entry.get("url"), str)
    )


def new_issuer_minute() -> int:
    """The minute whose new issuers are counted now (its own shared counter; tests move it instead of waiting)."""
    return int(time.time() // 60)


_providers: dict[IssuerConfig, KeyProvider] = {}
_providers_lock = threading.Lock()
#: One ``SharedCache`` per alias for the new-issuer count: on a per-process cache, or while the cache is down,
#: the count falls back to the memory of that one object (per process), not of each provider.
_new_issuer_counters: dict[str, SharedCache] = {}


def _new_issuer_counter(alias: str) -> SharedCache:
    with _providers_lock:
        return _new_issuer_counters.setdefault(alias, SharedCache(alias))


#: Key providers of issuers resolved at run time (patterns, ``ISSUER_SOURCE``), least recently used first, by
#: what their key set depends on: every issuer whose keys are at one JWKS URL shares one provider.
_resolved: OrderedDict[tuple[Any, ...], KeyProvider] = OrderedDict()
_evicted = {"providers": 0, "fetches": 0}


def get_provider(config: IssuerConfig) -> KeyProvider:
    """The process's one ``KeyProvider`` for ``config`` (DRF builds authenticators per request; this is not).

    Issuers resolved at run time get theirs from a bounded LRU (``ISSUER_CACHE_SIZE``): an evicted provider
    comes back cold and reads the shared entry, without a fetch."""
    if config.origin is not None:
        return _resolved_provider(config)
    provider = _providers.get(config)
    if provider is None:
        with _providers_lock:
            provider = _providers.setdefault(config, KeyProvider(config))
    return provider


def _key_identity(config: IssuerConfig) -> tuple[Any, ...]:
    """What a key provider's behaviour depends on (not audience, claims nor user ids). ``DISTRUSTED_KIDS`` too:
    ``ISSUER_SOURCE`` tenants sharing a JWKS URL may distrust different kids (the shared entry stays one)."""
    return (
        config.jwks_url or config.issuer,
        config.distrusted_kids,
        config.algorithms,
        config.cache_alias,
        config.jwks_cache_ttl,
        config.jwks_refresh_cooldown,
        config.jwks_max_stale,
        config.jwks_l1_recheck,
        config.jwks_max_bytes,
        config.http_timeout,
    )


def _resolved_provider(config: IssuerConfig) -> KeyProvider:
    identity = _key_identity(config)
    with _providers_lock:
        provider = _resolved.get(identity)
        if provider is not None:
            _resolved.move_to_end(identity)
            return provider
        # Named by its JWKS URL when it has one: the provider may serve many issuers (all Entra ID tenants).
        keys_config = replace(
            config,
            issuer=config.jwks_url or config.issuer,
            audience=(),
            required_claims=(),
            token_type=None,
            user_id_namespace=None,
            bind_claims=(),
        )
        provider = _resolved[identity] = KeyProvider(keys_config)
        settings = get_settings()
        # Issuers of a pattern whose JWKS URL is fixed (Entra ID) share one key set: no new one to fetch.
        if not any(pattern.pattern == config.origin and pattern.shares_keys for pattern in settings.patterns):
            provider.new_issuer_cap = settings.new_issuer_fetches_per_minute
        size = settings.issuer_cache_size
        while len(_resolved) > size:
            _identity, evicted = _resolved.popitem(last=False)
            _evicted["providers"] += 1
            _evicted["fetches"] += evicted.counters().fetches
        return provider


def forget_resolved_provider(config: IssuerConfig) -> None:
    """Drop this process's provider for a resolved issuer (``issuers.forget``); the shared entry stays, for
    the other issuers that may share it."""
    with _providers_lock:
        _resolved.pop(_key_identity(config), None)


def resolved_provider_stats() -> dict[str, int]:
    """Key providers of resolved issuers in this process: ``held`` now, ``evicted`` so far, and the key sets
    they ``fetched`` (evicted ones included); ``manage.py jwtguard status`` shows them."""
    with _providers_lock:
        held = list(_resolved.values())
        evicted = dict(_evicted)
    return {
        "held": len(held),
        "evicted": evicted["providers"],
        "fetched": evicted["fetches"] + sum(provider.counters().fetches for provider in held),
    }


@on_reset
def _forget_providers() -> None:
    with _providers_lock:
        _providers.clear()
        _new_issuer_counters.clear()
        _resolved.clear()
        _evicted.update(providers=0, fetches=0)


def providers() -> list[KeyProvider]:
    """This process's ``KeyProvider``s: one per issuer configuration used since the settings last changed, and
    those of resolved issuers it holds now."""
    with _providers_lock:
        return [*_providers.values(), *_resolved.values()]
