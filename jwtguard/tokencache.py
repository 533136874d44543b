"""The verified-token cache (``TOKEN_CACHE_BYTES``): a token seen again skips parsing and its signature.

Like Envoy's ``jwt_cache``: per process, bounded by measured bytes (the least recently used entry goes first),
keyed by the whole token (a dict: its hash, then a full comparison, so two tokens never share an entry). Only
tokens that passed every check are remembered, and a hit still has to earn its answer:

* its ``exp``, ``nbf`` and ``iat`` are checked against the clock again, with the same leeway;
* the issuer's key provider must still hand out the very ``VerificationKey`` object that verified it. Any
  change of the key set (a rotation, a removed key, a refetch) builds new key objects, so the entry misses,
  is dropped, and the token goes through the whole validation again.

Refused tokens are never cached: each one pays the full price, as without the cache. A verified token is
stored the second time it is verified, not the first: the first time only its hash is noted (a bounded
"doorkeeper", as in TinyLFU), so a token used once costs a set insertion instead of being measured, copied
and stored, evicting one that is used again (``benchmarks/tokencache.py`` measures both).

The bound is in bytes because a count is no bound: an 8 KiB token of many tiny claims takes ~130 KiB as
dicts, a plain one ~3 KiB. Each entry is measured once, when it is stored (``entry_size``): the token text,
its header and claims walked to the bottom with ``sys.getsizeof``, plus the fixed cost of the entry itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from sys import getsizeof
from typing import TYPE_CHECKING, Any

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


#: What an entry costs besides its token text, header and claims: the ``CachedToken`` and ``AccessToken``
#: objects, the two dicts' own records, and the ordered dict's slot and link (measured on CPython 3.10-3.13
#: 64-bit, rounded up; ``tests/test_tokencache.py`` holds the whole bound against tracemalloc).
ENTRY_OVERHEAD = 512
#: The doorkeeper notes at most one token hash per this many bytes of budget (each note takes ~100 bytes:
#: the bound of the whole cache is ``TOKEN_CACHE_BYTES`` plus under 3%).
DOORKEEPER_BYTES_PER_NOTE = 4096


def entry_size(raw: str, entry: CachedToken, limit: int) -> int | None:
    """The bytes ``entry`` keeps alive under the key ``raw``; None as soon as the count passes ``limit`` (the
    walk stops there, so measuring a token costs at most what storing it would).

    Header and claims are parsed JSON: a tree of dicts and lists (no cycles, no sharing but interned strings
    and small ints, which are counted each time: an overestimate, on the safe side), as deep as the parser
    allows. Walked with a stack, never recursion.
    """
    header, claims = entry.token.header, entry.token.claims
    total = ENTRY_OVERHEAD + getsizeof(raw) + getsizeof(header) + getsizeof(claims)
    stack: list[Any] = [header, claims]
    while stack:
        container = stack.pop()
        # A nested container's own size is counted here, as its parent's child; its children when popped.
        for child in container.values() if type(container) is dict else container:
            total += getsizeof(child)
            if type(child) is dict or type(child) is list:
                stack.append(child)
        if type(container) is dict:
            total += sum(map(getsizeof, container))  # the keys (every JSON key is a str)
        if total > limit:
            return None
    return total


class TokenCache:
    """Verified tokens of this process within ``max_bytes`` (and at most ``max_entries`` tokens, when given),
    least recently used evicted first; thread-safe."""

    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        if max_bytes < 1 or (max_entries is not None and max_entries < 1):
            raise ValueError("a token cache holds at least one token")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[CachedToken, int]] = OrderedDict()
        # Hashes of tokens verified once and not stored yet, oldest first.
        self._seen_once: OrderedDict[int, None] = OrderedDict()
        self._seen_max = max(16, max_bytes // DOORKEEPER_BYTES_PER_NOTE)
        self._lock = threading.Lock()
        #: The measured bytes of the entries held (never above ``max_bytes``).
        self.bytes = 0
        #: Lookups answered from the cache, and lookups that had to validate in full (kept by the validator;
        #: for metrics and tests, exact in one thread, approximate under several).
        self.hits = 0
        self.misses = 0

    def get(self, raw: str) -> CachedToken | None:
        """The entry for ``raw`` (marked as just used), or None."""
        with self._lock:
            item = self._entries.get(raw)
            if item is None:
                return None
            self._entries.move_to_end(raw)
            return item[0]

    def put(self, raw: str, entry: CachedToken) -> None:
        """Remember ``entry`` if ``raw`` was verified before (else only note its hash), evicting the least recently
        used until it fits; a token larger than the whole budget is not remembered."""
        if not self._admit(raw):
            return
        size = entry_size(raw, entry, self.max_bytes)
        with self._lock:
            old = self._entries.pop(raw, None)
            if old is not None:
                self.bytes -= old[1]
            if size is None:
                return
            self._entries[raw] = (entry, size)
            self.bytes += size
            while self.bytes > self.max_bytes or (
                self.max_entries is not None and len(self._entries) > self.max_entries
            ):
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def _admit(self, raw: str) -> bool:
        """True when ``raw`` is stored already or was noted once before; else note it (a hash collision only
        admits a verified token one verification early)."""
        digest = hash(raw)
        with self._lock:
            if raw in self._entries:
                return True
            if digest in self._seen_once:
                del self._seen_once[digest]
                return True
            self._note(digest)
            return False

    def _note(self, digest: int) -> None:
        # Under the lock.
        self._seen_once[digest] = None
        if len(self._seen_once) > self._seen_max:
            self._seen_once.popitem(last=False)

    def discard(self, raw: str) -> None:
        """Drop ``raw``'s entry (its key or times no longer hold); a token used again after this is stored at
        once, since it was used more than once already."""
        with self._lock:
            old = self._entries.pop(raw, None)
            if old is not None:
                self.bytes -= old[1]
                self._note(hash(raw))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._seen_once.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, raw: object) -> bool:
        return raw in self._entries
