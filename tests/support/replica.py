"""A Django cache that writes to a primary and reads from a replica that lags: what django-redis's
``SentinelClient`` or Django's ``RedisCache`` with several LOCATIONs do, without a Sentinel.

Both sides are ``LocMemCache``s named by ``LOCATION`` (two caches with the same LOCATION share them, like
two processes on one Redis). Writes (``set``, ``add``, ``delete``, ``incr``) go to the primary and answer
from it, as Redis's write commands do; reads (``get``, ``has_key``) come from the replica, which holds what
it held at the last ``sync()`` of that LOCATION (nothing, until the first: an empty just-restarted replica).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.locmem import LocMemCache


def _sides(location: str) -> tuple[LocMemCache, LocMemCache]:
    return LocMemCache(f"primary-{location}", {}), LocMemCache(f"replica-{location}", {})


def sync(location: str) -> None:
    """The replica of ``location`` catches up with its primary (everything, expiries included)."""
    primary, replica = _sides(location)
    with primary._lock, replica._lock:
        replica._cache.clear()
        replica._cache.update(primary._cache)
        replica._expire_info.clear()
        replica._expire_info.update(primary._expire_info)


def empty(location: str) -> None:
    """Both sides of ``location`` forget everything (a fresh test)."""
    for side in _sides(location):
        side.clear()


class LaggingReplicaCache(BaseCache):
    """Writes to the primary, reads from a replica that only catches up on ``sync()``."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.primary, self.replica = _sides(location)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self.replica.get(key, default, version)

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self.replica.has_key(key, version)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> None:
        self.primary.set(key, value, timeout, version)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self.primary.add(key, value, timeout, version)

    def delete(self, key: Any, version: Any = None) -> bool:
        return self.primary.delete(key, version)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        return self.primary.incr(key, delta, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self.primary.touch(key, timeout, version)

    def clear(self) -> None:
        self.primary.clear()
        self.replica.clear()
