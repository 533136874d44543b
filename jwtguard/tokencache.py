"""The verified-token cache (opt-in, ``TOKEN_CACHE_SIZE``): a token seen again skips parsing and its signature.

Like Envoy's ``jwt_cache``: per process, bounded (the least recently used entry goes first), keyed by the
whole token (a dict: its hash, then a full comparison, so two tokens never share an entry). Only tokens that
passed every check are remembered, and a hit still has to earn its answer:

* its ``exp``, ``nbf`` and ``iat`` are checked against the clock again, with the same leeway;
* the issuer's key provider must still hand out the very ``VerificationKey`` object that verified it. Any
  change of the key set (a rotation, a removed key, a refetch) builds new key objects, so the entry misses,
  is dropped, and the token goes through the whole validation again.

Refused tokens are never cached: each one pays the full price, as without the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jwtguard.tokens import AccessToken

if TYPE_CHECKING:
    from jwtguard.jwks import VerificationKey


@dataclass(frozen=True)
class CachedToken:
    """A token that passed validation, with the key, ``kid`` and ``alg`` it passed with."""

    token: AccessToken
    key: VerificationKey
    kid: str
    alg: str


class TokenCache:
    """At most ``max_size`` verified tokens of this process, least recently used evicted first; thread-safe."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a token cache holds at least one token")
        self.max_size = max_size
        self._entries: OrderedDict[str, CachedToken] = OrderedDict()
        self._lock = threading.Lock()
        #: Lookups answered from the cache, and lookups that had to validate in full (kept by the validator;
        #: for metrics and tests, exact in one thread, approximate under several).
        self.hits = 0
        self.misses = 0

    def get(self, raw: str) -> CachedToken | None:
        """The entry for ``raw`` (marked as just used), or None."""
        with self._lock:
            entry = self._entries.get(raw)
            if entry is not None:
                self._entries.move_to_end(raw)
            return entry

    def put(self, raw: str, entry: CachedToken) -> None:
        with self._lock:
            self._entries[raw] = entry
            self._entries.move_to_end(raw)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def discard(self, raw: str) -> None:
        with self._lock:
            self._entries.pop(raw, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, raw: object) -> bool:
        return raw in self._entries
