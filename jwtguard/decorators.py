"""``jwt_required(scopes=...)``: a valid Bearer token, with these scopes, or no entry (plain Django views).

For function views and class-based views (``method_decorator(jwt_required(...), name="dispatch")``, or the
decorator straight on the class), sync and async. It reuses what ``JWTAuthenticationMiddleware`` verified and
validates the token itself when the middleware is not installed. 401 (``invalid_token``) without a valid
token, 403 (``insufficient_scope``) without the scopes; both with an RFC 6750 ``WWW-Authenticate``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import method_decorator

from jwtguard.conf import get_settings
from jwtguard.edge import (
    aauthenticate_request,
    authenticate_request,
    insufficient_scope_response,
    refusal_response,
    request_token,
    vary_on_authorization,
)
from jwtguard.exceptions import AuthorizationHeaderMissing
from jwtguard.tokens import AccessToken
from jwtguard.user import missing_scopes, scope_list

V = TypeVar("V", bound=Callable[..., Any])


@overload
def jwt_required(view: V, /) -> V: ...


@overload
def jwt_required(*, scopes: str | Iterable[str] = ()) -> Callable[[V], V]: ...


def jwt_required(view: V | None = None, /, *, scopes: str | Iterable[str] = ()) -> V | Callable[[V], V]:
    """Require a valid Bearer token granting every scope in ``scopes`` (a list, or a space-separated string).

    The view is CSRF-exempt, as DRF's are: a request only gets in with a Bearer token, which a browser never
    adds to a cross-site request by itself.
    """
    required = scope_list(scopes)

    def decorate(view: V) -> V:
        if isinstance(view, type):
            decorated: V = method_decorator(decorate, name="dispatch")(view)
            return decorated
        return _decorate_function(view, required)

    return decorate if view is None else decorate(view)


def _decorate_function(view: V, required: tuple[str, ...]) -> V:
    wrapper: Any
    if iscoroutinefunction(view) or _is_async_dispatch(view):

        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response: HttpResponseBase = await _acall(view, required, request, args, kwargs)
            return response

    else:

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = _check(request, required)
            return vary_on_authorization(refusal if refusal is not None else view(request, *args, **kwargs))

    wrapper.csrf_exempt = True
    decorated: V = wrapper
    return decorated


def _is_async_dispatch(view: Callable[..., Any]) -> bool:
    """Whether ``view`` is the ``dispatch`` of an async class-based view, as ``method_decorator`` hands it over.

    That ``dispatch`` is a plain method returning a coroutine, so it looks sync; but Django awaits what it
    returns (under WSGI too), so refusals must be awaitable, and validating must not block the event loop.
    ``method_decorator`` passes ``partial(bound_method)``: the bound method's instance knows.
    """
    instance = getattr(getattr(view, "func", None), "__self__", None)
    return bool(getattr(type(instance), "view_is_async", False))


async def _acall(
    view: Callable[..., Any], required: tuple[str, ...], request: HttpRequest, args: Any, kwargs: Any
) -> HttpResponseBase:
    response: HttpResponseBase | None = await _acheck(request, required)
    if response is None:
        result = view(request, *args, **kwargs)
        response = await result if inspect.isawaitable(result) else result
    return vary_on_authorization(response)


def _check(request: HttpRequest, required: tuple[str, ...]) -> JsonResponse | None:
    token = request_token(request)
    if token is None:
        refusal = authenticate_request(request)
        if refusal is not None:
            return refusal
        token = request_token(request)
    return _refusal_for(token, required)


async def _acheck(request: HttpRequest, required: tuple[str, ...]) -> JsonResponse | None:
    token = request_token(request)
    if token is None:
        refusal = await aauthenticate_request(request)
        if refusal is not None:
            return refusal
        token = request_token(request)
    return _refusal_for(token, required)


def _refusal_for(token: AccessToken | None, required: tuple[str, ...]) -> JsonResponse | None:
    if token is None:
        return refusal_response(AuthorizationHeaderMissing())
    if not missing_scopes(token.claims, required, get_settings().scope_claims):
        return None
    return insufficient_scope_response(" ".join(required))
