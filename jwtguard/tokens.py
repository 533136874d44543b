"""``AccessToken``: what a verified token is, for every module that hands one on.

A leaf on purpose: it imports nothing of jwtguard at run time, so the validator, the token cache, the
resolvers and every edge can all name it without importing each other (``tokencache`` and ``validation``
once did so in a circle). ``IssuerConfig`` is imported for type checkers only; ``conf`` imports nothing
of the package, so that makes no circle either (``tests/test_architecture.py`` holds both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jwtguard.conf import IssuerConfig

__all__ = ["AccessToken"]


@dataclass(frozen=True)
class AccessToken:
    """A verified access token: its header and claims, and the issuer that vouched for it."""

    raw: str = field(repr=False)
    header: Mapping[str, Any]
    claims: dict[str, Any]
    issuer: IssuerConfig = field(repr=False)

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None
