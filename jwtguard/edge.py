"""What every edge shares: the Authorization header, the answers we refuse with, the token on the request.

An edge is a way into jwtguard from a framework: the DRF class and ``HasScope``, the middleware,
``jwt_required``, and ``contrib/``. Each imports this module and never another edge, so an edge can be
added, changed or left uninstalled without touching the others (``tests/test_architecture.py`` holds it).

* the header: ``bearer_token`` finds the token of ``Authorization: Bearer <jwt>``; ``challenge`` writes the
  RFC 6750 ``WWW-Authenticate`` we answer with;
* the refusals: ``refusal_response`` (401 with a challenge for the token's faults, 503 with ``Retry-After``
  for ours), ``insufficient_scope_response`` (403), ``vary_on_authorization`` for every answer;
* the request: ``attach_token`` leaves the verified token and its user on the ``HttpRequest``, so that the
  next edge on the same request (the DRF class, ``jwt_required``) finds them with ``request_token`` and
  ``request_user`` rather than verifying the token again;
* authenticating a plain Django request, sync (``authenticate_request``) or on the event loop
  (``aauthenticate_request``, ``avalidate``: nothing that may block runs on the loop).
"""

from __future__ import annotations

from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

from jwtguard.exceptions import (
    AuthorizationHeaderInvalid,
    AuthorizationHeaderMissing,
    JWTGuardError,
    KeySetError,
    TokenError,
)
from jwtguard.resolvers import get_user_resolver, resolve_user
from jwtguard.tokens import AccessToken
from jwtguard.validation import TokenValidator, get_validator

#: The authentication scheme of the Authorization header, the challenge and the OpenAPI security scheme.
SCHEME = "Bearer"
REALM = "api"
#: What a 403 for a genuine token without the scopes a view requires says (RFC 6750 ``insufficient_scope``).
INSUFFICIENT_SCOPE = "Token does not have the required scope"
INSUFFICIENT_SCOPE_CODE = "insufficient_scope"

#: Where the verified ``AccessToken`` is left on the ``HttpRequest``, so that DRF and ``jwt_required``
#: reuse it instead of verifying the same token again.
REQUEST_TOKEN_ATTRIBUTE = "_jwtguard_token"
#: Where the user resolved for that token is left, so that DRF does not resolve it again.
REQUEST_USER_ATTRIBUTE = "_jwtguard_user"


# The Authorization header and the RFC 6750 challenges.


def bearer_token(value: str | None, *, strict: bool) -> str | None:
    """The token of ``Bearer <token>``; None when the header is absent or another scheme (unless ``strict``).

    The scheme is matched case-insensitively (RFC 7235); the token is one run of non-blank characters.
    """
    if not value:
        if strict:
            raise AuthorizationHeaderMissing()
        return None
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != SCHEME.lower():
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
    return f"{SCHEME} " + ", ".join(parts)


# The answers an edge refuses with (plain Django; DRF makes its own from exceptions).


def refusal_response(error: JWTGuardError) -> JsonResponse:
    """401 with an RFC 6750 challenge for the token's faults; 503 with ``Retry-After`` for ours."""
    response = JsonResponse({"detail": error.detail, "code": error.code})
    if isinstance(error, KeySetError):
        response.status_code = 503
        response["Retry-After"] = str(error.retry_after)
    else:
        response.status_code = 401
        response["WWW-Authenticate"] = challenge(error)
    return response


def insufficient_scope_response(scope: str) -> JsonResponse:
    """403 for a genuine token without every scope of ``scope`` (space-separated), with its challenge."""
    response = JsonResponse({"detail": INSUFFICIENT_SCOPE, "code": INSUFFICIENT_SCOPE_CODE}, status=403)
    response["WWW-Authenticate"] = challenge(scope=scope)
    return response


R = TypeVar("R")


def vary_on_authorization(response: R) -> R:
    """Mark a response as depending on the Authorization header, so no cache serves one caller's to another."""
    if isinstance(response, HttpResponseBase):
        patch_vary_headers(response, ("Authorization",))
    return response


# The verified token on the request.


def attach_token(request: HttpRequest, token: AccessToken, user: Any) -> None:
    """Authenticate ``request`` as ``user``: ``request.user``, ``request.auser``, ``request.auth``, ``request.jwt``."""

    async def auser() -> Any:
        return user

    # django-stubs types request.user as a database user; ours may be a TokenUser.
    target: Any = request
    target.user = user
    target.auser = auser
    target.auth = target.jwt = token.claims
    setattr(request, REQUEST_TOKEN_ATTRIBUTE, token)
    setattr(request, REQUEST_USER_ATTRIBUTE, user)


def request_token(request: HttpRequest | None) -> AccessToken | None:
    """The token this request was authenticated with by jwtguard, if any."""
    token = getattr(request, REQUEST_TOKEN_ATTRIBUTE, None)
    return token if isinstance(token, AccessToken) else None


def request_user(request: HttpRequest) -> Any:
    """The user ``attach_token`` left with ``request_token(request)``."""
    return getattr(request, REQUEST_USER_ATTRIBUTE)


# Authenticating a plain Django request, sync and async.


def _raw_token(request: HttpRequest) -> str | None:
    # Never strict here: a request without a Bearer token is someone else's business (sessions, public views).
    return bearer_token(request.headers.get("Authorization"), strict=False)


def _resolve(token: AccessToken) -> Any:
    try:
        return resolve_user(token)
    except TokenError as exc:
        get_validator().rejected(exc, token.issuer)
        raise


async def aresolve_user(token: AccessToken) -> Any:
    """The user for a verified token, on the event loop: ``USER_RESOLVER`` (if any) runs in Django's ORM thread."""
    if get_user_resolver() is None:
        return _resolve(token)  # a TokenUser: no I/O
    # Thread-sensitive, as Django wants for the ORM: a resolver usually reads the user table.
    return await sync_to_async(_resolve, thread_sensitive=True)(token)


def authenticate_request(request: HttpRequest) -> JsonResponse | None:
    """Authenticate ``request`` from its Bearer token (blocking I/O allowed); the refusal to answer, or None."""
    try:
        raw = _raw_token(request)
        if raw is None:
            return None
        token = get_validator().validate(raw)
        user = _resolve(token)
    except JWTGuardError as exc:
        return refusal_response(exc)
    attach_token(request, token, user)
    return None


async def aauthenticate_request(request: HttpRequest) -> JsonResponse | None:
    """``authenticate_request`` for the event loop: whatever may block runs in a worker thread."""
    try:
        raw = _raw_token(request)
        if raw is None:
            return None
        token = await avalidate(get_validator(), raw)
        user = await aresolve_user(token)
    except JWTGuardError as exc:
        return refusal_response(exc)
    attach_token(request, token, user)
    return None


async def avalidate(validator: TokenValidator, raw: str) -> AccessToken:
    """``TokenValidator.validate`` without blocking the event loop.

    ``validate_local()`` answers on the loop whenever no I/O is needed (steady state, the token cache too);
    otherwise ``validate()`` (cache reads, perhaps a fetch) runs in a thread of its own, not the one thread
    Django keeps for thread-sensitive work, so a slow issuer cannot stall the ORM.
    """
    token = validator.validate_local(raw)
    if token is None:
        token = await sync_to_async(validator.validate, thread_sensitive=False)(raw)
    return token
