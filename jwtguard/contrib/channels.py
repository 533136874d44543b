"""Channels (any ASGI app): ``JWTAuthMiddleware`` for WebSocket and HTTP consumers (docs/channels.md).

The token is read from ``Authorization: Bearer <jwt>``; a browser, which cannot set that header on a
WebSocket, offers it as the subprotocol after ``bearer-token`` (``new WebSocket(url, ["bearer-token", jwt])``):
the two entries are taken out of ``scope["subprotocols"]``, and the accept echoes ``bearer-token`` (or the
subprotocol the consumer chose), never the token. The query string is read only when ``query_param`` is given:
URLs end up in access logs, so a token there leaks to whoever reads them.

Validation is ``jwtguard.edge.avalidate``: from memory on the event loop, in a worker thread only when I/O is
needed. A verified token sets ``scope["user"]``, ``scope["auth"]`` (its claims) and ``scope["jwtguard.token"]``
(the ``AccessToken``). A refusal closes the handshake with a close code: 4401 for the token's faults, 4403 for a
missing scope, 4503 when no key set can be had, the error's stable ``code`` as the close reason; HTTP answers
401 / 403 / 503 exactly as ``JWTAuthenticationMiddleware`` does.

A live connection is closed with 4401 (reason ``token_expired``) once its token expires (``exp`` + ``LEEWAY``);
the consumer sees ``websocket.disconnect`` with that code; likewise (reason ``distrusted_key``) within
``RECHECK_INTERVAL`` + ``JWKS_L1_RECHECK`` once its token's key is distrusted. Before then the client may send
``{"type": "jwtguard.refresh", "token": "<jwt>"}``: a fresh token for the same issuer and subject moves the
deadline on (answered ``jwtguard.refreshed``), any other is answered ``jwtguard.refresh_refused`` and changes
nothing. Those frames never reach the consumer.

No Channels import: the middleware speaks plain ASGI, so it also serves a bare ASGI app.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from jwtguard.conf import get_settings
from jwtguard.edge import (
    INSUFFICIENT_SCOPE,
    INSUFFICIENT_SCOPE_CODE,
    aresolve_user,
    avalidate,
    bearer_token,
    insufficient_scope_response,
    refusal_response,
    vary_on_authorization,
)
from jwtguard.exceptions import (
    AuthorizationHeaderInvalid,
    AuthorizationHeaderMissing,
    DistrustedKey,
    InvalidToken,
    JWTGuardError,
    KeySetError,
    TokenExpired,
)
from jwtguard.tokens import AccessToken
from jwtguard.user import TokenUser, missing_scopes, scope_list
from jwtguard.validation import get_validator

__all__ = [
    "CLOSE_INSUFFICIENT_SCOPE",
    "CLOSE_INVALID_TOKEN",
    "CLOSE_KEYS_UNAVAILABLE",
    "REFRESH",
    "REFRESHED",
    "REFRESH_REFUSED",
    "SUBPROTOCOL",
    "JWTAuthMiddleware",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Close codes (the 4000-4999 range is the application's, RFC 6455 7.4.2), after HTTP 401 / 403 / 503, as
#: graphql-ws uses 4401 and 4403.
CLOSE_INVALID_TOKEN = 4401
CLOSE_INSUFFICIENT_SCOPE = 4403
CLOSE_KEYS_UNAVAILABLE = 4503
#: The subprotocol a browser offers before its token: ``Sec-WebSocket-Protocol: bearer-token, <jwt>``.
SUBPROTOCOL = "bearer-token"
#: The message types of a refresh over the socket (JSON text frames).
REFRESH = "jwtguard.refresh"
REFRESHED = "jwtguard.refreshed"
REFRESH_REFUSED = "jwtguard.refresh_refused"
#: Where the verified ``AccessToken`` is left in the scope, beside ``user`` and ``auth``.
SCOPE_TOKEN = "jwtguard.token"
#: The longest a connection's watch sleeps between two looks at its token (its expiry, and whether its key is
#: distrusted).
RECHECK_INTERVAL = 30.0


class SubjectChanged(InvalidToken):
    """Raised when a refresh token is for another issuer or subject than the connection's."""

    code = "subject_mismatch"


