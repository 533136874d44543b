"""Every way a request reaches jwtguard, as one call returning what the client gets.

The DRF class (called directly, and through the HTTP test client), ``JWTAuthenticationMiddleware`` in sync
and async mode, Ninja's ``JWTAuth`` (sync and on an event loop) and the Channels middleware's WebSocket
handshake must give a hostile token the same answer: security tests hold each door to it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.test import RequestFactory
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from jwtguard.authentication import JWTAccessTokenAuthentication, SigningKeysUnavailable

PATH = "/api/v1/friends"
#: The middleware is its own module; the DRF door alone is tested where it does not exist.
HAS_MIDDLEWARE = importlib.util.find_spec("jwtguard.middleware") is not None
#: Django Ninja is an optional extra; its door opens where it is installed.
HAS_NINJA = importlib.util.find_spec("ninja") is not None
#: The Channels middleware, where it exists (it needs no Channels: the door speaks plain ASGI).
HAS_CHANNELS = importlib.util.find_spec("jwtguard.contrib.channels") is not None


@dataclass(frozen=True)
class Outcome:
    """What a client is told: 200 (authenticated), 0 (passed on: not jwtguard's business), 401 or 503."""

    status: int
    detail: str | None = None
    code: str | None = None


ACCEPTED = Outcome(200)
PASSED_ON = Outcome(0)


def _extra(header: str | None) -> dict[str, str]:
    return {} if header is None else {"HTTP_AUTHORIZATION": header}


def _codes(exc: Any) -> str:
    codes = exc.get_codes()
    assert isinstance(codes, str), codes
    return codes


def drf(header: str | None, *, http: bool = True) -> Outcome:
    """``JWTAccessTokenAuthentication.authenticate``; with ``http``, also the HTTP answer a DRF view gives."""
    request = Request(APIRequestFactory().get(PATH, **_extra(header)))
    try:
        result = JWTAccessTokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        outcome = Outcome(401, str(exc.detail), _codes(exc))
    except SigningKeysUnavailable as exc:
        outcome = Outcome(503, str(exc.detail), _codes(exc))
    else:
        outcome = PASSED_ON if result is None else ACCEPTED
    if http and outcome.status in (401, 503):
        response = APIClient().get(PATH, **_extra(header))
        assert response.status_code == outcome.status
        assert response.json() == {"detail": outcome.detail}
        if outcome.status == 401:
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        else:
            assert int(response.headers["Retry-After"]) >= 1
    return outcome


def _from_response(response: Any, request: HttpRequest) -> Outcome:
    if response.status_code == 200:
        return ACCEPTED if getattr(request, "jwt", None) is not None else PASSED_ON
    body = json.loads(response.content)
    assert set(body) == {"detail", "code"}, body
    if response.status_code == 401:
        assert 'error="invalid_token"' in response["WWW-Authenticate"]
    elif response.status_code == 503:
        assert int(response["Retry-After"]) >= 1
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError(f"middleware answered {response.status_code}: {body}")
    return Outcome(response.status_code, body["detail"], body["code"])


def middleware(header: str | None) -> Outcome:
    """``JWTAuthenticationMiddleware`` in front of a sync view."""
    from jwtguard.middleware import JWTAuthenticationMiddleware

    def view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"ok": True})

    request = RequestFactory().get(PATH, **_extra(header))
    response = JWTAuthenticationMiddleware(view)(request)
    return _from_response(response, request)


def middleware_async(header: str | None) -> Outcome:
    """``JWTAuthenticationMiddleware`` in front of an async view, on an event loop of its own."""
    from jwtguard.middleware import JWTAuthenticationMiddleware

    async def view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"ok": True})

    request = RequestFactory().get(PATH, **_extra(header))
    handler: Any = JWTAuthenticationMiddleware(view)
    response = asyncio.run(handler(request))
    return _from_response(response, request)


def _ninja_auth(header: str | None, *, on_loop: bool) -> Outcome:
    from jwtguard.contrib.ninja import JWTAuth, Refused

    request = RequestFactory().get(PATH, **_extra(header))

    async def on_the_loop() -> Any:
        result = JWTAuth()(request)
        return await result if asyncio.iscoroutine(result) else result

    try:
        claims = asyncio.run(on_the_loop()) if on_loop else JWTAuth()(request)
    except Refused as exc:
        return _from_response(exc.response, request)
    return PASSED_ON if claims is None else ACCEPTED


