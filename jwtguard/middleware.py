"""Plain Django: ``JWTAuthenticationMiddleware``, sync and async (its helpers live in ``jwtguard.edge``).

A valid ``Authorization: Bearer <jwt>`` sets ``request.user`` (and ``request.auser``), ``request.auth`` and
``request.jwt``; an invalid one is answered here with a 401 (RFC 6750), a key-set outage with a 503; a request
without a Bearer token passes on untouched. In async mode nothing blocks the event loop: the key comes from
``KeyProvider.get_key_nowait()`` when this process holds it, else ``get_key()`` runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from jwtguard.edge import aauthenticate_request, authenticate_request, vary_on_authorization

__all__ = ["JWTAuthenticationMiddleware"]


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
