"""Helpers for testing APIs protected by jwtguard with real signed tokens (see ``FakeIssuer``)."""

from __future__ import annotations

from jwtguard.testing.issuer import FakeIssuer, Fault, SigningKey, generate_key

__all__ = ["Fault", "FakeIssuer", "SigningKey", "generate_key"]