def ninja(header: str | None) -> Outcome:
    """``jwtguard.contrib.ninja.JWTAuth`` in a sync and on an event loop (the two must agree); for a refusal,
    also the answer of a Ninja operation (``install``-ed handlers) through Ninja's test client."""
    from ninja.testing import TestClient

    from tests.support.ninja_api import api

    outcome = _ninja_auth(header, on_loop=False)
    assert _ninja_auth(header, on_loop=True) == outcome
    if outcome.status in (401, 503):
        response: Any = TestClient(api).get("/whoami", headers={} if header is None else {"Authorization": header})
        assert _from_response(response._response, RequestFactory().get(PATH)) == outcome
    return outcome


async def _websocket_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket consumer in plain ASGI: accepts, then says whether it was given a verified token."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "token" if scope.get("auth") is not None else "none"})


async def _handshake(header: str | None, denial: str) -> list[dict[str, Any]]:
    """What a server is told to answer a WebSocket handshake through ``JWTAuthMiddleware``."""
    from asgiref.testing import ApplicationCommunicator

    from jwtguard.contrib.channels import JWTAuthMiddleware

    headers = [] if header is None else [(b"authorization", header.encode())]  # as the wire carries it
    scope = {"type": "websocket", "path": PATH, "headers": headers, "subprotocols": []}
    scope["extensions"] = {"websocket.http.response": {}}
    communicator = ApplicationCommunicator(JWTAuthMiddleware(_websocket_app, denial=denial), scope)
    await communicator.send_input({"type": "websocket.connect"})
    messages = [await communicator.receive_output(timeout=10), await communicator.receive_output(timeout=10)]
    await communicator.wait(timeout=10)
    return messages


def channels(header: str | None) -> Outcome:
    """``jwtguard.contrib.channels.JWTAuthMiddleware`` in front of a WebSocket consumer.

    Answered twice: as HTTP (``denial="http"``, the ``websocket.http.response`` extension), which gives the
    whole outcome, and with close codes (the default), which must say the same status (4401 for 401) and code.
    """
    start, body = asyncio.run(_handshake(header, "http"))
    accept, last = asyncio.run(_handshake(header, "close"))
    assert accept["type"] == "websocket.accept", accept
    if start["type"] == "websocket.accept":
        assert last == body, (last, body)
        return ACCEPTED if body["text"] == "token" else PASSED_ON
    assert start["type"] == "websocket.http.response.start", start
    headers = dict(start["headers"])
    if start["status"] == 401:
        assert b'error="invalid_token"' in headers[b"www-authenticate"]
    elif start["status"] == 503:
        assert int(headers[b"retry-after"]) >= 1
    answer = json.loads(body["body"])
    assert (last["type"], last["code"], last["reason"]) == ("websocket.close", 4000 + start["status"], answer["code"])
    return Outcome(start["status"], answer["detail"], answer["code"])


Door = Callable[[str | None], Outcome]
DOORS: dict[str, Door] = {"drf": drf}
if HAS_MIDDLEWARE:
    DOORS["middleware"] = middleware
    DOORS["middleware-async"] = middleware_async
if HAS_NINJA:
    DOORS["ninja"] = ninja
if HAS_CHANNELS:
    DOORS["channels"] = channels


def outcomes(header: str | None) -> dict[str, Outcome]:
    """The answer of every door to one Authorization header."""
    return {name: door(header) for name, door in DOORS.items()}


def _user_id(user: Any) -> Any:
    return None if user is None or not getattr(user, "is_authenticated", False) else user.pk


def users(header: str) -> dict[str, Any]:
    """The ``pk`` of the user each door (and ``validate_token`` with ``resolve_user``) makes of an accepted
    token: ``TokenUser.id``, or ``USER_RESOLVER``'s user."""
    from jwtguard import validate_token
    from jwtguard.resolvers import resolve_user

    result = JWTAccessTokenAuthentication().authenticate(Request(APIRequestFactory().get(PATH, **_extra(header))))
    found = {"drf": _user_id(None if result is None else result[0])}
    if HAS_MIDDLEWARE:
        from jwtguard.middleware import JWTAuthenticationMiddleware

        def view(request: HttpRequest) -> JsonResponse:
            return JsonResponse({"ok": True})

        async def async_view(request: HttpRequest) -> JsonResponse:
            return JsonResponse({"ok": True})

        request = RequestFactory().get(PATH, **_extra(header))
        JWTAuthenticationMiddleware(view)(request)
        found["middleware"] = _user_id(getattr(request, "user", None))
        request = RequestFactory().get(PATH, **_extra(header))
        handler: Any = JWTAuthenticationMiddleware(async_view)
        asyncio.run(handler(request))
        found["middleware-async"] = _user_id(getattr(request, "user", None))
    found["validate_token"] = _user_id(resolve_user(validate_token(header.removeprefix("Bearer "))))
    return found