class InsufficientScope(JWTGuardError):
    """Raised when a genuine token lacks a scope the middleware requires (HTTP 403, close code 4403)."""

    code = INSUFFICIENT_SCOPE_CODE
    detail = INSUFFICIENT_SCOPE


def close_code(error: JWTGuardError) -> int:
    """The close code a refusal closes a WebSocket with."""
    if isinstance(error, KeySetError):
        return CLOSE_KEYS_UNAVAILABLE
    if isinstance(error, InsufficientScope):
        return CLOSE_INSUFFICIENT_SCOPE
    return CLOSE_INVALID_TOKEN


class JWTAuthMiddleware:
    """Authenticates WebSocket and HTTP connections by Bearer token; passes other scopes (lifespan) on.

    ``required``: refuse a connection without a token (always, when ``scopes`` are given); otherwise it passes
    on untouched, with ``scope["auth"]`` None. ``scopes``: what every token must grant (space-separated or a
    list). ``query_param``: also read ``?<query_param>=<jwt>`` (off by default: URLs are logged). ``denial``:
    ``"close"`` (close codes, which browsers can read), or ``"http"`` (401/403/503 as on HTTP, where the server
    offers the ``websocket.http.response`` extension; close codes elsewhere).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        required: bool = False,
        scopes: str | Iterable[str] = (),
        query_param: str | None = None,
        subprotocol: str = SUBPROTOCOL,
        denial: str = "close",
    ) -> None:
        if denial not in ("close", "http"):
            raise ValueError(f'denial is "close" or "http", not {denial!r}')
        self.app = app
        self.scopes = scope_list(scopes)
        self.required = required or bool(self.scopes)
        self.query_param = query_param
        self.subprotocol = subprotocol
        self.denial = denial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("websocket", "http"):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)  # ours to change: the server's scope stays as it was sent
        offered = tuple(scope.get("subprotocols") or ())
        try:
            raw = self.raw_token(scope)
            token, user = await self.authenticate(raw) if raw is not None else (None, None)
        except JWTGuardError as exc:
            await self.refuse(scope, offered, receive, send, exc)
            return
        if token is None:
            scope.setdefault("auth", None)
            await self.app(scope, receive, send)
            return
        attach(scope, token, user)
        if scope["type"] == "http":
            await self.app(scope, receive, _vary_on_authorization(send))
            return
        connection = Connection(self, scope, offered, receive, send, token)
        try:
            await self.app(scope, connection.receive, connection.send)
        finally:
            connection.stop()

    # -- where the token comes from ---------------------------------------------------------------------------

    def raw_token(self, scope: Scope) -> str | None:
        """The token of this connection from one place only (RFC 6750 section 2); None without one.

        Takes the subprotocol pair out of ``scope["subprotocols"]`` whatever else happens, so that no consumer
        can echo the token back. Raises when a token is offered in more than one place, or malformed.
        """
        found = []
        header = bearer_token(_headers(scope).get("authorization"), strict=False)  # another scheme: not ours
        if header is not None:
            found.append(header)
        offered = list(scope.get("subprotocols") or ())
        if self.subprotocol in offered:
            at = offered.index(self.subprotocol)
            if at + 1 >= len(offered):
                raise AuthorizationHeaderInvalid(f"{self.subprotocol} is not followed by a token")
            found.append(offered[at + 1])
            scope["subprotocols"] = offered[:at] + offered[at + 2 :]
        if self.query_param is not None:
            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(self.query_param, [])
            found.extend(values)
        if len(found) > 1:
            raise AuthorizationHeaderInvalid("a token was offered in more than one place")
        if not found:
            if self.required:
                raise AuthorizationHeaderMissing()
            return None
        return found[0]

    async def authenticate(self, raw: str) -> tuple[AccessToken, Any]:
        """The verified token and its user; raises when refused (scopes included). Never blocks the loop."""
        token = await avalidate(get_validator(), raw)
        user = await aresolve_user(token)
        missing = missing_scopes(token.claims, self.scopes, get_settings().scope_claims)
        if missing:
            raise InsufficientScope(f"missing scopes {missing!r}")
        return token, user

    def deadline(self, token: AccessToken) -> float:
        """When the connection of ``token`` must be closed: ``exp`` + ``LEEWAY``, as the validator judges it."""
        try:
            return float(token.claims["exp"]) + token.issuer.leeway
        except OverflowError:  # an exp beyond any float (10**400) is valid JSON, and a token that never expires
            return math.inf

    def recheck(self, token: AccessToken) -> JWTGuardError | None:
        """Why a live connection's token is no longer good, or None: looked at by each wake of its watch, in a
        worker thread (the distrust list may be read from the shared cache, at most once per ``JWKS_L1_RECHECK``).

        An expired token answers ``TokenExpired``, one whose key is distrusted ``DistrustedKey``: either closes
        the connection with 4401.
        """
        validator = get_validator()
        if validator.now() >= self.deadline(token):
            return TokenExpired("the connection's token expired")
        kid = token.header.get("kid")
        try:
            validator.provider(token.issuer).refuse_distrusted(kid if isinstance(kid, str) else "")
        except DistrustedKey as exc:
            validator.rejected(exc, token.issuer)
            return exc
        return None

    # -- refusals ---------------------------------------------------------------------------------------------

    def response(self, error: JWTGuardError) -> JsonResponse:
        """The HTTP answer to a refusal, the same as ``JWTAuthenticationMiddleware``'s."""
        if isinstance(error, InsufficientScope):
            return vary_on_authorization(insufficient_scope_response(" ".join(self.scopes)))
        return vary_on_authorization(refusal_response(error))

    async def refuse(
        self, scope: Scope, offered: tuple[str, ...], receive: Receive, send: Send, error: JWTGuardError
    ) -> None:
        if scope["type"] == "http":
            await _send_response(send, self.response(error), "http.response")
            return
        message = await receive()  # websocket.connect: a handshake is answered after it arrives
        if message["type"] != "websocket.connect":
            return
        if self.denial == "http" and "websocket.http.response" in (scope.get("extensions") or {}):
            await _send_response(send, self.response(error), "websocket.http.response")
            return
        # Accepted, then closed at once: a close before the accept is a bare HTTP 403 to the client, with no code.
        await send({"type": "websocket.accept", "subprotocol": self.echo(offered, None, raw=None)})
        await send({"type": "websocket.close", "code": close_code(error), "reason": error.code})

    def echo(self, offered: tuple[str, ...], chosen: str | None, *, raw: str | None) -> str | None:
        """The subprotocol the accept names: the consumer's choice, else ours when the client offered it.

        Never the token ``raw``, whatever the consumer chose: the answer's headers are logged like URLs.
        """
        if chosen is not None and chosen != raw:
            return chosen
        return self.subprotocol if self.subprotocol in offered else None


