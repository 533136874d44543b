"""jwtguard.contrib.channels: WebSocket and HTTP consumers behind ``JWTAuthMiddleware``.

In-process through Channels' own communicators (fast, every branch), then over a real socket: sample_site's
ASGI application under Daphne and under Uvicorn in a subprocess on 127.0.0.1, spoken to by the ``websockets``
client, as a browser or a service would.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("channels")

from channels.generic.http import AsyncHttpConsumer  # noqa: E402
from channels.testing import HttpCommunicator, WebsocketCommunicator  # noqa: E402

from jwtguard.cache import SharedCache  # noqa: E402
from jwtguard.contrib.channels import (  # noqa: E402
    CLOSE_INSUFFICIENT_SCOPE,
    CLOSE_INVALID_TOKEN,
    CLOSE_KEYS_UNAVAILABLE,
    REFRESH,
    REFRESH_REFUSED,
    REFRESHED,
    SUBPROTOCOL,
    JWTAuthMiddleware,
)
from jwtguard.distrust import distrust_kid  # noqa: E402
from jwtguard.testing import FakeIssuer  # noqa: E402
from sample_site.consumers import EchoConsumer  # noqa: E402
from tests.support.loopback import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: Every wait on a socket or a server is bounded by this.
TIMEOUT = 10.0


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def echo_app(**options: Any) -> JWTAuthMiddleware:
    return JWTAuthMiddleware(EchoConsumer.as_asgi(), **options)


class Seen:
    """What the consumer was given: its scope, and the code of the disconnect it was told of."""

    scope: dict[str, Any] | None = None
    disconnect_code: int | None = None


def spying_app(seen: Seen, **options: Any) -> JWTAuthMiddleware:
    class Spy(EchoConsumer):
        async def connect(self) -> None:
            seen.scope = self.scope
            await super().connect()

        async def receive_json(self, content: Any, **kwargs: Any) -> None:
            if content == "bye":
                await self.close(code=4000)
            else:
                await super().receive_json(content, **kwargs)

        async def disconnect(self, code: int) -> None:
            seen.disconnect_code = code
            await self.send_json("too late")  # the socket is closed: this must go nowhere

    return JWTAuthMiddleware(Spy.as_asgi(), **options)


async def handshake(app: Any, *, headers: list[tuple[bytes, bytes]] | None = None, **kwargs: Any) -> Any:
    """Connect; return the communicator and what came back (accepted, and the subprotocol or close code)."""
    communicator = WebsocketCommunicator(app, "/ws/echo", headers=headers or [], **kwargs)
    connected, detail = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, detail


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def refused(app: Any, **kwargs: Any) -> tuple[int, str]:
    """The close code and reason a refused handshake ends with (accepted, then closed at once)."""
    communicator, connected, _ = await handshake(app, **kwargs)
    assert connected  # accepted only to carry the close code: browsers see no code on a refused handshake
    message = await communicator.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.close", message
    await communicator.wait(timeout=TIMEOUT)
    return message["code"], message["reason"]


class TestHandshake:
    def test_a_bearer_header_sets_user_and_auth(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(sub="auth0|42", scope="chat")
        seen = Seen()

        async def scenario() -> Any:
            communicator, connected, subprotocol = await handshake(spying_app(seen), headers=bearer(token))
            assert connected
            assert subprotocol is None
            await communicator.send_json_to({"hello": 1})
            answer = await communicator.receive_json_from(timeout=TIMEOUT)
            await communicator.disconnect()
            return answer

        assert run(scenario()) == {"echo": {"hello": 1}, "user": "auth0|42", "scope": "chat"}
        assert seen.scope is not None
        assert seen.scope["auth"]["sub"] == "auth0|42"
        assert seen.scope["user"].is_authenticated
        assert seen.scope["jwtguard.token"].raw == token

    def test_a_subprotocol_token_is_taken_out_and_never_echoed(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(sub="browser")
        seen = Seen()

        async def scenario() -> tuple[bool, str]:
            app = spying_app(seen)
            communicator, connected, subprotocol = await handshake(app, subprotocols=["chat.v1", SUBPROTOCOL, token])
            await communicator.disconnect()
            return connected, subprotocol

        assert run(scenario()) == (True, SUBPROTOCOL)
        assert seen.scope is not None
        assert seen.scope["subprotocols"] == ["chat.v1"]
        assert seen.scope["auth"]["sub"] == "browser"

    def test_the_consumers_own_subprotocol_is_echoed_but_never_the_token(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint()

        class Chooser(EchoConsumer):
            async def connect(self) -> None:
                await self.accept(subprotocol=self.scope["subprotocols"][0])

        class Leaker(EchoConsumer):
            async def connect(self) -> None:
                await self.accept(subprotocol=token)

        async def chosen(consumer: Any, offered: list[str]) -> str:
            communicator, _, subprotocol = await handshake(JWTAuthMiddleware(consumer.as_asgi()), subprotocols=offered)
            await communicator.disconnect()
            return str(subprotocol)

        assert run(chosen(Chooser, ["chat.v1", SUBPROTOCOL, token])) == "chat.v1"
        assert run(chosen(Leaker, [SUBPROTOCOL, token])) == SUBPROTOCOL

    def test_without_a_token_the_connection_passes_on_unless_required(self, jwtguard_settings: FakeIssuer) -> None:
        seen = Seen()

        async def scenario() -> bool:
            communicator, connected, _ = await handshake(spying_app(seen))
            await communicator.disconnect()
            return bool(connected)

        assert run(scenario())
        assert seen.scope is not None
        assert seen.scope["auth"] is None
        assert "user" not in seen.scope
        assert run(refused(echo_app(required=True))) == (CLOSE_INVALID_TOKEN, "authorization_header_missing")

    def test_a_foreign_scheme_is_not_ours(self, jwtguard_settings: FakeIssuer) -> None:
        headers = [(b"authorization", b"Basic dXNlcjpwYXNz")]
        assert run(refused(echo_app(required=True), headers=headers)) == (
            CLOSE_INVALID_TOKEN,
            "authorization_header_missing",
        )

    @pytest.mark.parametrize(
        ("claims", "code"),
        [
            ({"expires_in": -120}, "token_expired"),
            ({"aud": "https://someone-else.test"}, "invalid_audience"),
            ({"iss": "https://evil.test/"}, "invalid_issuer"),
        ],
    )
    def test_a_refused_token_closes_the_handshake_with_4401(
        self, jwtguard_settings: FakeIssuer, claims: dict[str, Any], code: str
    ) -> None:
        token = jwtguard_settings.mint(**claims)
        assert run(refused(echo_app(), headers=bearer(token))) == (CLOSE_INVALID_TOKEN, code)
        assert run(refused(echo_app(), subprotocols=[SUBPROTOCOL, token])) == (CLOSE_INVALID_TOKEN, code)

    def test_not_a_jwt(self, jwtguard_settings: FakeIssuer) -> None:
        assert run(refused(echo_app(), headers=bearer("not-a-jwt"))) == (CLOSE_INVALID_TOKEN, "malformed_token")

    def test_a_subprotocol_marker_without_a_token_is_refused(self, jwtguard_settings: FakeIssuer) -> None:
        assert run(refused(echo_app(), subprotocols=[SUBPROTOCOL])) == (
            CLOSE_INVALID_TOKEN,
            "authorization_header_invalid",
        )

    def test_a_token_in_two_places_is_refused(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint()
        outcome = run(refused(echo_app(), headers=bearer(token), subprotocols=[SUBPROTOCOL, token]))
        assert outcome == (CLOSE_INVALID_TOKEN, "authorization_header_invalid")

    def test_a_missing_scope_closes_with_4403(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(scope="read")
        app = echo_app(scopes="read chat")
        assert run(refused(app, headers=bearer(token))) == (CLOSE_INSUFFICIENT_SCOPE, "insufficient_scope")

    def test_no_key_set_closes_with_4503(self, issuer: FakeIssuer, configure: Callable[..., None]) -> None:
        configure(issuer, JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json", HTTP_TIMEOUT=1)
        token = issuer.mint()
        assert run(refused(echo_app(), headers=bearer(token))) == (CLOSE_KEYS_UNAVAILABLE, "jwks_unavailable")

    def test_the_query_string_is_read_only_when_turned_on(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(sub="from-query")
        path = f"/ws/echo?access_token={token}"

        async def connect(app: Any) -> Any:
            communicator = WebsocketCommunicator(app, path)
            connected, _ = await communicator.connect(timeout=TIMEOUT)
            message = await communicator.receive_output(timeout=TIMEOUT) if connected else None
            if message is None or message["type"] != "websocket.close":
                await communicator.send_json_to({})
                message = await communicator.receive_json_from(timeout=TIMEOUT)
            await communicator.disconnect()
            return message

        async def quiet_connect(app: Any) -> Any:
            communicator = WebsocketCommunicator(app, path)
            await communicator.connect(timeout=TIMEOUT)
            await communicator.send_json_to({})
            answer = await communicator.receive_json_from(timeout=TIMEOUT)
            await communicator.disconnect()
            return answer

        off = run(connect(echo_app(required=True)))
        assert (off["code"], off["reason"]) == (CLOSE_INVALID_TOKEN, "authorization_header_missing")
        assert run(quiet_connect(echo_app(query_param="access_token")))["user"] == "from-query"

    def test_denial_as_http_where_the_server_offers_it(self, jwtguard_settings: FakeIssuer) -> None:
        async def scenario(extensions: dict[str, Any]) -> list[dict[str, Any]]:
            communicator = WebsocketCommunicator(echo_app(required=True, denial="http"), "/ws/echo")
            communicator.scope["extensions"] = extensions
            await communicator.send_input({"type": "websocket.connect"})
            messages = [await communicator.receive_output(timeout=TIMEOUT)]
            messages.append(await communicator.receive_output(timeout=TIMEOUT))
            await communicator.wait(timeout=TIMEOUT)
            return messages

        start, body = run(scenario({"websocket.http.response": {}}))
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 401
        assert (b"www-authenticate", b'Bearer realm="api"') in start["headers"]
        assert json.loads(body["body"])["code"] == "authorization_header_missing"
        accept, close = run(scenario({}))  # no extension: close codes after all
        assert (accept["type"], close["code"]) == ("websocket.accept", CLOSE_INVALID_TOKEN)

    def test_a_user_resolver_gives_the_scope_its_user(self, issuer: FakeIssuer, configure: Callable[..., None]) -> None:
        configure(issuer, USER_RESOLVER="tests.test_channels.resolve_named")
        seen = Seen()

        async def scenario() -> None:
            communicator, _, _ = await handshake(spying_app(seen), headers=bearer(issuer.mint(sub="carol")))
            await communicator.disconnect()

        run(scenario())
        assert seen.scope is not None
        assert seen.scope["user"] == "resolved:carol"

    def test_denial_must_be_close_or_http(self) -> None:
        with pytest.raises(ValueError, match="denial"):
            echo_app(denial="403")


class TestLongLivedConnections:
    def test_expiry_closes_a_live_connection_and_tells_the_consumer(
        self, issuer: FakeIssuer, configure: Callable[..., None]
    ) -> None:
        configure(issuer, LEEWAY=0)
        token = issuer.mint(expires_in=3)
        exp = json.loads(_claims(token))["exp"]
        seen = Seen()

        async def scenario() -> dict[str, Any]:
            communicator, connected, _ = await handshake(spying_app(seen), headers=bearer(token))
            assert connected
            message = await communicator.receive_output(timeout=TIMEOUT)
            await communicator.wait(timeout=TIMEOUT)
            assert communicator.output_queue.empty()  # the consumer's late send went nowhere
            return dict(message)

        message = run(scenario())
        closed_at = time.time()
        assert (message["type"], message["code"], message["reason"]) == (
            "websocket.close",
            CLOSE_INVALID_TOKEN,
            "token_expired",
        )
        assert exp <= closed_at < exp + 2
        assert seen.disconnect_code == CLOSE_INVALID_TOKEN

    def test_an_exp_beyond_any_float_never_closes(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(exp=10**400)

        async def scenario() -> Any:
            communicator, connected, _ = await handshake(echo_app(), headers=bearer(token))
            assert connected
            await communicator.send_json_to("still")
            answer = await communicator.receive_json_from(timeout=TIMEOUT)
            await communicator.disconnect()
            return answer["echo"]

        assert run(scenario()) == "still"

    def test_a_consumer_that_closes_is_not_closed_again(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint()

        async def scenario() -> list[Any]:
            communicator, _, _ = await handshake(spying_app(Seen()), headers=bearer(token))
            await communicator.send_json_to("bye")
            closed = await communicator.receive_output(timeout=TIMEOUT)
            await communicator.send_input({"type": "websocket.disconnect", "code": 4000})
            await communicator.wait(timeout=TIMEOUT)
            return [closed, communicator.output_queue.empty()]

        assert run(scenario()) == [{"type": "websocket.close", "code": 4000}, True]

    def test_a_distrusted_key_closes_a_live_connection_at_its_next_recheck(
        self, issuer: FakeIssuer, configure: Callable[..., None], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(issuer, JWKS_L1_RECHECK=0.2)
        monkeypatch.setattr("jwtguard.contrib.channels.RECHECK_INTERVAL", 0.2)
        token = issuer.mint()
        seen = Seen()

        async def scenario() -> tuple[dict[str, Any], float]:
            communicator, connected, _ = await handshake(spying_app(seen), headers=bearer(token))
            assert connected
            await communicator.send_json_to("still")
            assert (await communicator.receive_json_from(timeout=TIMEOUT))["echo"] == "still"
            distrusted_at = time.monotonic()
            assert distrust_kid(SharedCache("default"), issuer.signing_key.kid, issuer=None, seconds=60, reason="")
            message = await communicator.receive_output(timeout=TIMEOUT)
            closed_after = time.monotonic() - distrusted_at
            await communicator.wait(timeout=TIMEOUT)
            return dict(message), closed_after

        message, closed_after = run(scenario())
        assert (message["type"], message["code"], message["reason"]) == (
            "websocket.close",
            CLOSE_INVALID_TOKEN,
            "distrusted_key",
        )
        assert closed_after < 0.2 + 0.2 + 1.0  # RECHECK_INTERVAL + JWKS_L1_RECHECK, and a busy machine's margin
        assert seen.disconnect_code == CLOSE_INVALID_TOKEN

    def test_a_client_gone_before_the_handshake_is_answered(self, jwtguard_settings: FakeIssuer) -> None:
        async def scenario() -> bool:
            communicator = WebsocketCommunicator(echo_app(required=True), "/ws/echo")
            await communicator.send_input({"type": "websocket.disconnect", "code": 1001})
            await communicator.wait(timeout=TIMEOUT)
            return bool(communicator.output_queue.empty())

        assert run(scenario())

    def test_a_refresh_moves_the_deadline_on(self, issuer: FakeIssuer, configure: Callable[..., None]) -> None:
        configure(issuer, LEEWAY=0)
        first = issuer.mint(sub="u1", expires_in=3, scope="chat")
        fresh = issuer.mint(sub="u1", expires_in=60, scope="chat more")

        async def scenario() -> list[Any]:
            communicator, _, _ = await handshake(echo_app(), headers=bearer(first))
            await communicator.send_json_to({"type": REFRESH, "token": fresh})
            answers = [await communicator.receive_json_from(timeout=TIMEOUT)]
            await asyncio.sleep(max(0.0, json.loads(_claims(first))["exp"] + 1 - time.time()))
            await communicator.send_json_to({"still": "here"})
            answers.append(await communicator.receive_json_from(timeout=TIMEOUT))
            await communicator.disconnect()
            return answers

        refreshed, echo = run(scenario())
        assert refreshed == {"type": REFRESHED, "exp": json.loads(_claims(fresh))["exp"]}
        assert echo == {"echo": {"still": "here"}, "user": "u1", "scope": "chat more"}

    @pytest.mark.parametrize(
        ("claims", "code"),
        [
            ({"sub": "someone-else", "scope": "chat"}, "subject_mismatch"),
            ({"sub": "u1", "expires_in": -120}, "token_expired"),
            ({"sub": "u1", "scope": "read"}, "insufficient_scope"),
        ],
    )
    def test_a_refused_refresh_changes_nothing(
        self, jwtguard_settings: FakeIssuer, claims: dict[str, Any], code: str
    ) -> None:
        first = jwtguard_settings.mint(sub="u1", scope="chat")
        other = jwtguard_settings.mint(**claims)

        async def scenario() -> list[Any]:
            communicator, _, _ = await handshake(echo_app(scopes="chat"), headers=bearer(first))
            await communicator.send_json_to({"type": REFRESH, "token": other})
            answers = [await communicator.receive_json_from(timeout=TIMEOUT)]
            await communicator.send_json_to({"type": REFRESH})
            answers.append(await communicator.receive_json_from(timeout=TIMEOUT))
            await communicator.send_json_to({"type": REFRESH, "token": 5})
            answers.append(await communicator.receive_json_from(timeout=TIMEOUT))
            await communicator.send_json_to({"after": 1})
            answers.append(await communicator.receive_json_from(timeout=TIMEOUT))
            await communicator.disconnect()
            return answers

        refusal, tokenless, number, echo = run(scenario())
        assert refusal == {"type": REFRESH_REFUSED, "code": code, "detail": refusal["detail"]}
        assert tokenless["code"] == "malformed_token"
        assert number["code"] == "authorization_header_invalid"
        assert echo["user"] == "u1"

    def test_frames_that_only_mention_a_refresh_reach_the_consumer(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint()

        async def scenario() -> list[Any]:
            communicator, _, _ = await handshake(echo_app(), headers=bearer(token))
            answers = []
            for content in ({"note": REFRESH}, [REFRESH]):
                await communicator.send_json_to(content)
                answers.append((await communicator.receive_json_from(timeout=TIMEOUT))["echo"])
            await communicator.disconnect()
            return answers

        assert run(scenario()) == [{"note": REFRESH}, [REFRESH]]


class Whoami(AsyncHttpConsumer):  # type: ignore[misc]
    async def handle(self, body: bytes) -> None:
        user = self.scope.get("user")
        await self.send_response(200, json.dumps({"user": str(user)}).encode(), headers=[(b"content-type", b"json")])


class TestHttpConsumers:
    def call(self, app: Any, token: str | None) -> dict[str, Any]:
        headers = [] if token is None else bearer(token)
        return dict(run(HttpCommunicator(app, "GET", "/whoami", headers=headers).get_response(timeout=TIMEOUT)))

    def test_a_valid_token_reaches_the_consumer(self, jwtguard_settings: FakeIssuer) -> None:
        response = self.call(JWTAuthMiddleware(Whoami.as_asgi()), jwtguard_settings.mint(sub="svc"))
        assert response["status"] == 200
        assert json.loads(response["body"]) == {"user": "svc"}
        assert (b"vary", b"Authorization") in response["headers"]

    def test_refusals_answer_like_the_middleware(self, jwtguard_settings: FakeIssuer) -> None:
        app = JWTAuthMiddleware(Whoami.as_asgi(), scopes="chat")
        expired = self.call(app, jwtguard_settings.mint(expires_in=-120))
        assert expired["status"] == 401
        assert json.loads(expired["body"]) == {"detail": "Bearer token is invalid", "code": "token_expired"}
        assert any(name == b"www-authenticate" and b'error="invalid_token"' in v for name, v in expired["headers"])
        scope = self.call(app, jwtguard_settings.mint(scope="read"))
        assert scope["status"] == 403
        assert (b"www-authenticate", b'Bearer realm="api", error="insufficient_scope", scope="chat"') in scope[
            "headers"
        ]
        assert self.call(app, None)["status"] == 401

    def test_a_key_set_outage_is_a_503(self, issuer: FakeIssuer, configure: Callable[..., None]) -> None:
        configure(issuer, JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json", HTTP_TIMEOUT=1)
        response = self.call(JWTAuthMiddleware(Whoami.as_asgi()), issuer.mint())
        assert response["status"] == 503
        assert int(dict(response["headers"])[b"retry-after"]) >= 1

    def test_other_scopes_pass_untouched(self) -> None:
        seen: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope)

        original = {"type": "lifespan"}
        run(JWTAuthMiddleware(app)(original, _never, _never))
        assert seen == [original]


async def _never(*args: Any) -> Any:  # pragma: no cover - the lifespan test's app never calls it
    raise AssertionError("called")


def resolve_named(token: Any) -> str:
    """A ``USER_RESOLVER`` (it would usually read the user table)."""
    return f"resolved:{token.subject}"


def _claims(token: str) -> str:
    import base64

    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()


# -- a real ASGI server and a real WebSocket client ------------------------------------------------------------

SERVERS = {
    "daphne": lambda port: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)],
    "uvicorn": lambda port: [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)],
}


@pytest.fixture(scope="module")
def live_issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer("RS256") as fake:
        yield fake


@dataclass(frozen=True)
class Live:
    port: int
    #: Daphne sends the close code but drops the reason; Uvicorn sends both.
    sends_reason: bool

    def close(self, code: int, reason: str) -> tuple[int, str]:
        """The close frame a client of this server receives for a close the middleware sent."""
        return code, reason if self.sends_reason else ""


@contextmanager
def serving(name: str, application: str, jwtguard: dict[str, Any], log: Path) -> Iterator[Live]:
    """``application`` under the server ``name`` on a free port, with ``jwtguard`` as its ``JWTGUARD``."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.support.channels_settings",
        JWTGUARD_SETTINGS_JSON=json.dumps(jwtguard),
        PYTHONUNBUFFERED="1",
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SERVERS[name](port), application], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} did not listen within 30s:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield Live(port, sends_reason=name != "daphne")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, live_issuer: FakeIssuer, tmp_path_factory: Any) -> Iterator[Live]:
    """sample_site's ASGI application under Daphne or Uvicorn on a free port, LEEWAY 0."""
    pytest.importorskip(request.param)
    log = tmp_path_factory.mktemp("asgi") / f"{request.param}.log"
    with serving(request.param, "sample_site.asgi:application", live_issuer.settings(LEEWAY=0), log) as live:
        yield live


