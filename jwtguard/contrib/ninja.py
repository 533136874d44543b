"""Django Ninja: ``JWTAuth``, an ``HttpBearer`` that verifies tokens through jwtguard, sync and async alike.

    api = NinjaAPI(auth=JWTAuth())
    jwtguard.contrib.ninja.install(api)        # answers 401 / 403 / 503 with their RFC 6750 headers

    @api.get("/friends", auth=JWTAuth(scopes=["read:friends"]))
    async def friends(request): ...

A valid token sets ``request.auth`` to its claims (as DRF does) and ``request.user`` / ``request.auser`` to its
user (as the middleware does); the ``AccessToken`` itself is ``jwtguard.edge.request_token(request)``.
A request without a Bearer token is not ours: ``JWTAuth`` returns None, so Ninja tries the operation's other
auth callbacks, and answers 401 when none accepts it. Only imported by those who use it: nothing else of
jwtguard imports Ninja.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer

from jwtguard.conf import get_settings
from jwtguard.edge import (
    aauthenticate_request,
    authenticate_request,
    challenge,
    credentials,
    insufficient_scope_response,
    refusal_response,
    request_token,
    vary_on_authorization,
)
from jwtguard.exceptions import JWTGuardError
from jwtguard.user import missing_scopes, scope_list

__all__ = ["JWTAuth", "Refused", "install"]

Claims = dict[str, Any]


class Refused(HttpError):
    """Raised by ``JWTAuth`` to refuse a request, carrying the whole answer (status, body, headers).

    ``install(api)`` has Ninja send that answer as it is. Without it Ninja's own ``HttpError`` handler still
    answers with the same status and ``detail`` (never a 500), but without ``code`` and the
    ``WWW-Authenticate`` or ``Retry-After`` header.
    """

    def __init__(self, response: JsonResponse) -> None:
        super().__init__(response.status_code, json.loads(response.content)["detail"])
        self.response = response


class JWTAuth(HttpBearer):
    """Ninja auth: a valid Bearer access token from a configured issuer, with every scope in ``scopes``.

    One class for sync and async operations: Ninja asks ``is_async`` on every call, and the answer follows
    the caller. On the event loop (an async operation) the token is verified in memory when it can be and
    in a worker thread when I/O is needed; in a sync operation it is verified in place.
    """

    #: The OpenAPI security scheme: ``{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}``.
    openapi_bearerFormat = "JWT"

    def __init__(self, *, scopes: str | Iterable[str] = ()) -> None:
        self.scopes = scope_list(scopes)
        super().__init__()

    @property
    def is_async(self) -> bool:
        """Whether Ninja must await what ``__call__`` returns: true when called on a running event loop."""
        return _on_event_loop()

    @is_async.setter
    def is_async(self, value: bool) -> None:
        """Ignored: Ninja sets it once from ``authenticate``; ours follows the caller instead."""

    def __call__(self, request: HttpRequest) -> Claims | None | Coroutine[Any, Any, Claims | None]:
        raw = self.get_raw_token(request)
        if raw is None:
            return None
        if _on_event_loop():
            return self.aauthenticate(request, raw)
        return self.authenticate(request, raw)

    def get_raw_token(self, request: HttpRequest) -> str | None:
        """The Bearer token (or DPoP token, when an issuer accepts DPoP: ``authenticate_request`` checks its proof);
        None for no header or another scheme (refused instead with ``STRICT_AUTH_HEADER``)."""
        settings = get_settings()
        try:
            found = credentials(
                request.headers.get(self.header), strict=settings.strict_auth_header, dpop=settings.dpop_accepted
            )
        except JWTGuardError as exc:
            raise Refused(refusal_response(exc)) from exc
        return None if found is None else found[1]

    def authenticate(self, request: HttpRequest, token: str) -> Claims:
        """Verify ``token`` (blocking I/O allowed) unless an edge before this one did; its claims, or ``Refused``."""
        if not _verified(request, token):
            _refuse_with(authenticate_request(request))
        return self.grant(request)

    async def aauthenticate(self, request: HttpRequest, token: str) -> Claims:
        """``authenticate`` for the event loop: whatever may block runs in a worker thread."""
        if not _verified(request, token):
            _refuse_with(await aauthenticate_request(request))
        return self.grant(request)

    def grant(self, request: HttpRequest) -> Claims:
        """The verified token's claims, if it has every scope this operation requires; else 403."""
        token = request_token(request)
        assert token is not None  # authenticate_request attached it, or an edge before this one did
        if missing_scopes(token.claims, self.scopes, get_settings().scope_claims):
            raise Refused(insufficient_scope_response(" ".join(self.scopes)))
        return token.claims


def install(api: NinjaAPI) -> NinjaAPI:
    """Have ``api`` answer jwtguard's refusals as the DRF class and the middleware do; returns ``api``.

    ``Refused`` is answered whole (401 ``invalid_token`` with its challenge, 403 ``insufficient_scope``, 503
    with ``Retry-After``); Ninja's own 401 for a request no auth callback accepted keeps its body and gains
    the bare ``WWW-Authenticate: Bearer realm="api"`` that RFC 7235 requires of a 401.
    """

    # Ninja types a handler's exception as "the exception or its class"; it always passes the exception.
    def answer_refused(request: HttpRequest, exc: Any) -> HttpResponse:
        response: JsonResponse = exc.response
        return vary_on_authorization(response)

    def answer_unauthenticated(request: HttpRequest, exc: Any) -> HttpResponse:
        response = api.create_response(request, {"detail": str(exc)}, status=exc.status_code)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = challenge()
        return vary_on_authorization(response)

    api.add_exception_handler(Refused, answer_refused)
    api.add_exception_handler(AuthenticationError, answer_unauthenticated)
    return api


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _verified(request: HttpRequest, raw: str) -> bool:
    """Whether an edge before this one (the middleware) already verified this very token on this request."""
    token = request_token(request)
    return token is not None and token.raw == raw


def _refuse_with(refusal: JsonResponse | None) -> None:
    if refusal is not None:
        raise Refused(refusal)