class Connection:
    """One authenticated WebSocket: its deadline, the watch that closes it, refreshes over the socket."""

    def __init__(
        self,
        middleware: JWTAuthMiddleware,
        scope: Scope,
        offered: tuple[str, ...],
        receive: Receive,
        send: Send,
        token: AccessToken,
    ) -> None:
        self.middleware = middleware
        self.scope = scope
        self.offered = offered
        self.token = token
        self.raw = token.raw  # the token of the handshake, which the accept must never echo
        self._receive = receive
        self._send = send
        self.closed = False
        self.close_code: int | None = None
        self._ended = asyncio.Event()
        self._pending: asyncio.Future[Message] | None = None
        self._watch = asyncio.ensure_future(self.watch())

    def stop(self) -> None:
        """The consumer returned: no watch, no read left behind; a watch that failed raises here (a bug)."""
        if self._watch.done() and not self._watch.cancelled():
            self._watch.result()
        self._watch.cancel()
        if self._pending is not None:
            self._pending.cancel()

    async def watch(self) -> None:
        """Sleeps until the token's deadline (waking at least every ``RECHECK_INTERVAL``), then closes."""
        while True:
            error = await sync_to_async(self.middleware.recheck, thread_sensitive=False)(self.token)
            if error is not None:
                await self.close(error)
                return
            left = self.middleware.deadline(self.token) - get_validator().now()
            await asyncio.sleep(min(max(left, 0.0), RECHECK_INTERVAL))

    async def close(self, error: JWTGuardError) -> None:
        """Close the socket ourselves, and tell the consumer with a ``websocket.disconnect`` of the same code."""
        if self.closed:
            return
        self.closed = True
        self.close_code = close_code(error)
        await self._send({"type": "websocket.close", "code": self.close_code, "reason": error.code})
        self._ended.set()

    async def send(self, message: Message) -> None:
        if self.closed:
            return  # we closed it: what the consumer still sends goes nowhere (servers refuse it)
        if message["type"] == "websocket.accept":
            message = dict(message)
            message["subprotocol"] = self.middleware.echo(self.offered, message.get("subprotocol"), raw=self.raw)
        elif message["type"] == "websocket.close":
            self.closed = True
        await self._send(message)

    async def receive(self) -> Message:
        """The next message for the consumer; refresh frames are answered here and never reach it.

        The read of the server stays pending across a cancelled call (Channels cancels its readers when a
        consumer stops), so no message is lost; the watch's close ends a pending read with a disconnect.
        """
        while True:
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._receive())
            ended: asyncio.Future[Any] = asyncio.ensure_future(self._ended.wait())
            try:
                await asyncio.wait({self._pending, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
            if self._ended.is_set():  # closed by the watch: what the client sent since then is not for the consumer
                return {"type": "websocket.disconnect", "code": self.close_code}
            message, self._pending = self._pending.result(), None
            request = _refresh_request(message)
            if request is None:
                return message
            await self.refresh(request)

    async def refresh(self, raw: object) -> None:
        """Move the deadline on to a fresh token's, if it is good and names the same issuer and subject."""
        try:
            if not isinstance(raw, str):
                raise AuthorizationHeaderInvalid("the refresh names no token")
            token, user = await self.middleware.authenticate(raw)
            if _identity(token) != _identity(self.token):
                refused = SubjectChanged("the refresh token is for another issuer or subject")
                get_validator().rejected(refused, token.issuer)
                raise refused
        except JWTGuardError as exc:
            answer = {"type": REFRESH_REFUSED, "code": exc.code, "detail": exc.detail}
        else:
            self.token = token
            attach(self.scope, token, user)
            answer = {"type": REFRESHED, "exp": token.claims["exp"]}
        if not self.closed:
            await self._send({"type": "websocket.send", "text": json.dumps(answer)})


def attach(scope: Scope, token: AccessToken, user: Any) -> None:
    """Authenticate the connection: ``scope["user"]``, ``scope["auth"]`` (the claims), the token itself."""
    scope["user"] = user
    scope["auth"] = token.claims
    scope[SCOPE_TOKEN] = token


def _identity(token: AccessToken) -> tuple[str, str | None]:
    """Who a token speaks for: its issuer and its subject (``sub``, else ``client_id`` or ``azp``)."""
    return token.issuer.issuer, TokenUser(token.claims).id


def _refresh_request(message: Message) -> object | None:
    """The token of a ``jwtguard.refresh`` frame (perhaps not a string), or None for any other message."""
    text = message.get("text") if message["type"] == "websocket.receive" else None
    if not isinstance(text, str) or REFRESH not in text:
        return None  # the common case, decided without parsing the frame
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") != REFRESH:
        return None
    token: object = body.get("token") or ""  # a refresh without a token is refused, not handed to the consumer
    return token


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (ASGI gives them lower-cased already); the last of a repeat wins."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", ())}


def _vary_on_authorization(send: Send) -> Send:
    """``send`` that marks every HTTP answer as depending on the Authorization header."""

    async def vary(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", ()), (b"vary", b"Authorization")]
        await send(message)

    return vary


async def _send_response(send: Send, response: JsonResponse, prefix: str) -> None:
    """A Django response as ASGI messages: ``http.response.*`` or ``websocket.http.response.*``."""
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": f"{prefix}.start", "status": response.status_code, "headers": headers})
    await send({"type": f"{prefix}.body", "body": response.content})
