"""The shared cache as jwtguard uses it: a Django cache that may fail, backed by a process-local stand-in.

When the Django cache raises (Redis down, timeouts), every operation falls through to a small in-process
store with the same semantics (``add`` is still "set if absent", entries still expire), so locks and
cooldowns keep working per process. The next operation tries the real cache again, so sharing resumes by
itself when it comes back. One warning per interval, never an exception to the caller.

Two kinds of cache fail without raising, and are made to look like the ones that do:

* a cache whose ``add`` does not stick (Django's ``DummyCache``: ``add`` always succeeds, ``get`` always
  misses), where no lock, cooldown or backoff would ever hold. ``DummyCache`` is known by its class; any
  other cache is probed once per process and configuration, at its first ``add``: a second ``add`` of the
  same new key must be refused (adds only: a replica that lags cannot fool it). Such a cache is per-process:
  every operation goes to the in-process store, for good.
* django-redis with ``IGNORE_EXCEPTIONS`` (or ``DJANGO_REDIS_IGNORE_EXCEPTIONS``), which answers ``None`` to
  everything while Redis is down, so no lock is ever won. jwtguard talks to its client directly, which
  raises; and an ``add`` that answers ``None`` instead of a bool from any back end counts as a failure.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache

from jwtguard.clock import elapsed

logger = logging.getLogger("jwtguard")

WARN_INTERVAL = 60.0
#: After a failure, how long to skip the real cache before trying it again (keeps requests fast).
RETRY_INTERVAL = 1.0
#: How long the probe's key may live, should its delete not arrive.
PROBE_SECONDS = 10

# Whether ``add`` sticks, per alias and configuration (once per process: the probe costs three round trips).
_add_sticks: dict[tuple[str, str], bool] = {}


class SilentFailure(Exception):
    """Raised inside ``SharedCache`` when the cache answered nothing (``add`` gave ``None``): an outage."""


class _LocalStore:
    """A minimal expiring dict with the cache API's semantics, for when the shared cache is down."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> tuple[float, Any] | None:
        item = self._data.get(key)
        if item is not None and item[0] <= now:
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._live(key, elapsed())
            return None if item is None else item[1]

    def set(self, key: str, value: Any, timeout: float) -> None:
        with self._lock:
            self._data[key] = (elapsed() + timeout, value)

    def add(self, key: str, value: Any, timeout: float) -> bool:
        with self._lock:
            now = elapsed()
            if self._live(key, now) is not None:
                return False
            self._data[key] = (now + timeout, value)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, timeout: float, delta: int = 1) -> int:
        with self._lock:
            now = elapsed()
            item = self._live(key, now)
            expires, value = item if item is not None and isinstance(item[1], int) else (now + timeout, 0)
            self._data[key] = (expires, value + delta)
            return value + delta


