"""What every edge shares: the Authorization header, the answers we refuse with, the token on the request.

An edge is a way into jwtguard from a framework: the DRF class and ``HasScope``, the middleware,
``jwt_required``, and ``contrib/``. Each imports this module and never another edge, so an edge can be
added, changed or left uninstalled without touching the others (``tests/test_architecture.py`` holds it).

* the header: ``bearer_token`` finds the token of ``Authorization: Bearer <jwt>``, ``credentials`` that of
  ``Bearer`` or ``DPoP`` (when an issuer accepts DPoP) and ``presentation`` what a DPoP proof must match
  (the method, and the URL from ``DPOP_PUBLIC_URL`` or a host Django vouches for); ``challenge`` writes the
  RFC 6750 / RFC 9449 ``WWW-Authenticate`` we answer with;
* the refusals: ``refusal_response`` (401 with a challenge for the token's faults, 503 with ``Retry-After``
  for ours), ``insufficient_scope_response`` (403), ``vary_on_authorization`` for every answer;
* the request: ``attach_token`` leaves the verified token and its user on the ``HttpRequest``, so that the
  next edge on the same request (the DRF class, ``jwt_required``) finds them with ``request_token`` and
  ``request_user`` rather than verifying the token again;
* authenticating a plain Django request, sync (``authenticate_request``) or on the event loop
  (``aauthenticate_request``, ``avalidate``: nothing that may block runs on the loop).
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.encoding import escape_uri_path

from jwtguard.conf import JWTGuardSettings, get_settings
from jwtguard.dpop import BEARER, DPOP, Presentation, current_nonce, normalise_url
from jwtguard.exceptions import (
    AuthorizationHeaderInvalid,
    AuthorizationHeaderMissing,
    DPoPError,
    DPoPNonceRequired,
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
    found = credentials(value, strict=strict, dpop=False)
    return None if found is None else found[1]


def credentials(value: str | None, *, strict: bool, dpop: bool) -> tuple[str, str] | None:
    """``(scheme, token)`` of ``Bearer <token>``, or of ``DPoP <token>`` when ``dpop``; None as ``bearer_token``."""
    if not value:
        if strict:
            raise AuthorizationHeaderMissing()
        return None
    scheme, _, rest = value.partition(" ")
    schemes = (BEARER, DPOP) if dpop else (BEARER,)
    matched = next((name for name in schemes if scheme.lower() == name.lower()), None)
    if matched is None:
        if strict:
            raise AuthorizationHeaderInvalid(f"scheme {scheme[:20]!r} is not {' or '.join(schemes)}")
        return None
    token = rest.strip(" ")
    if not token or " " in token or "\t" in token:
        raise AuthorizationHeaderInvalid(f"{matched} must be followed by exactly one token")
    return matched, token


def request_url(request: HttpRequest) -> str | None:
    """The URL a client called, as a DPoP proof's ``htu`` names it (normalised, no query); None when unknowable.

    From ``DPOP_PUBLIC_URL`` (the origin clients call) and the request's path; without it, from the request
    itself only when Django vouches for its host: ``ALLOWED_HOSTS`` without ``"*"`` (``get_host()`` checks the
    Host, or ``X-Forwarded-Host`` under ``USE_X_FORWARDED_HOST``, against it) and the scheme from the server or
    ``SECURE_PROXY_SSL_HEADER``. A Host header anyone may set is never the URL a proof is checked against.
    """
    path = escape_uri_path(request.path)
    public = get_settings().dpop_public_url
    if public is not None:
        return normalise_url(public + path)
    if "*" in getattr(django_settings, "ALLOWED_HOSTS", ()):
        return None
    try:
        return normalise_url(request.build_absolute_uri(path))
    except DisallowedHost:
        return None


def presentation(request: HttpRequest, scheme: str) -> Presentation | None:
    """How the token of ``request`` came: None for a Bearer token (the validator's default, and its fast path);
    for DPoP the proof (exactly one ``DPoP`` header; several, which arrive joined by a comma, are no proof) and
    the method and URL it must name."""
    if scheme != DPOP:
        return None
    proof = request.headers.get("DPoP")
    return Presentation(
        scheme=DPOP,
        proof=proof if proof and "," not in proof else None,
        method=request.method or "",
        url=request_url(request),
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(error: JWTGuardError | None = None, *, scope: str | None = None) -> str:
    """A ``WWW-Authenticate`` value: a bare challenge, or one naming the error (RFC 6750 section 3).

    When an issuer accepts DPoP, a ``DPoP`` challenge with its ``algs`` (RFC 9449 7.1) too: beside the
    ``Bearer`` one while some issuer accepts Bearer tokens, alone otherwise. A DPoP refusal names its error on
    the ``DPoP`` challenge, any other on the ``Bearer`` one (on the ``DPoP`` one when it is alone).
    """
    try:
        settings: JWTGuardSettings | None = get_settings()
    except ImproperlyConfigured:
        settings = None  # a refusal must still be answered: the plain Bearer challenge
    if isinstance(error, AuthorizationHeaderMissing):
        error = None  # RFC 6750 3.1: no error code when the request had no credentials at all
    metadata_url = None if settings is None else settings.resource_metadata_url
    # RFC 9728 5.1: where a client finds how to get a token for this API, on every challenge.
    metadata = [] if metadata_url is None else [f"resource_metadata={_quote(metadata_url)}"]
    if settings is None or not settings.dpop_accepted:
        return f"{SCHEME} " + ", ".join([f"realm={_quote(REALM)}", *_error_parts(error, scope), *metadata])
    on_dpop = isinstance(error, DPoPError) or not settings.bearer_accepted
    challenges = []
    if settings.bearer_accepted:
        bearer_error = _error_parts(None if on_dpop else error, scope)
        challenges.append(f"{SCHEME} " + ", ".join([f"realm={_quote(REALM)}", *bearer_error, *metadata]))
    dpop_error = _error_parts(error, scope if not settings.bearer_accepted else None) if on_dpop else []
    algs = f"algs={_quote(' '.join(settings.dpop_algorithms))}"
    challenges.append(f"{DPOP} " + ", ".join([f"realm={_quote(REALM)}", *dpop_error, algs, *metadata]))
    return ", ".join(challenges)


def _error_parts(error: JWTGuardError | None, scope: str | None) -> list[str]:
    if isinstance(error, TokenError):
        code = error.challenge_error if isinstance(error, DPoPError) else "invalid_token"
        return [f"error={_quote(code)}", f"error_description={_quote(error.detail)}"]
    if scope is not None:
        return ['error="insufficient_scope"', f"scope={_quote(scope)}"]
    return []


def nonce_header(error: JWTGuardError | None) -> str | None:
    """The ``DPoP-Nonce`` to send with a refusal: a fresh nonce for ``use_dpop_nonce``, else None."""
    if not isinstance(error, DPoPNonceRequired):
        return None
    return current_nonce(time.time(), get_settings().dpop_nonce_lifetime)


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
        nonce = nonce_header(error)
        if nonce is not None:
            response["DPoP-Nonce"] = nonce
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


def _raw_token(request: HttpRequest) -> tuple[str, Presentation | None] | None:
    # Never strict here: a request without a Bearer token is someone else's business (sessions, public views).
    found = credentials(request.headers.get("Authorization"), strict=False, dpop=get_settings().dpop_accepted)
    if found is None:
        return None
    scheme, raw = found
    return raw, presentation(request, scheme)


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
        found = _raw_token(request)
        if found is None:
            return None
        token = get_validator().validate(*found)
        user = _resolve(token)
    except JWTGuardError as exc:
        return refusal_response(exc)
    attach_token(request, token, user)
    return None


async def aauthenticate_request(request: HttpRequest) -> JsonResponse | None:
    """``authenticate_request`` for the event loop: whatever may block runs in a worker thread."""
    try:
        found = _raw_token(request)
        if found is None:
            return None
        token = await avalidate(get_validator(), *found)
        user = await aresolve_user(token)
    except JWTGuardError as exc:
        return refusal_response(exc)
    attach_token(request, token, user)
    return None


async def avalidate(validator: TokenValidator, raw: str, presentation: Presentation | None = None) -> AccessToken:
    """``TokenValidator.validate`` without blocking the event loop.

    ``validate_local()`` answers on the loop whenever no I/O is needed (steady state, the token cache too);
    otherwise ``validate()`` (cache reads, perhaps a fetch) runs in a thread of its own, not the one thread
    Django keeps for thread-sensitive work, so a slow issuer cannot stall the ORM.
    """
    token = validator.validate_local(raw, presentation)
    if token is None:
        token = await sync_to_async(validator.validate, thread_sensitive=False)(raw, presentation)
    return token
