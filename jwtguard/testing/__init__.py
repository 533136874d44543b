"""Helpers for testing APIs protected by jwtguard with real signed tokens (see ``FakeIssuer``).

Names are imported on first use (PEP 562): the pytest plugin, a submodule, loads in every test run of
every project that installs jwtguard and must not pull in PyJWT and cryptography for nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jwtguard.testing.clients import TokenClients
    from jwtguard.testing.dpop import DPoPKey
    from jwtguard.testing.issuer import FakeIssuer, Fault, SigningKey, generate_key
    from jwtguard.testing.realms import RealmIssuer

__all__ = ["DPoPKey", "Fault", "FakeIssuer", "RealmIssuer", "SigningKey", "TokenClients", "generate_key"]

_HOMES = {
    "DPoPKey": "jwtguard.testing.dpop",
    "FakeIssuer": "jwtguard.testing.issuer",
    "Fault": "jwtguard.testing.issuer",
    "SigningKey": "jwtguard.testing.issuer",
    "generate_key": "jwtguard.testing.issuer",
    "RealmIssuer": "jwtguard.testing.realms",
    "TokenClients": "jwtguard.testing.clients",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
