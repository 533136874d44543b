"""DRF authentication: ``Authorization: Bearer <jwt>`` (or ``DPoP <jwt>``) -> ``(TokenUser(claims), claims)``.

Thin on purpose: the header is read here, everything else is ``TokenValidator``'s. The pipeline
``get_header -> get_raw_token -> get_validated_token -> get_user`` can be overridden step by step.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from jwtguard.conf import get_settings
from jwtguard.dpop import BEARER, Presentation
from jwtguard.edge import (
    REQUEST_TOKEN_ATTRIBUTE,
    bearer_token,
    challenge,
    credentials,
    nonce_header,
    presentation,
    request_token,
    request_user,
)
from jwtguard.exceptions import KEYS_UNAVAILABLE, IssuerSourceUnavailable, KeySetError, TokenError
from jwtguard.resolvers import resolve_user
from jwtguard.tokens import AccessToken
from jwtguard.validation import get_validator

__all__ = ["REQUEST_TOKEN_ATTRIBUTE", "JWTAccessTokenAuthentication", "SigningKeysUnavailable"]

_REQUEST_ERROR_ATTRIBUTE = "_jwtguard_error"


class SigningKeysUnavailable(exceptions.APIException):
    """HTTP 503: no key set can be had, so no token can be checked; ``wait`` becomes ``Retry-After``."""

    status_code = 503
    default_detail = KEYS_UNAVAILABLE
    default_code = "jwks_unavailable"

    def __init__(self, wait: int, detail: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, code)
        self.wait = wait


class JWTAccessTokenAuthentication(BaseAuthentication):
    """Authenticates DRF requests with JWT access tokens from the configured issuer(s)."""

    def authenticate(self, request: Request) -> tuple[Any, dict[str, Any]] | None:
        try:
            found = self.get_credentials(self.get_header(request))
            if found is None:
                return None
            scheme, raw = found
            django_request = _django_request(request)
            if scheme != BEARER and django_request is not None:
                self.presentation = presentation(django_request, scheme)
            token = self.get_validated_token(raw, request)
            if django_request is not None and token is request_token(django_request):
                user = request_user(django_request)  # the middleware resolved it already
            else:
                user = self.get_user(token)
        except TokenError as exc:
            setattr(request, _REQUEST_ERROR_ATTRIBUTE, exc)
            _leave_nonce(request, exc)
            raise exceptions.AuthenticationFailed(exc.detail, code=exc.code) from exc
        except KeySetError as exc:
            # Any key-set problem is ours, never the token's.
            if isinstance(exc, IssuerSourceUnavailable):
                raise SigningKeysUnavailable(exc.retry_after, exc.detail, exc.code) from exc
            raise SigningKeysUnavailable(exc.retry_after) from exc
        return user, token.claims

    def authenticate_header(self, request: Request) -> str:
        """The RFC 6750 challenge; returning one makes DRF answer 401 rather than 403."""
        return challenge(getattr(request, _REQUEST_ERROR_ATTRIBUTE, None))

    def get_header(self, request: Request) -> str | None:
        return request.META.get("HTTP_AUTHORIZATION")

    def get_raw_token(self, header: str | None) -> str | None:
        return bearer_token(header, strict=get_settings().strict_auth_header)

    def get_credentials(self, header: str | None) -> tuple[str, str] | None:
        """``(scheme, token)``: ``get_raw_token``'s Bearer token, or a ``DPoP`` one when an issuer accepts DPoP."""
        settings = get_settings()
        if not settings.dpop_accepted:
            raw = self.get_raw_token(header)
            return None if raw is None else (BEARER, raw)
        return credentials(header, strict=settings.strict_auth_header, dpop=True)

    #: How the token being authenticated came (set by ``authenticate`` for a DPoP one; None: Bearer).
    presentation: Presentation | None = None

    def get_validated_token(self, raw: str, request: Request | None = None) -> AccessToken:
        cached = request_token(_django_request(request))
        if cached is not None and cached.raw == raw:
            return cached
        return get_validator().validate(raw, self.presentation)

    def get_user(self, token: AccessToken) -> Any:
        """A ``TokenUser``, or ``USER_RESOLVER``'s user (which may raise a ``TokenError`` to refuse)."""
        return resolve_user(token)


def _leave_nonce(request: Request, exc: TokenError) -> None:
    """Put the fresh ``DPoP-Nonce`` of a ``use_dpop_nonce`` refusal on the response: DRF's exception handler
    copies no header but ``WWW-Authenticate``, while ``APIView.finalize_response`` adds the view's ``headers``."""
    nonce = nonce_header(exc)
    view = (getattr(request, "parser_context", None) or {}).get("view")
    headers = getattr(view, "headers", None)
    if nonce is not None and isinstance(headers, dict):
        headers["DPoP-Nonce"] = nonce


def _django_request(request: Request | None) -> HttpRequest | None:
    """The ``HttpRequest`` under DRF's ``Request``, where an edge before this one left the token it verified."""
    return getattr(request, "_request", None)
