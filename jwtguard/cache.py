"""The shared cache as jwtguard uses it: a Django cache that may fail, backed by a process-local stand-in.

When the Django cache raises (Redis down, timeouts), every operation falls through to a small in-process
store with the same semantics (``add`` is still "set if absent", entries still expire), so locks and
cooldowns keep working per process. The next operation tries the real cache again, so sharing resumes by
itself when it comes back. One warning per interval, never an exception to the caller.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from django.core.cache import caches

from jwtguard.clock import elapsed

logger = logging.getLogger("jwtguard")

WARN_INTERVAL = 60.0
#: After a failure, how long to skip the real cache before trying it again (keeps requests fast).
RETRY_INTERVAL = 1.0


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

    def incr(self, key: str, timeout: float) -> int:
        with self._lock:
            now = elapsed()
            item = self._live(key, now)
            expires, value = item if item is not None and isinstance(item[1], int) else (now + timeout, 0)
            self._data[key] = (expires, value + 1)
            return value + 1


class SharedCache:
    """Get/set/add/delete on the Django cache ``alias``, never raising."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.local = _LocalStore()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._warned_at = -WARN_INTERVAL

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def _skip_backend(self) -> bool:
        return self._down_since is not None and elapsed() < self._retry_at

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
        if self._down_since is not None:
            logger.warning(
                "jwtguard: cache %r answers again after %.1fs",
                self.alias,
                elapsed() - self._down_since,
            )
            self._down_since = None

    def get(self, key: str) -> Any:
        if not self._skip_backend():
            try:
                # Looked up at use time, so override_settings(CACHES=...) and test fixtures apply.
                value = caches[self.alias].get(key)
            except Exception as exc:
                self._failed("get", exc)
            else:
                self._recovered()
                return value
        return self.local.get(key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        # The local copy is kept too, so an outage right after a write still has the value.
        self.local.set(key, value, timeout)
        if not self._skip_backend():
            try:
                caches[self.alias].set(key, value, timeout=_seconds(timeout))
            except Exception as exc:
                self._failed("set", exc)
            else:
                self._recovered()

    def add(self, key: str, value: Any, timeout: float) -> bool:
        if not self._skip_backend():
            try:
                added = bool(caches[self.alias].add(key, value, timeout=_seconds(timeout)))
            except Exception as exc:
                self._failed("add", exc)
            else:
                self._recovered()
                return added
        return self.local.add(key, value, timeout)

    def incr(self, key: str, timeout: float) -> int:
        """Add one to the counter ``key`` (created at 0 to live ``timeout``) and return the count the cache
        answers: the writer's own answer, from the primary, never a read that a replica may serve late."""
        if not self._skip_backend():
            try:
                cache = caches[self.alias]
                cache.add(key, 0, timeout=_seconds(timeout))
                value = cache.incr(key)
            except ValueError:
                pass  # gone between add and incr, or a cache that keeps nothing: counted in this process
            except Exception as exc:
                self._failed("incr", exc)
            else:
                self._recovered()
                if isinstance(value, int):
                    return value
        return self.local.incr(key, timeout)

    def delete(self, key: str) -> None:
        self.local.delete(key)
        if not self._skip_backend():
            try:
                caches[self.alias].delete(key)
            except Exception as exc:
                self._failed("delete", exc)
            else:
                self._recovered()


def _seconds(timeout: float) -> int:
    # Cache backends count whole seconds; rounding down would end a lock or a cooldown early.
    return max(1, math.ceil(timeout))