def connect(server: Live, **kwargs: Any) -> Any:
    from websockets.sync.client import connect as ws_connect

    return ws_connect(
        f"ws://127.0.0.1:{server.port}/ws/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT, proxy=None, **kwargs
    )


def echo(ws: Any, content: Any) -> Any:
    ws.send(json.dumps(content))
    return json.loads(ws.recv(timeout=TIMEOUT))


def close_of(ws: Any) -> tuple[int, str]:
    """The close code and reason the server ended the connection with (waits, bounded)."""
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


class TestUnderARealServer:
    def test_a_header_token(self, server: Live, live_issuer: FakeIssuer) -> None:
        token = live_issuer.mint(sub="service-a", scope="chat")
        with connect(server, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert ws.subprotocol is None
            assert echo(ws, {"n": 1}) == {"echo": {"n": 1}, "user": "service-a", "scope": "chat"}

    def test_a_subprotocol_token_as_a_browser_sends_it(self, server: Live, live_issuer: FakeIssuer) -> None:
        token = live_issuer.mint(sub="browser-b")
        with connect(server, subprotocols=[SUBPROTOCOL, token]) as ws:
            assert ws.subprotocol == SUBPROTOCOL
            assert ws.response.headers["Sec-WebSocket-Protocol"] == SUBPROTOCOL
            assert echo(ws, "hi")["user"] == "browser-b"

    @pytest.mark.parametrize(
        ("claims", "code"), [({"expires_in": -60}, "token_expired"), ({"aud": "other"}, "invalid_audience")]
    )
    def test_a_refused_token_closes_the_handshake(
        self, server: Live, live_issuer: FakeIssuer, claims: dict[str, Any], code: str
    ) -> None:
        token = live_issuer.mint(**claims)
        with connect(server, subprotocols=[SUBPROTOCOL, token]) as ws:
            assert close_of(ws) == server.close(CLOSE_INVALID_TOKEN, code)

    def test_no_token(self, server: Live) -> None:
        with connect(server) as ws:
            assert close_of(ws) == server.close(CLOSE_INVALID_TOKEN, "authorization_header_missing")

    def test_expiry_closes_a_live_connection_within_a_bounded_time(self, server: Live, live_issuer: FakeIssuer) -> None:
        token = live_issuer.mint(expires_in=3)
        exp = json.loads(_claims(token))["exp"]
        with connect(server, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert echo(ws, 1)["echo"] == 1
            assert close_of(ws) == server.close(CLOSE_INVALID_TOKEN, "token_expired")
        assert exp <= time.time() < exp + 2

    def test_a_refresh_extends_the_connection(self, server: Live, live_issuer: FakeIssuer) -> None:
        first = live_issuer.mint(sub="u", expires_in=3)
        exp = json.loads(_claims(first))["exp"]
        with connect(server, subprotocols=[SUBPROTOCOL, first]) as ws:
            answer = echo(ws, {"type": REFRESH, "token": live_issuer.mint(sub="u", expires_in=60)})
            assert answer["type"] == REFRESHED
            time.sleep(max(0.0, exp + 1.5 - time.time()))
            assert echo(ws, "still open")["echo"] == "still open"


def test_denial_as_http_under_uvicorn(live_issuer: FakeIssuer, tmp_path: Path) -> None:
    """``denial="http"`` under a server that offers the extension: the Django middleware's 401, on the wire."""
    pytest.importorskip("uvicorn")
    from websockets.exceptions import InvalidStatus

    application = "tests.support.channels_denial:application"
    with serving("uvicorn", application, live_issuer.settings(), tmp_path / "uvicorn.log") as live:
        token = live_issuer.mint(aud="https://someone-else.test")
        with pytest.raises(InvalidStatus) as refused:
            connect(live, additional_headers={"Authorization": f"Bearer {token}"})
    response = refused.value.response
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert json.loads(response.body) == {"detail": "Bearer token is invalid", "code": "invalid_audience"}
