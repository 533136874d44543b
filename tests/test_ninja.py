"""``jwtguard.contrib.ninja``: ``JWTAuth`` through Ninja's test clients (sync and async operations) and under a
real ASGI server (uvicorn on 127.0.0.1), held to the answers of the DRF class and the middleware."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.testing import TestAsyncClient, TestClient

from jwtguard import signals
from jwtguard.contrib.ninja import JWTAuth, Refused, install
from jwtguard.edge import attach_token
from jwtguard.testing.dpop import DPoPKey
from jwtguard.testing.issuer import FakeIssuer, Fault, generate_key
from jwtguard.user import TokenUser
from jwtguard.validation import TokenValidator, get_validator
from tests.support import doors
from tests.support.loopback import free_port, real_redis_cache, require_real_redis
from tests.support.ninja_api import build

ROOT = Path(__file__).resolve().parent.parent
MODES = ["sync", "async"]
#: The operation each mode calls: any valid token, and one that needs read:friends and write:friends.
WHOAMI = {"sync": "/whoami", "async": "/awhoami"}
SCOPED = {"sync": "/scoped", "async": "/ascoped"}


class Answer:
    """What a client got: status, JSON body, headers (from Ninja's test client or a real server)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers


@pytest.fixture(scope="module")
def api() -> NinjaAPI:
    return build(namespace="jwtguard-test-ninja-clients")


def call(api: NinjaAPI, mode: str, path: str, header: str | None = None) -> Answer:
    headers = {} if header is None else {"Authorization": header}
    if mode == "sync":
        response: Any = TestClient(api).get(path, headers=headers)
    else:
        response = asyncio.run(TestAsyncClient(api).get(path, headers=headers))
    return Answer(response.status_code, json.loads(response.content), dict(response._response.headers))


def assert_refused(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.body["code"] == code
    assert answer.headers["Vary"] == "Authorization"
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    elif status == 503:
        assert int(answer.headers["Retry-After"]) >= 1


class TestValidToken:
    @pytest.mark.parametrize("mode", MODES)
    def test_sets_auth_to_the_claims_and_the_user(
        self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str
    ) -> None:
        answer = call(api, mode, WHOAMI[mode], f"Bearer {jwtguard_settings.mint(sub='auth0|42')}")
        assert answer.status == 200, answer.body
        assert answer.body == {
            "user": "auth0|42",
            "user_type": "TokenUser",
            "sub": "auth0|42",
            "auth_is_claims": True,
            "view": mode,
        }

    @pytest.mark.parametrize("mode", MODES)
    def test_with_the_required_scopes(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str) -> None:
        token = jwtguard_settings.mint(scope="read:friends write:friends")
        assert call(api, mode, SCOPED[mode], f"Bearer {token}").status == 200

    @pytest.mark.parametrize("mode", MODES)
    def test_reuses_what_the_middleware_verified(
        self, jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch, mode: str
    ) -> None:
        raw = jwtguard_settings.mint()
        token = get_validator().validate(raw)
        request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
        attach_token(request, token, TokenUser(token.claims))
        monkeypatch.setattr(TokenValidator, "validate", None)  # verifying again would fail
        monkeypatch.setattr(TokenValidator, "validate_local", None)

        async def on_the_loop() -> Any:
            return await JWTAuth()(request)

        claims = JWTAuth()(request) if mode == "sync" else asyncio.run(on_the_loop())
        assert claims is token.claims


class TestRefused:
    @pytest.mark.parametrize("mode", MODES)
    def test_expired(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str) -> None:
        answer = call(api, mode, WHOAMI[mode], f"Bearer {jwtguard_settings.mint(expires_in=-3600)}")
        assert_refused(answer, 401, "token_expired")
        assert answer.body["detail"] == "Bearer token is invalid"

    @pytest.mark.parametrize("mode", MODES)
    def test_wrong_audience(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str) -> None:
        answer = call(api, mode, WHOAMI[mode], f"Bearer {jwtguard_settings.mint(aud='https://other.example')}")
        assert_refused(answer, 401, "invalid_audience")

    @pytest.mark.parametrize("mode", MODES)
    def test_missing_scope(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str) -> None:
        answer = call(api, mode, SCOPED[mode], f"Bearer {jwtguard_settings.mint(scope='openid read:friends')}")
        assert answer.status == 403
        assert answer.body == {"detail": "Token does not have the required scope", "code": "insufficient_scope"}
        challenge = 'Bearer realm="api", error="insufficient_scope", scope="read:friends write:friends"'
        assert answer.headers["WWW-Authenticate"] == challenge

    @pytest.mark.parametrize("mode", MODES)
    def test_forged_kids_cost_at_most_one_fetch(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str) -> None:
        assert call(api, mode, WHOAMI[mode], f"Bearer {jwtguard_settings.mint()}").status == 200
        before = jwtguard_settings.jwks_requests
        for n in range(5):
            forged = jwtguard_settings.mint(key=generate_key("RS256", kid=f"forged-{n}"))
            assert_refused(call(api, mode, WHOAMI[mode], f"Bearer {forged}"), 401, "unknown_kid")
        assert jwtguard_settings.jwks_requests - before <= 1

    @pytest.mark.parametrize("mode", MODES)
    def test_issuer_down_is_503_with_retry_after(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, mode: str) -> None:
        token = jwtguard_settings.mint()
        jwtguard_settings.stop()
        answer = call(api, mode, WHOAMI[mode], f"Bearer {token}")
        assert_refused(answer, 503, "jwks_unavailable")
        assert "WWW-Authenticate" not in answer.headers  # the token is not at fault

    @pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer not-a-jwt"])
    def test_a_bad_bearer_header(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, header: str) -> None:
        answer = call(api, "sync", "/whoami", header)
        assert answer.status == 401
        assert answer.body["code"] in {"authorization_header_invalid", "malformed_token"}

    @pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz"])
    def test_no_bearer_token_is_left_to_ninja(self, api: NinjaAPI, jwtguard_settings: FakeIssuer, header: str) -> None:
        """Not ours: ``JWTAuth`` returns None (another auth callback may accept it); Ninja answers 401, which
        ``install`` gives the bare challenge (RFC 6750 3.1: no error code without credentials)."""
        request = RequestFactory().get("/", **({} if header is None else {"HTTP_AUTHORIZATION": header}))
        assert JWTAuth()(request) is None
        answer = call(api, "sync", "/whoami", header)
        assert (answer.status, answer.body) == (401, {"detail": "Unauthorized"})
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_strict_auth_header_refuses_a_missing_header(
        self, api: NinjaAPI, jwtguard_settings: FakeIssuer, configure: Any
    ) -> None:
        configure(jwtguard_settings, STRICT_AUTH_HEADER=True)
        answer = call(api, "sync", "/whoami")
        assert answer.status == 401
        assert answer.body == {"detail": "Authorization header is not present", "code": "authorization_header_missing"}
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'

    @pytest.mark.parametrize("mode", MODES)
    def test_without_install_ninja_still_answers_with_the_status(
        self, jwtguard_settings: FakeIssuer, mode: str
    ) -> None:
        bare = build(installed=False, namespace=f"jwtguard-test-ninja-bare-{mode}")
        answer = call(bare, mode, WHOAMI[mode], "Bearer not-a-jwt")  # refused before any key is needed
        assert (answer.status, answer.body) == (401, {"detail": "Bearer does not contain a valid JWT"})
        jwtguard_settings.stop()
        answer = call(bare, mode, WHOAMI[mode], f"Bearer {jwtguard_settings.mint()}")
        assert answer.status == 503

    def test_refused_carries_the_whole_answer(self) -> None:
        from jwtguard.edge import insufficient_scope_response

        refused = Refused(insufficient_scope_response("a b"))
        assert (refused.status_code, str(refused)) == (403, "Token does not have the required scope")


class TestTheEventLoop:
    def test_steady_state_answers_on_the_loop_without_a_thread(
        self, api: NinjaAPI, jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert call(api, "async", "/awhoami", f"Bearer {jwtguard_settings.mint()}").status == 200
        monkeypatch.setattr(TokenValidator, "validate", None)  # the thread path: validate_local must answer
        for _ in range(3):
            assert call(api, "async", "/awhoami", f"Bearer {jwtguard_settings.mint()}").status == 200

    def test_a_slow_fetch_never_blocks_the_loop(self, api: NinjaAPI, jwtguard_settings: FakeIssuer) -> None:
        jwtguard_settings.fault = Fault(delay=0.5)
        where: list[bool] = []

        def receiver(**kwargs: Any) -> None:
            where.append(threading.current_thread() is threading.main_thread())

        async def scenario() -> tuple[int, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.02)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            response = await TestAsyncClient(api).get(
                "/awhoami", headers={"Authorization": f"Bearer {jwtguard_settings.mint()}"}
            )
            ticker.cancel()
            return response.status_code, ticks

        signals.jwks_fetched.connect(receiver)
        try:
            status, ticks = asyncio.run(scenario())
        finally:
            signals.jwks_fetched.disconnect(receiver)
        assert status == 200
        assert where == [False]  # fetched in a worker thread
        assert ticks >= 10  # the loop kept running through the 0.5 s fetch

    def test_is_async_follows_the_caller(self) -> None:
        auth = JWTAuth()
        assert auth.is_async is False

        async def on_the_loop() -> bool:
            return auth.is_async

        assert asyncio.run(on_the_loop()) is True


class TestOpenAPI:
    def test_the_bearer_scheme_with_jwt_format(self, api: NinjaAPI) -> None:
        schema = api.get_openapi_schema(path_prefix="")
        assert schema["components"]["securitySchemes"] == {
            "JWTAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        assert schema["paths"]["/scoped"]["get"]["security"] == [{"JWTAuth": []}]
        assert "security" not in schema["paths"]["/public"]["get"]


def test_install_returns_the_api_and_challenges_only_401s() -> None:
    api = NinjaAPI(urls_namespace="jwtguard-test-ninja-install")
    assert install(api) is api
    request = RequestFactory().get("/")
    assert api.on_exception(request, AuthenticationError())["WWW-Authenticate"] == 'Bearer realm="api"'
    forbidden = api.on_exception(request, AuthenticationError(403, "Forbidden"))
    assert forbidden.status_code == 403
    assert "WWW-Authenticate" not in forbidden


def test_nothing_else_imports_ninja() -> None:
    """Ninja is optional: importing jwtguard and every other module of it leaves Ninja unloaded."""
    program = """
import importlib, pkgutil, sys
import django
django.setup()
import jwtguard
for info in pkgutil.walk_packages(jwtguard.__path__, "jwtguard."):
    if info.name != "jwtguard.contrib.ninja":
        importlib.import_module(info.name)
loaded = sorted(name for name in sys.modules if name == "ninja" or name.startswith("ninja."))
assert not loaded, loaded
print("ok")
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", program], env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.strip() == b"ok"


# -- a real ASGI server ----------------------------------------------------------------------------------------


class Server:
    """``uvicorn tests.support.ninja_site:application`` on a free 127.0.0.1 port, for one issuer."""

    def __init__(self, issuer: FakeIssuer) -> None:
        self.port = free_port()
        settings = {"cache": real_redis_cache(), "jwtguard": issuer.settings()}
        env = {**os.environ, "JWTGUARD_TEST_SETTINGS": json.dumps(settings), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "uvicorn", "tests.support.ninja_site:application"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--lifespan", "off"]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                pytest.fail(f"uvicorn exited with {self.process.returncode}: {output[-2000:]}")
            try:
                if self.get("/ninja/public").status == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not answer in time"
            time.sleep(0.1)

    def get(self, path: str, header: str | None = None) -> Answer:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if header is not None:
            request.add_header("Authorization", header)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, json.loads(response.read()), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, json.loads(error.read()), dict(error.headers))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when uvicorn hangs
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    require_real_redis()
    servers: list[Server] = []

    def start(issuer: FakeIssuer) -> Server:
        server = Server(issuer)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.redis
class TestUnderUvicorn:
    @pytest.mark.parametrize("mode", MODES)
    def test_valid_and_refused(self, serve: Any, issuer: FakeIssuer, mode: str) -> None:
        server = serve(issuer)
        whoami, scoped = "/ninja" + WHOAMI[mode], "/ninja" + SCOPED[mode]
        answer = server.get(whoami, f"Bearer {issuer.mint(sub='alice')}")
        assert (answer.status, answer.body["user"], answer.body["view"]) == (200, "alice", mode)
        assert answer.body["auth_is_claims"] is True
        assert_refused(server.get(whoami, f"Bearer {issuer.mint(expires_in=-3600)}"), 401, "token_expired")
        wrong_audience = issuer.mint(aud="https://other.example")
        assert_refused(server.get(whoami, f"Bearer {wrong_audience}"), 401, "invalid_audience")
        answer = server.get(scoped, f"Bearer {issuer.mint(scope='openid')}")
        assert (answer.status, answer.body["code"]) == (403, "insufficient_scope")
        assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
        token = issuer.mint(scope="read:friends write:friends")
        assert server.get(scoped, f"Bearer {token}").status == 200
        before = issuer.jwks_requests
        for n in range(5):
            forged = issuer.mint(key=generate_key("RS256", kid=f"forged-{n}"))
            assert_refused(server.get(whoami, f"Bearer {forged}"), 401, "unknown_kid")
        assert issuer.jwks_requests - before <= 1

    def test_issuer_down_is_503_with_retry_after(self, serve: Any, issuer: FakeIssuer) -> None:
        server = serve(issuer)
        token = issuer.mint()
        issuer.stop()
        for path in ("/ninja/whoami", "/ninja/awhoami"):
            assert_refused(server.get(path, f"Bearer {token}"), 503, "jwks_unavailable")

    def test_openapi_schema(self, serve: Any, issuer: FakeIssuer) -> None:
        schema = serve(issuer).get("/ninja/openapi.json").body
        assert schema["components"]["securitySchemes"]["JWTAuth"] == {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        assert schema["paths"]["/ninja/awhoami"]["get"]["security"] == [{"JWTAuth": []}]


def test_the_ninja_door_answers_like_drf(jwtguard_settings: FakeIssuer) -> None:
    for header in (f"Bearer {jwtguard_settings.mint()}", f"Bearer {jwtguard_settings.mint(expires_in=-60)}", None):
        assert doors.ninja(header) == doors.drf(header)


class TestDPoP:
    @pytest.mark.parametrize("mode", MODES)
    def test_a_dpop_token_with_its_proof_once(
        self, api: NinjaAPI, issuer: FakeIssuer, configure: Any, mode: str
    ) -> None:
        configure(issuer, DPOP="allowed", DPOP_PUBLIC_URL="http://testserver")
        client_key = DPoPKey()
        token = issuer.mint(cnf=client_key.cnf)
        proof = client_key.proof("GET", "http://testserver" + WHOAMI[mode], access_token=token)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        for expected in (200, 401):  # then its replay
            if mode == "sync":
                response: Any = TestClient(api).get(WHOAMI[mode], headers=headers)
            else:
                response = asyncio.run(TestAsyncClient(api).get(WHOAMI[mode], headers=headers))
            assert response.status_code == expected, response.content
        assert json.loads(response.content)["code"] == "dpop_replayed"
        assert 'DPoP realm="api", error="invalid_dpop_proof"' in response._response.headers["WWW-Authenticate"]
