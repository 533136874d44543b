"""Validate JWT access tokens from an external identity provider in Django and DRF."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jwtguard.validation import AccessToken

__version__ = "0.1.0"
__all__ = ["__version__", "validate_token"]


def validate_token(raw: str) -> AccessToken:
    """Validate one raw JWT with the configured validator; raises a `TokenError` or `KeySetUnavailable`."""
    from jwtguard.validation import get_validator

    return get_validator().validate(raw)
