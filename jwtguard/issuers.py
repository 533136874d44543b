"""Routing an unverified ``iss`` to its ``IssuerConfig``: ``ISSUERS`` exactly, then patterns, then ``ISSUER_SOURCE``.

* ``ISSUERS`` entries are compared exactly (``JWTGuardSettings.issuer_for``).
* Patterns (``https://login.microsoftonline.com/{tid}/v2.0``) are matched by their anchored matcher, compiled
  once in ``conf``: pure, no I/O; an ``iss`` that matches none is refused before any key lookup.
* ``ISSUER_SOURCE`` is asked last, at most once per issuer per ``ISSUER_SOURCE_TTL`` (trusted) or
  ``ISSUER_SOURCE_NEGATIVE_TTL`` (untrusted, or the source failed) for the whole deployment: its answers are
  kept in the shared cache, and the process that may call it is the one whose ``cache.add`` of a claim key
  succeeds (decided by add's own answer, never by reading back what was written). The others wait, bounded by
  ``ISSUER_SOURCE_TIMEOUT``, for the answer to appear.

Each process holds what it resolved in an LRU of ``ISSUER_CACHE_SIZE`` issuers (and as many untrusted ones),
and re-reads a source answer from the shared cache every ``RECHECK_SECONDS``, so ``issuer_changed`` or
``manage.py jwtguard forget-issuer`` reaches every process within that time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jwtguard import signals
from jwtguard.cache import SharedCache
from jwtguard.clock import elapsed
from jwtguard.conf import MAX_ISSUER_LENGTH, IssuerConfig, JWTGuardSettings, get_settings, source_issuer_config
from jwtguard.exceptions import IssuerSourceUnavailable
from jwtguard.jwks import forget_resolved_provider

logger = logging.getLogger("jwtguard")

ANSWER_VERSION = 1
#: How long a process trusts a source answer it holds before it reads the shared one again.
RECHECK_SECONDS = 5.0
#: How often a process waiting for another's source call looks at the shared answer.
POLL_INTERVAL = 0.02
SOURCE = "ISSUER_SOURCE"


class Undecided:
    """What ``resolve(local=True)`` answers when only I/O (the shared cache, the source) can decide."""


#: The one ``Undecided``.
UNDECIDED: Final = Undecided()

_routers: weakref.WeakSet[IssuerRouter] = weakref.WeakSet()


def answer_key(iss: str) -> str:
    """The shared-cache key of the source's answer for ``iss``."""
    return f"jwtguard:issuer:v{ANSWER_VERSION}:{hashlib.sha256(iss.encode()).hexdigest()[:32]}"


def source_cache_alias(settings: JWTGuardSettings) -> str:
    """The cache the source's answers are shared in: the top-level ``CACHE_ALIAS``."""
    alias = (settings.shared_issuer_values or {}).get("CACHE_ALIAS", "default")
    return alias if isinstance(alias, str) else "default"


