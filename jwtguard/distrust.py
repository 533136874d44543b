"""Distrust: kids an operator refuses everywhere, whatever the key set holds (the lever for a leaked key).

Two sources, both answered ``distrusted_key`` (401):

* ``DISTRUSTED_KIDS`` from settings, per issuer: in every process from its start, never lost.
* The shared list, written by ``manage.py jwtguard distrust`` / ``trust`` into each issuer's cache
  (``CACHE_ALIAS``): one entry per cache, ``jwtguard:distrust:v1``, holding records of ``kid``, ``issuer``
  (None: every issuer), ``since``, ``until``, ``reason`` and ``trusted``. ``trust`` does not delete a record:
  it writes a newer one with ``trusted`` set. Records of one (issuer, kid) merge by ``since``, the newest
  winning, so a process that holds records the cache lacks (a Redis restart, an eviction) writes them back,
  and a process that still remembers an old distrust cannot undo a later ``trust``.

Each process reads the shared list at most once per ``JWKS_L1_RECHECK`` per issuer; between two reads a
token costs one frozenset lookup. So a distrust reaches every process within ``JWKS_L1_RECHECK``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from jwtguard import signals
from jwtguard.cache import SharedCache
from jwtguard.clock import elapsed
from jwtguard.conf import IssuerConfig
from jwtguard.exceptions import DistrustedKey

logger = logging.getLogger("jwtguard")

CACHE_KEY = "jwtguard:distrust:v1"
LOCK_KEY = f"{CACHE_KEY}:lock"
#: How long ``distrust`` lasts without ``--for``: a year, i.e. until ``trust`` (and far past any token's life).
DEFAULT_FOR = 365 * 86400.0
#: The longest ``--for``: ten years.
MAX_FOR = 10 * DEFAULT_FOR
#: At most this many records are read from the cache (a bound on memory and on the work of one read).
MAX_RECORDS = 1000
#: Refusals are summarised in the log (and ``distrusted_key_refused``) at most this often, per issuer.
SUMMARY_INTERVAL = 60.0
#: The lock that serialises writers of the shared list: how long it lives, how long a writer may wait for it.
LOCK_TIMEOUT = 5.0
POLL_INTERVAL = 0.05

Source = Literal["cache", "settings"]
#: What a record is about: its issuer (None: every issuer) and its kid.
Scope = tuple[str | None, str]


@dataclass(frozen=True)
class Distrust:
    """One record: ``kid`` refused for ``issuer`` (None: every issuer) from ``since`` to ``until`` (epoch
    seconds), or, when ``trusted``, the end of such a refusal."""

    kid: str
    issuer: str | None
    since: float
    until: float
    reason: str = ""
    trusted: bool = False
    source: Source = "cache"

    @property
    def scope(self) -> Scope:
        return (self.issuer, self.kid)

    def applies_to(self, issuer: str) -> bool:
        return self.issuer is None or self.issuer == issuer

    def to_record(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "issuer": self.issuer,
            "since": self.since,
            "until": self.until,
            "reason": self.reason,
            "trusted": self.trusted,
        }


def _from_record(record: object) -> Distrust | None:
    """A record read from the cache, or None when it is not one (a cache holds what anyone wrote)."""
    if not isinstance(record, dict):
        return None
    kid, issuer, reason = record.get("kid"), record.get("issuer"), record.get("reason", "")
    since, until = record.get("since"), record.get("until")
    if not (isinstance(kid, str) and kid and (issuer is None or isinstance(issuer, str)) and isinstance(reason, str)):
        return None
    if not (_is_time(since) and _is_time(until)):
        return None
    return Distrust(kid, issuer, float(since), float(until), reason, bool(record.get("trusted")))  # type: ignore[arg-type]


def _is_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def merge(*lists: Mapping[Scope, Distrust], now: float) -> dict[Scope, Distrust]:
    """The records of ``lists`` by scope, the newest ``since`` winning (a ``trust`` on a tie); ended ones dropped."""
    merged: dict[Scope, Distrust] = {}
    for records in lists:
        for record in records.values():
            if record.until <= now:
                continue
            held = merged.get(record.scope)
            if held is None or (record.since, record.trusted) > (held.since, held.trusted):
                merged[record.scope] = record
    return merged


def read_shared(cache: SharedCache) -> dict[Scope, Distrust]:
    """The shared list of ``cache`` (one read), ended records included; empty when there is none."""
    document = cache.get(CACHE_KEY)
    entries = document.get("records") if isinstance(document, dict) and document.get("v") == 1 else None
    if not isinstance(entries, list):
        return {}
    if len(entries) > MAX_RECORDS:
        logger.warning("jwtguard: the distrust list holds %d records; only %d are read", len(entries), MAX_RECORDS)
    records = (_from_record(entry) for entry in entries[:MAX_RECORDS])
    return merge({(r.issuer, r.kid): r for r in records if r is not None}, now=-math.inf)


Change = Callable[[dict[Scope, Distrust], float], dict[Scope, Distrust]]


def update_shared(cache: SharedCache, change: Change, *, wait: float) -> dict[Scope, Distrust] | None:
    """Apply ``change(records, now)`` to the shared list under its lock (one writer at a time cluster-wide, so
    no write is lost); returns the list written, or None when the lock could not be had within ``wait``."""
    token = uuid.uuid4().hex
    deadline = elapsed() + wait
    while not cache.add(LOCK_KEY, token, LOCK_TIMEOUT):
        if elapsed() >= deadline:
            return None
        time.sleep(POLL_INTERVAL)
    try:
        now = time.time()
        records = merge(read_shared(cache), now=now)
        records = merge(records, change(records, now), now=now)
        if records:
            lasts = max(record.until for record in records.values()) - now
            document = {"v": 1, "records": [record.to_record() for record in records.values()]}
            cache.set(CACHE_KEY, document, lasts)
        else:
            cache.delete(CACHE_KEY)
        return records
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def distrust_kid(
    cache: SharedCache, kid: str, *, issuer: str | None, seconds: float | None, reason: str
) -> Distrust | None:
    """Add to the shared list of ``cache``: ``kid`` refused for ``issuer`` (None: every issuer) for ``seconds``
    (None: ``DEFAULT_FOR``). Returns the record, or None when the list's lock could not be had."""
    made: list[Distrust] = []

    def change(records: dict[Scope, Distrust], now: float) -> dict[Scope, Distrust]:
        # Newer than any record of its scope, a `trust` written by a pod whose clock runs ahead included.
        held = records.get((issuer, kid))
        since = now if held is None else max(now, held.since + 1e-6)
        made.append(Distrust(kid, issuer, since, now + (DEFAULT_FOR if seconds is None else seconds), reason))
        return {made[0].scope: made[0]}

    return None if update_shared(cache, change, wait=LOCK_TIMEOUT) is None else made[0]


