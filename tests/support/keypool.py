"""Real key pairs reused across tests: a 2048-bit RSA key takes ~0.1 s to make, and the security suites start
hundreds of ``FakeIssuer`` servers. ``KeyPool`` is a ``FakeIssuer`` ``key_factory``; within one pool (one
test) every key handed out is still a different key (an issuer's and an attacker's never coincide); keys made
directly with ``generate_key`` stay fresh."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from jwtguard.testing import FakeIssuer, SigningKey, generate_key
from jwtguard.testing.issuer import KeyFactory

_POOL: dict[str, list[Any]] = {}


class KeyPool:
    """A ``key_factory`` handing out the pool's private keys in turn, each at most once, under fresh kids."""

    def __init__(self) -> None:
        self._handed: Counter[str] = Counter()

    def __call__(self, algorithm: str, kid: str | None = None) -> SigningKey:
        keys = _POOL.setdefault(algorithm, [])
        index = self._handed[algorithm]
        self._handed[algorithm] += 1
        while len(keys) <= index:
            keys.append(generate_key(algorithm).private_key)
        return SigningKey(
            kid=kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:12]}", algorithm=algorithm, private_key=keys[index]
        )


def reset(server: FakeIssuer, keys: list[SigningKey], key_factory: KeyFactory = generate_key) -> FakeIssuer:
    """Give a ``FakeIssuer`` kept for a whole module back its first state, for the next test, whose new keys
    come from ``key_factory``: starting and stopping a server per test costs ~50 ms, and these suites have
    hundreds of tests."""
    server.keys = list(keys)
    server.key_factory = key_factory
    server.requests.clear()
    server.fault = None
    server.cache_control = None
    server.etag_enabled = True
    server.jwks_document = None
    server.discovery_document = None
    return server