class SharedCache:
    """Get/set/add/delete on the Django cache ``alias``, never raising."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.local = _LocalStore()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._warned_at = -WARN_INTERVAL
        self._recovery_warned_at = -WARN_INTERVAL

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    @property
    def per_process(self) -> bool:
        """True once the cache is known not to keep what is added to it: this process's memory answers."""
        return _add_sticks.get(self._identity()) is False

    def _identity(self) -> tuple[str, str]:
        # The configuration, not the cache object: Django builds one object per thread, and tests swap CACHES.
        return self.alias, repr(getattr(settings, "CACHES", {}).get(self.alias))

    def _skip_backend(self) -> bool:
        return self._down_since is not None and elapsed() < self._retry_at

    def _backend(self, *, probe: bool = False) -> Any:
        """What to send an operation to (raises like the cache), or None when this process's memory answers.

        ``probe``: for ``add``, whose answer must be the truth; the first one per configuration learns whether
        the cache keeps what is added to it.
        """
        if self._skip_backend():
            return None
        identity = self._identity()
        sticks = _add_sticks.get(identity)
        if sticks is False:
            return None
        cache = caches[self.alias]  # at use time: override_settings(CACHES=...) and test fixtures apply
        if sticks is None and isinstance(cache, DummyCache):
            self._learned(identity, sticks=False)
            return None
        target = _raising_client(cache)
        if sticks is None and probe and not self._learned(identity, sticks=_probe(target)):
            return None
        return target

    def _learned(self, identity: tuple[str, str], *, sticks: bool) -> bool:
        """Remember for this process whether the cache keeps what is added to it (and say so when it does not)."""
        _add_sticks[identity] = sticks
        if not sticks:
            logger.warning(
                "jwtguard: cache %r does not keep what is added to it (%s); the key set, its lock, cooldown and "
                "backoff stay in this process's memory, so each process fetches for itself",
                self.alias,
                type(caches[self.alias]).__name__,
            )
        return sticks

    def _failed(self, operation: str, exc: Exception) -> None:
        now = elapsed()
        if self._down_since is None:
            self._down_since = now
        self._retry_at = now + RETRY_INTERVAL
        if now - self._warned_at >= WARN_INTERVAL:
            self._warned_at = now
            logger.warning(
                "jwtguard: cache %r failed on %s (%s: %s); using this process's memory until it answers",
                self.alias,
                operation,
                type(exc).__name__,
                exc,
            )

    def _recovered(self) -> None:
        if self._down_since is None:
            return
        now = elapsed()
        # Rate-limited like the failures: a cache that flaps (a failover) would log this once a second.
        if now - self._recovery_warned_at >= WARN_INTERVAL:
            self._recovery_warned_at = now
            logger.warning("jwtguard: cache %r answers again after %.1fs", self.alias, now - self._down_since)
        self._down_since = None

    def get(self, key: str) -> Any:
        try:
            backend = self._backend()
            if backend is not None:
                value = backend.get(key)
                self._recovered()
                return value
        except Exception as exc:
            self._failed("get", exc)
        return self.local.get(key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        # The local copy is kept too, so an outage right after a write still has the value.
        self.local.set(key, value, timeout)
        try:
            backend = self._backend()
            if backend is not None:
                backend.set(key, value, timeout=_seconds(timeout))
                self._recovered()
        except Exception as exc:
            self._failed("set", exc)

    def add(self, key: str, value: Any, timeout: float) -> bool:
        try:
            backend = self._backend(probe=True)
            if backend is not None:
                added = backend.add(key, value, timeout=_seconds(timeout))
                if added is None:
                    raise SilentFailure("add answered None (IGNORE_EXCEPTIONS with the cache down?)")
                self._recovered()
                return bool(added)
        except Exception as exc:
            self._failed("add", exc)
        return self.local.add(key, value, timeout)

    def incr(self, key: str, timeout: float, delta: int = 1) -> int:
        """Add ``delta`` to the counter ``key`` (created at 0 to live ``timeout``) and return the count the cache
        answers: the writer's own answer, from the primary, never a read that a replica may serve late."""
        try:
            backend = self._backend(probe=True)
            if backend is not None:
                backend.add(key, 0, timeout=_seconds(timeout))
                value = backend.incr(key, delta)
                self._recovered()
                if isinstance(value, int):
                    return value
        except ValueError:
            pass  # gone between add and incr: counted in this process
        except Exception as exc:
            self._failed("incr", exc)
        return self.local.incr(key, timeout, delta)

    def delete(self, key: str) -> None:
        self.local.delete(key)
        try:
            backend = self._backend()
            if backend is not None:
                backend.delete(key)
                self._recovered()
        except Exception as exc:
            self._failed("delete", exc)


def _raising_client(cache: Any) -> Any:
    """``cache``, or for django-redis with ``IGNORE_EXCEPTIONS`` its client, whose operations raise when Redis is
    down (the cache's own methods would answer ``None``: no lock won, every new process a 503)."""
    if getattr(cache, "_ignore_exceptions", False) and hasattr(cache, "client"):
        return cache.client
    return cache


def _probe(target: Any) -> bool:
    """Whether ``target`` keeps what is added to it: a second ``add`` of a new key must be refused."""
    key = f"jwtguard:probe:{uuid.uuid4().hex}"
    first = target.add(key, 1, timeout=PROBE_SECONDS)
    if not first:
        # A new key refused (or None): the cache answered nothing true; an outage, to be probed again.
        raise SilentFailure(f"add of a new key answered {first!r}")
    second = target.add(key, 2, timeout=PROBE_SECONDS)
    target.delete(key)
    return not second


def _seconds(timeout: float) -> int:
    # Cache backends count whole seconds; rounding down would end a lock or a cooldown early.
    return max(1, math.ceil(timeout))