def trust_kid(cache: SharedCache, kid: str, *, issuer: str | None) -> list[Distrust] | None:
    """End the distrust of ``kid`` in the shared list of ``cache``: for ``issuer`` only, or (None) every record
    of that kid. Returns the records ended (empty: there were none), or None when the lock could not be had."""
    ended: list[Distrust] = []

    def change(records: dict[Scope, Distrust], now: float) -> dict[Scope, Distrust]:
        ended.extend(
            r for r in records.values() if r.kid == kid and not r.trusted and (issuer is None or r.issuer == issuer)
        )
        # A newer record that says "trusted", kept as long as the distrust it ends could still be remembered.
        return {r.scope: replace(r, since=max(now, r.since + 1e-6), trusted=True, reason="") for r in ended}

    return None if update_shared(cache, change, wait=LOCK_TIMEOUT) is None else ended


class IssuerDistrust:
    """One issuer's distrusted kids in this process: ``DISTRUSTED_KIDS`` and the shared list, read at most once
    per ``JWKS_L1_RECHECK``. Used by ``KeyProvider`` before any key is looked up; thread-safe."""

    def __init__(self, config: IssuerConfig, cache: SharedCache) -> None:
        self.issuer = config.issuer
        self.recheck = config.jwks_l1_recheck
        self.cache = cache
        self.settings_kids = config.distrusted_kids
        #: What a token's kid is looked up in: replaced whole, never changed in place.
        self.kids: frozenset[str] = config.distrusted_kids
        self._records: dict[Scope, Distrust] = {}
        self._read_at = -math.inf
        self._read_lock = threading.Lock()
        self._announced: frozenset[str] = frozenset()
        self._refused: Counter[str] = Counter()
        self._summary_at = -math.inf
        self._summary_lock = threading.Lock()

    def refuse(self, kid: str) -> None:
        """Raise ``DistrustedKey`` for a distrusted ``kid``; reads the shared list first when it is due."""
        self.read_if_due()
        if kid in self.kids:
            self._refuse(kid)

    def refuse_nowait(self, kid: str) -> bool:
        """``refuse`` from memory: False (undecided) when the shared list is due to be read, else True."""
        if elapsed() - self._read_at >= self.recheck:
            return False
        if kid in self.kids:
            self._refuse(kid)
        return True

    def read_if_due(self) -> None:
        """``read`` when this process last read the shared list ``JWKS_L1_RECHECK`` ago or more."""
        if elapsed() - self._read_at >= self.recheck:
            self.read()

    def read(self) -> None:
        """Read the shared list and give back what it lacks of ours (a restarted or evicted cache). A thread that
        finds another one reading goes on with what this process holds, unless this process has read nothing yet:
        then it waits for that first read (bounded), so that no token passes before the list is known."""
        first = self._read_at == -math.inf
        if not self._read_lock.acquire(blocking=first, timeout=LOCK_TIMEOUT if first else -1):
            return
        try:
            if first and self._read_at != -math.inf:
                return  # another thread's first read landed while this one waited
            now = time.time()
            shared = merge(read_shared(self.cache), now=now)
            records = merge(self._records, shared, now=now)
            if records != shared:
                logger.warning(
                    "jwtguard: the distrust list in cache %r lacks %d record(s) this process holds; writing them back",
                    self.cache.alias,
                    sum(1 for scope, record in records.items() if shared.get(scope) != record),
                )
                # No wait: a writer holding the lock is merging too, and the next read looks again.
                update_shared(self.cache, lambda _records, _now: records, wait=0)
            self._records = records
            self._read_at = elapsed()
            self._announce(self._refusing())
        finally:
            self._read_lock.release()

    def entries(self) -> list[Distrust]:
        """What this issuer refuses, as last read: ``DISTRUSTED_KIDS`` first, then the shared list's records."""
        from_settings = [
            Distrust(kid, self.issuer, 0.0, math.inf, "DISTRUSTED_KIDS", source="settings")
            for kid in sorted(self.settings_kids)
        ]
        shared = sorted(
            (r for r in self._records.values() if not r.trusted and r.applies_to(self.issuer)), key=lambda r: r.since
        )
        return from_settings + shared

    def _refusing(self) -> dict[str, Distrust]:
        refusing = {r.kid: r for r in self.entries()}
        return {kid: refusing[kid] for kid in sorted(refusing)}

    def _announce(self, refusing: dict[str, Distrust]) -> None:
        kids = frozenset(refusing)
        for kid in sorted(kids - self._announced):
            record = refusing[kid]
            logger.warning(
                "jwtguard: key %r of %s is distrusted (%s, until %s, reason: %s): tokens signed with it are refused",
                kid,
                self.issuer,
                "DISTRUSTED_KIDS" if record.source == "settings" else f"cache {self.cache.alias!r}",
                "removed from settings" if record.source == "settings" else _utc(record.until),
                record.reason or "none given",
            )
            signals.key_distrusted.send(
                sender=IssuerDistrust,
                issuer=self.issuer,
                kid=kid,
                reason=record.reason,
                until=record.until,
                source=record.source,
            )
        for kid in sorted(self._announced - kids):
            logger.warning("jwtguard: key %r of %s is no longer distrusted", kid, self.issuer)
        self._announced = kids
        self.kids = kids

    def _refuse(self, kid: str) -> None:
        with self._summary_lock:
            self._refused[kid] += 1
            now = elapsed()
            summary = None
            if now - self._summary_at >= SUMMARY_INTERVAL:
                summary, self._summary_at = dict(self._refused), now
                self._refused.clear()
        if summary is not None:
            logger.warning(
                "jwtguard: refused tokens of %s signed with distrusted keys: %s (summarised every %.0fs at most)",
                self.issuer,
                ", ".join(f"{k!r} x{n}" for k, n in sorted(summary.items())),
                SUMMARY_INTERVAL,
            )
            signals.distrusted_key_refused.send(sender=IssuerDistrust, issuer=self.issuer, refused=summary)
        raise DistrustedKey(f"key {kid!r} of {self.issuer} is distrusted")


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def caches_of(configs: Iterable[IssuerConfig]) -> list[SharedCache]:
    """One ``SharedCache`` per distinct ``CACHE_ALIAS`` of ``configs``: where their distrust lists live."""
    return [SharedCache(alias) for alias in sorted({config.cache_alias for config in configs})]
