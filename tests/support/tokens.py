"""Hand-made token parts: base64url as JWS writes it (RFC 7515 section 2: no padding), for tests that forge
tokens and key sets byte by byte. Imports nothing heavy: a spawned worker (``forgery``) uses it before
Django is set up."""

from __future__ import annotations

import base64


def b64(data: bytes) -> str:
    """``data`` as one base64url segment of a compact JWS, without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    """The bytes of one base64url segment, its missing ``=`` padding put back."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
