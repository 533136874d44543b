"""DRF authentication: ``Authorization: Bearer <jwt>`` -> ``(TokenUser(claims), claims)``.

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
from jwtguard.edge import REQUEST_TOKEN_ATTRIBUTE, bearer_token, challenge, request_token, request_user
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
            raw = self.get_raw_token(self.get_header(request))
            if raw is None:
                return None
            token = self.get_validated_token(raw, request)
            django_request = _django_request(request)
            if django_request is not None and token is request_token(django_request):
                user = request_user(django_request)  # the middleware resolved it already
            else:
                user = self.get_user(token)
        except TokenError as exc:
            setattr(request, _REQUEST_ERROR_ATTRIBUTE, exc)
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

    def get_validated_token(self, raw: str, request: Request | None = None) -> AccessToken:
        cached = request_token(_django_request(request))
        if cached is not None and cached.raw == raw:
            return cached
        return get_validator().validate(raw)

    def get_user(self, token: AccessToken) -> Any:
        """A ``TokenUser``, or ``USER_RESOLVER``'s user (which may raise a ``TokenError`` to refuse)."""
        return resolve_user(token)


def _django_request(request: Request | None) -> HttpRequest | None:
    """The ``HttpRequest`` under DRF's ``Request``, where an edge before this one left the token it verified."""
    return getattr(request, "_request", None)
