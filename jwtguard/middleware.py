"""Plain Django: ``JWTAuthenticationMiddleware``, sync and async, and the helpers it shares with ``jwt_required``.

A valid ``Authorization: Bearer <jwt>`` sets ``request.user`` (and ``request.auser``), ``request.auth`` and
``request.jwt``; an invalid one is answered here with a 401 (RFC 6750), a key-set outage with a 503; a request
without a Bearer token passes on untouched. In async mode nothing blocks the event loop: the key comes from
``KeyProvider.get_key_nowait()`` when this process holds it, else ``get_key()`` runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

from jwtguard.bearer import bearer_token, challenge
from jwtguard.exceptions import JWTGuardError, KeySetError, TokenError
from jwtguard.resolvers import get_user_resolver, resolve_user
from jwtguard.validation import AccessToken, TokenValidator, get_validator

logger = logging.getLogger("jwtguard")

#: Where the verified ``AccessToken`` is left on the ``HttpRequest``, so that DRF and ``jwt_required``
#: reuse it instead of verifying the same token again.
REQUEST_TOKEN_ATTRIBUTE = "_jwtguard_token"
#: Where the user resolved for that token is left, so that DRF does not resolve it again.
REQUEST_USER_ATTRIBUTE = "_jwtguard_user"


def request_token(request: HttpRequest) -> AccessToken | None:
    """The token this request was authenticated with by jwtguard, if any."""
    token = getattr(request, REQUEST_TOKEN_ATTRIBUTE, None)
    return token if isinstance(token, AccessToken) else None


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


def _raw_token(request: HttpRequest) -> str | None:
    # Never strict here: a request without a Bearer token is someone else's business (sessions, public views).
    return bearer_token(request.headers.get("Authorization"), strict=False)


def _resolve(token: AccessToken) -> Any:
    try:
        return resolve_user(token)
    except TokenError as exc:
        get_validator().rejected(exc, token.issuer)
        raise


async def _aresolve(token: AccessToken) -> Any:
    if get_user_resolver() is None:
        return _resolve(token)  # a TokenUser: no I/O
    # Thread-sensitive, as Django wants for the ORM: a resolver usually reads the user table.
    return await sync_to_async(_resolve, thread_sensitive=True)(token)


def _install(request: HttpRequest, token: AccessToken, user: Any) -> None:
    async def auser() -> Any:
        return user

    # django-stubs types request.user as a database user; ours may be a TokenUser.
    target: Any = request
    target.user = user
    target.auser = auser
    target.auth = target.jwt = token.claims
    setattr(request, REQUEST_TOKEN_ATTRIBUTE, token)
    setattr(request, REQUEST_USER_ATTRIBUTE, user)


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
    _install(request, token, user)
    return None


async def aauthenticate_request(request: HttpRequest) -> JsonResponse | None:
    """``authenticate_request`` for the event loop: whatever may block runs in a worker thread."""
    try:
        raw = _raw_token(request)
        if raw is None:
            return None
        token = await avalidate(get_validator(), raw)
        user = await _aresolve(token)
    except JWTGuardError as exc:
        return refusal_response(exc)
    _install(request, token, user)
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


R = TypeVar("R")


def vary_on_authorization(response: R) -> R:
    """Mark a response as depending on the Authorization header, so no cache serves one caller's to another."""
    if isinstance(response, HttpResponseBase):
        patch_vary_headers(response, ("Authorization",))
    return response


class JWTAuthenticationMiddleware:
    """Authenticates requests that carry ``Authorization: Bearer <jwt>``; leaves the others untouched.

    Place it after ``django.contrib.auth.middleware.AuthenticationMiddleware``: with a token it overrides
    ``request.user`` and ``request.auser``; without one the session user stays.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase] | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(self.get_response)
        if self.async_mode:
            # Django then awaits this instance like the coroutine function __acall__ is.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        refusal = authenticate_request(request)
        if refusal is not None:
            return vary_on_authorization(refusal)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)  # sync mode: get_response is sync
        return vary_on_authorization(response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        refusal = await aauthenticate_request(request)
        if refusal is not None:
            return vary_on_authorization(refusal)
        result = self.get_response(request)
        assert not isinstance(result, HttpResponseBase)  # async mode: get_response is async
        return vary_on_authorization(await result)
