"""The Authorization header: finding the bearer token in it, and the RFC 6750 challenges we answer with."""

from __future__ import annotations

from jwtguard.exceptions import (
    AuthorizationHeaderInvalid,
    AuthorizationHeaderMissing,
    JWTGuardError,
    TokenError,
)

REALM = "api"
#: What a 403 for a genuine token without the scopes a view requires says (RFC 6750 ``insufficient_scope``).
INSUFFICIENT_SCOPE = "Token does not have the required scope"
INSUFFICIENT_SCOPE_CODE = "insufficient_scope"


def bearer_token(value: str | None, *, strict: bool) -> str | None:
    """The token of ``Bearer <token>``; None when the header is absent or another scheme (unless ``strict``).

    The scheme is matched case-insensitively (RFC 7235); the token is one run of non-blank characters.
    """
    if not value:
        if strict:
            raise AuthorizationHeaderMissing()
        return None
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "bearer":
        if strict:
            raise AuthorizationHeaderInvalid(f"scheme {scheme[:20]!r} is not Bearer")
        return None
    token = rest.strip(" ")
    if not token or " " in token or "\t" in token:
        raise AuthorizationHeaderInvalid("Bearer must be followed by exactly one token")
    return token


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(error: JWTGuardError | None = None, *, scope: str | None = None) -> str:
    """A ``WWW-Authenticate`` value: a bare challenge, or one naming the error (RFC 6750 section 3)."""
    parts = [f"realm={_quote(REALM)}"]
    if isinstance(error, AuthorizationHeaderMissing):
        error = None  # RFC 6750 3.1: no error code when the request had no credentials at all
    if isinstance(error, TokenError):
        parts.append('error="invalid_token"')
        parts.append(f"error_description={_quote(error.detail)}")
    elif scope is not None:
        parts.append('error="insufficient_scope"')
        parts.append(f"scope={_quote(scope)}")
    return "Bearer " + ", ".join(parts)
