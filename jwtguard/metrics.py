"""Counters for dashboards and alerts, readable from Python: ``jwtguard.metrics.snapshot()``.

Key-set counters are the ``KeySetCounters`` of this process's ``KeyProvider``s, added up; rejections are counted
from the ``token_rejected`` signal (connected when this module is imported, which ``JWTGuardConfig.ready``
does). Every number is per process and only grows, except that a change of settings (which only tests make)
starts the key-set counters afresh. docs/operations.md shows how to export them with prometheus_client.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jwtguard import jwks
from jwtguard.jwks import KEYSET_COUNTERS, KeySetCounters
from jwtguard.signals import token_rejected

__all__ = ["KEYSET_COUNTERS", "IssuerMetrics", "KeySetCounters", "Metrics", "reset_rejections", "snapshot"]


@dataclass(frozen=True, kw_only=True)
class IssuerMetrics(KeySetCounters):
    """One issuer's key-set counters in this process."""

    issuer: str


@dataclass(frozen=True, kw_only=True)
class Metrics(KeySetCounters):
    """All of this process's counters at one moment: key-set totals, rejections, and each issuer's."""

    #: Refused tokens by rejection code (``token_expired``, ``invalid_audience``, ...).
    rejections: dict[str, int] = field(default_factory=dict)
    issuers: tuple[IssuerMetrics, ...] = ()
    #: Key providers of issuers resolved from patterns or ``ISSUER_SOURCE``: ``held``, ``evicted``, ``fetched``.
    resolved_providers: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON or logs."""
        return {
            **self.counters(),
            "rejections": dict(self.rejections),
            "issuers": [{"issuer": m.issuer, **m.counters()} for m in self.issuers],
            "resolved_providers": dict(self.resolved_providers),
        }


_rejections: Counter[str] = Counter()
_rejections_lock = threading.Lock()


def _count_rejection(sender: Any, *, code: str, **kwargs: Any) -> None:
    with _rejections_lock:
        _rejections[code] += 1


token_rejected.connect(_count_rejection, dispatch_uid="jwtguard.metrics.count_rejection")


def snapshot() -> Metrics:
    """This process's counters now: totals, rejections by code, and the key-set counters per issuer."""
    per_issuer: dict[str, KeySetCounters] = {}
    for provider in jwks.providers():
        status = provider.status()
        per_issuer[status.issuer] = per_issuer.get(status.issuer, KeySetCounters()) + status.counters
    totals = sum(per_issuer.values(), KeySetCounters())
    with _rejections_lock:
        rejections = dict(_rejections)
    return Metrics(
        rejections=rejections,
        issuers=tuple(
            IssuerMetrics(issuer=issuer, **counts.counters()) for issuer, counts in sorted(per_issuer.items())
        ),
        resolved_providers=jwks.resolved_provider_stats(),
        **totals.counters(),
    )


def reset_rejections() -> None:
    """Zero the rejection counters (for tests; production counters should only grow)."""
    with _rejections_lock:
        _rejections.clear()
