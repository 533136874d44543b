"""Authlib's authorization server and RFC 9068 JWT access-token generator, behind a small loopback HTTP server
of ours that serves OIDC discovery, the JWKS and the token endpoint (client_credentials).

What is ours is the plumbing Authlib leaves to each framework (request objects, the HTTP server, the client
store); the client authentication, the grant, the scopes and the token itself are Authlib's. Authlib 1.7+'s
generator signs with the algorithms joserfc recommends: RS256 and ES256 (joserfc refuses PS256 and
EdDSA/Ed25519 unless asked for them, which the generator does not do).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import authlib
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator

from tests.real_issuers import AUDIENCE, Client, public_jwk, request_token

AUTHLIB_VERSION = tuple(int(part) for part in authlib.__version__.split(".")[:2])
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks"
TOKEN_PATH = "/token"


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """A confidential client allowed the client_credentials grant and the scopes it was registered with."""

    def __init__(self, client: Client, scope: str) -> None:
        self.client = client
        self.scope = scope

    def get_client_id(self) -> str:
        return self.client.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.scope.split(" ")
        return " ".join(item for item in (scope or "").split(" ") if item in allowed)


class TokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """Signs with the issuer's current key; Authlib's default ``aud`` is the client id, ours is the API's."""

    def __init__(self, issuer: AuthlibIssuer) -> None:
        super().__init__(issuer.issuer, alg=issuer.alg, expires_generator=issuer.ttl)
        self.owner = issuer

    def get_jwks(self) -> Any:
        """The signing key, in a key set so that Authlib names its ``kid`` in the header: a joserfc ``KeySet``
        for Authlib 1.7+ (which signs with joserfc), the JWKS as a dict for 1.6 (``authlib.jose``), which the
        oldest pair of the matrix installs (its cryptography 41 rules out 1.7+)."""
        jwks = {"keys": self.owner.keys[:1]}
        if AUTHLIB_VERSION < (1, 7):
            return jwks
        from joserfc.jwk import KeySet

        return KeySet.import_key_set(jwks)

    def get_audiences(self, client: Any, user: Any, scope: str) -> str:
        return AUDIENCE


class Server(AuthorizationServer):  # type: ignore[misc]
    """Authlib's framework-neutral authorization server, given requests as (method, url, headers, form)."""

    def __init__(self, clients: dict[str, RegisteredClient]) -> None:
        super().__init__()
        self.clients = clients

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Self-contained tokens: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No listeners."""

    def create_oauth2_request(self, request: tuple[str, str, Any, dict[str, str]]) -> OAuth2Request:
        method, url, headers, form = request
        oauth2_request = OAuth2Request(method, url, headers=headers)
        oauth2_request.payload = BasicOAuth2Payload(form)
        return oauth2_request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> tuple[int, Any, Any]:
        return status, body, headers


class AuthlibIssuer:
    """The issuer at ``http://127.0.0.1:<port>``: signs with ``keys[0]`` (``alg``), publishes every key in ``keys``
    (a rotation inserts the new key first), counts the requests it answers per path."""

    def __init__(self, alg: str, keys: list[dict[str, Any]], *, scope: str, ttl: int) -> None:
        self.alg = alg
        self.keys = keys
        self.ttl = ttl
        self.client = Client(client_id=f"authlib-{alg.lower()}", client_secret="s3cret-" + "x" * 32, alg=alg)
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.authorization_server = Server({self.client.client_id: RegisteredClient(self.client, scope)})
        self.authorization_server.register_grant(ClientCredentialsGrant)
        self.authorization_server.register_token_generator("default", TokenGenerator(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def jwks_url(self) -> str:
        return self.issuer + JWKS_PATH

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key) for key in self.keys]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "token_endpoint": self.issuer + TOKEN_PATH,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def token(self, scope: str) -> str:
        token: str = request_token(self.issuer + TOKEN_PATH, self.client, scope=scope)["access_token"]
        return token

    def __enter__(self) -> AuthlibIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                documents = {DISCOVERY_PATH: issuer.discovery, JWKS_PATH: issuer.jwks}
                if self.path not in documents:
                    self._answer(404, {"error": "not_found"}, [])
                    return
                self._answer(200, documents[self.path](), [])

            def do_POST(self) -> None:
                if self.path != TOKEN_PATH:
                    self._answer(404, {"error": "not_found"}, [])
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                request = ("POST", issuer.issuer + self.path, self.headers, form)
                self._answer(*issuer.authorization_server.create_token_response(request))

            def _answer(self, status: int, body: Any, headers: list[tuple[str, str]]) -> None:
                with issuer._lock:  # counted before answering: the count is right once the answer is read
                    issuer.requests[self.path] += 1
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if not any(name.lower() == "content-type" for name, _ in headers):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests count requests instead."""

        return Handler
