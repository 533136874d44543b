"""Validate JWT access tokens from an external identity provider in Django and DRF."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jwtguard.tokens import AccessToken
    from jwtguard.validation import TokenValidator

__version__ = "0.1.0"
__all__ = ["__version__", "validate_token"]

# Imported on first use (the package must import before Django is set up), then kept: an import statement
# on every call costs about a microsecond of a hot path measured in tens.
_get_validator: Callable[[], TokenValidator] | None = None


def validate_token(raw: str) -> AccessToken:
    """Validate one raw JWT with the configured validator; raises a `TokenError` or `KeySetUnavailable`."""
    global _get_validator
    if _get_validator is None:
        from jwtguard.validation import get_validator

        _get_validator = get_validator
    return _get_validator().validate(raw)
