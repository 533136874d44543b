"""Real key pairs reused across tests: a 2048-bit RSA key takes ~0.1 s to make, and the security suites start
hundreds of ``FakeIssuer`` servers. Within one test every key handed out is still a different key (an
issuer's and an attacker's never coincide); keys made directly with ``generate_key`` stay fresh."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

import jwtguard.testing.issuer as issuer_module

_POOL: dict[str, list[Any]] = {}
_ORIGINAL = issuer_module.generate_key


def use_key_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``FakeIssuer`` take its keys from the pool for the rest of this test."""
    handed: Counter[str] = Counter()

    def pooled(algorithm: str = "RS256", kid: str | None = None) -> issuer_module.SigningKey:
        keys = _POOL.setdefault(algorithm, [])
        index = handed[algorithm]
        handed[algorithm] += 1
        while len(keys) <= index:
            keys.append(_ORIGINAL(algorithm).private_key)
        return issuer_module.SigningKey(
            kid=kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:12]}", algorithm=algorithm, private_key=keys[index]
        )

    monkeypatch.setattr(issuer_module, "generate_key", pooled)


def reset(server: issuer_module.FakeIssuer, keys: list[issuer_module.SigningKey]) -> issuer_module.FakeIssuer:
    """Give a ``FakeIssuer`` kept for a whole module back its first state, for the next test: starting and
    stopping a server per test costs ~50 ms, and these suites have hundreds of tests."""
    server.keys = list(keys)
    server.requests.clear()
    server.fault = None
    server.cache_control = None
    server.etag_enabled = True
    server.jwks_document = None
    server.discovery_document = None
    return server