class IssuerRouter:
    """Resolves ``iss`` values for one ``JWTGuardSettings``; thread-safe, bounded per process."""

    def __init__(self, settings: JWTGuardSettings) -> None:
        self.settings = settings
        self.size = settings.issuer_cache_size
        self.cache = SharedCache(source_cache_alias(settings))
        # iss -> (config or None for untrusted, when it was read: elapsed()); trusted and untrusted apart, so a
        # flood of forged issuers never pushes a tenant out.
        self._trusted: OrderedDict[str, tuple[IssuerConfig, float]] = OrderedDict()
        self._untrusted: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._source: Any = None
        #: Calls of ``ISSUER_SOURCE`` made by this process, and issuers evicted from its LRU.
        self.source_calls = 0
        self.evicted = 0
        _routers.add(self)

    # -- public ---------------------------------------------------------------------------------------

    def resolve(self, iss: object, *, local: bool = False) -> IssuerConfig | None | Undecided:
        """The issuer ``iss`` names, or None when nobody trusts it; with ``local``, ``UNDECIDED`` when only
        I/O can tell. Raises ``IssuerSourceUnavailable`` when the source cannot answer."""
        settings = self.settings
        config = settings.issuer_for(iss)
        if config is not None or not isinstance(iss, str) or len(iss) > MAX_ISSUER_LENGTH:
            return config
        held = self._held(iss)
        if held is not UNDECIDED:
            return held
        for pattern in settings.patterns:
            config = pattern.resolve(iss)
            if config is not None:
                self._remember(iss, config)
                return config
        if settings.issuer_source is None:
            return None
        if local:
            return UNDECIDED
        return self._from_source(iss)

    def held(self) -> dict[str, int]:
        """How many issuers this process holds: ``patterns`` and ``source`` ones, ``untrusted``; ``evicted``
        so far and ``source_calls`` made."""
        with self._lock:
            configs = [config for config, _at in self._trusted.values()]
            untrusted = len(self._untrusted)
        from_source = sum(1 for config in configs if config.origin == SOURCE)
        return {
            "patterns": len(configs) - from_source,
            "source": from_source,
            "untrusted": untrusted,
            "evicted": self.evicted,
            "source_calls": self.source_calls,
        }

    def forget(self, iss: str) -> None:
        """Drop what this process holds for ``iss``: its resolved issuer and key provider, and the source's answer
        as this router's cache holds it (a per-process cache, or one that is down, keeps it in this memory)."""
        self.cache.local.delete(answer_key(iss))
        with self._lock:
            held = self._trusted.pop(iss, None)
            self._untrusted.pop(iss, None)
        if held is not None:
            forget_resolved_provider(held[0])

    # -- this process ---------------------------------------------------------------------------------

    def _held(self, iss: str) -> IssuerConfig | None | Undecided:
        now = elapsed()
        with self._lock:
            trusted = self._trusted.get(iss)
            if trusted is not None:
                config, read_at = trusted
                if config.origin != SOURCE or now - read_at < RECHECK_SECONDS:
                    self._trusted.move_to_end(iss)
                    return config
            untrusted = self._untrusted.get(iss)
            if untrusted is not None and now - untrusted < RECHECK_SECONDS:
                return None
        return UNDECIDED

    def _remember(self, iss: str, config: IssuerConfig | None) -> None:
        now = elapsed()
        with self._lock:
            if config is None:
                self._trusted.pop(iss, None)
                self._untrusted[iss] = now
                self._untrusted.move_to_end(iss)
                while len(self._untrusted) > self.size:
                    self._untrusted.popitem(last=False)
                return
            self._untrusted.pop(iss, None)
            self._trusted[iss] = (config, now)
            self._trusted.move_to_end(iss)
            while len(self._trusted) > self.size:
                self._trusted.popitem(last=False)
                self.evicted += 1

    # -- the source -----------------------------------------------------------------------------------

    def _from_source(self, iss: str) -> IssuerConfig | None:
        """The source's answer for ``iss``: shared, else asked by the one process whose claim succeeds."""
        key = answer_key(iss)
        entry = self._entry(self.cache.get(key), iss)
        if entry is None:
            claim = uuid.uuid4().hex
            timeout = self.settings.issuer_source_timeout
            if self.cache.add(f"{key}:claim", claim, timeout + 1):
                entry = self._ask_source(iss, key, claim)
            else:
                entry = self._wait_for_answer(iss, key, timeout)
        if "error" in entry:
            raise IssuerSourceUnavailable(f"ISSUER_SOURCE for {iss!r}: {entry['error']}", retry_after=5)
        answer = entry.get("answer")
        config = None if answer is None else self._config(iss, answer)
        self._remember(iss, config)
        return config

    def _config(self, iss: str, answer: Any) -> IssuerConfig:
        try:
            return source_issuer_config(self.settings, iss, answer)
        except ImproperlyConfigured as exc:
            raise IssuerSourceUnavailable(str(exc), retry_after=5) from exc

    @staticmethod
    def _entry(value: Any, iss: str) -> dict[str, Any] | None:
        if isinstance(value, dict) and value.get("v") == ANSWER_VERSION and value.get("iss") == iss:
            return value
        return None

    def _ask_source(self, iss: str, key: str, claim: str) -> dict[str, Any]:
        """Call the source (this process holds the claim) and share its answer, or its failure."""
        settings = self.settings
        self.source_calls += 1
        started = elapsed()
        entry: dict[str, Any] = {"v": ANSWER_VERSION, "iss": iss}
        try:
            answer = self._callable()(iss)
            if answer is not None:
                source_issuer_config(settings, iss, answer)  # a bad answer is the source's failure
                answer = dict(answer)
            entry["answer"] = answer
            ttl = settings.issuer_source_ttl if answer is not None else settings.issuer_source_negative_ttl
        except Exception as exc:  # noqa: BLE001 - any failure of user code is a 503 for this issuer, logged
            entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
            ttl = settings.issuer_source_negative_ttl
            # Once per interval for the deployment: only the claim's holder calls, and logs.
            logger.error(
                "jwtguard: ISSUER_SOURCE failed for %r after %.0f ms: %s; its tokens get 503 for %.0fs",
                iss,
                (elapsed() - started) * 1000,
                entry["error"],
                ttl,
                exc_info=True,
            )
        self.cache.set(key, entry, ttl)
        if self.cache.get(f"{key}:claim") == claim:
            self.cache.delete(f"{key}:claim")
        return entry

    def _wait_for_answer(self, iss: str, key: str, timeout: float) -> dict[str, Any]:
        """Another process holds the claim: wait, bounded, for its answer."""
        deadline = elapsed() + timeout
        while elapsed() < deadline:
            time.sleep(POLL_INTERVAL)
            entry = self._entry(self.cache.get(key), iss)
            if entry is not None:
                return entry
        return {"error": "another process's ISSUER_SOURCE call did not answer in time"}

    def _callable(self) -> Any:
        if self._source is None:
            assert self.settings.issuer_source is not None
            self._source = import_string(self.settings.issuer_source)
        return self._source


def forget(iss: str, *, routers: Iterable[IssuerRouter] | None = None) -> None:
    """Drop ``iss`` everywhere: its shared source answer (every process re-asks within ``RECHECK_SECONDS``) and
    what ``routers`` (this process's) hold. ``issuer_changed`` and ``manage.py jwtguard forget-issuer`` call this."""
    SharedCache(source_cache_alias(get_settings())).delete(answer_key(iss))
    for router in list(_routers) if routers is None else routers:
        router.forget(iss)


def held_issuers() -> list[str]:
    """Every issuer this process's routers hold from a pattern or the source, trusted or not (the pytest plugin
    forgets them after each test, so a later test's issuer on the same name starts clean)."""
    found: set[str] = set()
    for router in list(_routers):
        with router._lock:
            found.update(router._trusted, router._untrusted)
    return sorted(found)


def _issuer_changed(*, issuer: str, **kwargs: Any) -> None:
    forget(issuer)


signals.issuer_changed.connect(_issuer_changed, dispatch_uid="jwtguard.issuers.issuer_changed")
