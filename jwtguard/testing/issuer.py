"""``FakeIssuer``: a real token issuer for tests and local development. NEVER use it in production.

It generates real key pairs, serves a real JWKS and OIDC discovery document over HTTP on 127.0.0.1,
mints real signed tokens, rotates keys, counts the requests it gets, and can misbehave on purpose
(errors, garbage, huge or slow answers) so that outage handling can be tested with real sockets.

``python -m jwtguard.testing.issuer --port 8001`` runs one as a development issuer, with a ``/mint``
endpoint that signs any claims it is asked for: a development tool, for loopback only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, RSAPSSAlgorithm, get_default_algorithms

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
STATS_PATH = "/stats"
DEFAULT_AUDIENCE = "https://api.example.test"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """One key pair of the issuer."""

    kid: str
    algorithm: str
    private_key: Any

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if self.algorithm.startswith("RS"):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif self.algorithm.startswith("PS"):
            jwk = RSAPSSAlgorithm.to_jwk(public, as_dict=True)
        elif self.algorithm.startswith("ES"):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
            # RFC 7518 6.2.1.2: each coordinate as long as the curve's size. PyJWT before 2.9 wrote P-521's
            # shorter when its top bits were 0, and its own from_jwk then refused the key.
            size = (public.curve.key_size + 7) // 8
            numbers = public.public_numbers()
            jwk["x"], jwk["y"] = (_b64url(n.to_bytes(size, "big")) for n in (numbers.x, numbers.y))
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


#: RFC 9864's names for EdDSA on one curve, which PyJWT signs as ``EdDSA`` (the key decides the curve).
_FULLY_SPECIFIED = {"Ed25519": "EdDSA", "Ed448": "EdDSA"}


def signer(algorithm: str) -> Any:
    """PyJWT's algorithm object that signs as ``algorithm`` (``Ed25519`` and ``Ed448`` included)."""
    return get_default_algorithms()[_FULLY_SPECIFIED.get(algorithm, algorithm)]


def generate_key(algorithm: str = "RS256", kid: str | None = None) -> SigningKey:
    """A fresh key pair for ``algorithm`` (RS*, PS*: RSA 2048; ES256/384/512: the matching curve; EdDSA and
    Ed25519: an Ed25519 key; Ed448: an Ed448 key)."""
    private_key: Any
    if algorithm[:2] in ("RS", "PS"):
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "ES384":
        private_key = ec.generate_private_key(ec.SECP384R1())
    elif algorithm == "ES512":
        private_key = ec.generate_private_key(ec.SECP521R1())
    elif algorithm in ("EdDSA", "Ed25519"):
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "Ed448":
        private_key = ed448.Ed448PrivateKey.generate()
    else:
        raise ValueError(f"FakeIssuer cannot make keys for {algorithm!r}")
    return SigningKey(
        kid=kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:12]}",
        algorithm=algorithm,
        private_key=private_key,
    )


#: How a ``FakeIssuer`` makes its keys: called as ``key_factory(algorithm, kid)``, ``kid`` None when the
#: issuer leaves the choice to it; returns a ``SigningKey`` of that algorithm (and that kid, when given).
KeyFactory = Callable[[str, str | None], SigningKey]


@dataclass
class Fault:
    """How the JWKS endpoint misbehaves: a status, a body, a delay before answering, a trickle of bytes."""

    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    trickle_interval: float | None = None
    headers: tuple[tuple[str, str], ...] = ()


_Served = TypeVar("_Served", bound="LoopbackServer")


class LoopbackServer:
    """A threaded HTTP server on ``host``:``port`` (0: a free port, known once started), from a daemon thread."""

    host: str
    port: int
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self: _Served) -> _Served:
        if self._server is None:
            server = ThreadingHTTPServer((self.host, self.port), self._handler())
            server.daemon_threads = True
            self.port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections until ``start()`` binds it again."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: _Served) -> _Served:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class FakeIssuer(LoopbackServer):
    """An identity provider in a box: keys, JWKS, discovery, minting, rotation, request counts, faults."""

    def __init__(
        self,
        algorithm: str = "RS256",
        *,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_minting: bool = False,
        key_factory: KeyFactory = generate_key,
    ) -> None:
        self.audience = audience
        self.host = host
        self.port = port
        self.allow_minting = allow_minting
        self._issuer = issuer
        #: Where every new key comes from (the first one, ``add_key``, ``rotate``); may be swapped at any time.
        self.key_factory = key_factory
        self.keys: list[SigningKey] = [self._new_key(algorithm)]
        self.requests: Counter[str] = Counter()
        self.fault: Fault | None = None
        self.cache_control: str | None = None
        self.etag_enabled = True
        self.jwks_document: dict[str, Any] | None = None
        self.discovery_document: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # -- identity ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self._issuer or f"{self.url}/"

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with: the newest one."""
        return self.keys[-1]

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """A ``JWTGUARD`` setting that accepts this issuer's tokens (JWKS URL given, no discovery)."""
        algorithms = sorted({key.algorithm for key in self.keys})
        return {
            "ISSUER": self.issuer,
            "AUDIENCE": self.audience,
            "JWKS_URL": self.jwks_url,
            "ALGORITHMS": algorithms,
            **overrides,
        }

    # -- keys and tokens ----------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        if self.jwks_document is not None:
            return self.jwks_document
        return {"keys": [key.public_jwk() for key in self.keys]}

    def discovery(self) -> dict[str, Any]:
        if self.discovery_document is not None:
            return self.discovery_document
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": sorted({key.algorithm for key in self.keys}),
        }

    def add_key(self, algorithm: str | None = None, kid: str | None = None) -> SigningKey:
        """Publish a new key and sign new tokens with it (the old keys stay published)."""
        key = self._new_key(algorithm or self.signing_key.algorithm, kid)
        with self._lock:
            self.keys.append(key)
        return key

    def rotate(self, algorithm: str | None = None) -> SigningKey:
        """Publish a new key, sign with it, and unpublish every older key."""
        key = self._new_key(algorithm or self.signing_key.algorithm)
        with self._lock:
            self.keys = [key]
        return key

    def _new_key(self, algorithm: str, kid: str | None = None) -> SigningKey:
        """A key from ``key_factory``, held to its contract: a key of another algorithm or kid than asked for
        would make every later failure of the test point at jwtguard instead."""
        key = self.key_factory(algorithm, kid)
        if key.algorithm != algorithm or (kid is not None and key.kid != kid):
            raise ValueError(
                f"key_factory returned a {key.algorithm} key with kid {key.kid!r}; asked for {algorithm}, kid {kid!r}"
            )
        return key

    def remove_key(self, kid: str) -> None:
        with self._lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    def mint(
        self,
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        expires_in: float = 300,
        **claims: Any,
    ) -> str:
        """A signed token with sensible defaults (iss, aud, sub, iat, exp); a claim or header given as None is
        left out. Values are not checked, so tests can mint hostile tokens (``exp="soon"``, ``kid=7``)."""
        key = key or self.signing_key
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "user-1",
            "iat": now,
            "exp": now + int(expires_in),
            **claims,
        }
        header: dict[str, Any] = {"alg": key.algorithm, "typ": "JWT", "kid": key.kid, **(headers or {})}
        return self.sign(
            {name: value for name, value in header.items() if value is not None},
            {name: value for name, value in body.items() if value is not None},
            key=key,
        )

    def sign(self, header: dict[str, Any], payload: dict[str, Any] | bytes, *, key: SigningKey | None = None) -> str:
        """A compact JWS of exactly ``header`` and ``payload`` (JSON-encoded unless bytes), signed with ``key``
        using ``key.algorithm`` whatever the header says: for tokens PyJWT's encoder would refuse to make."""
        key = key or self.signing_key
        header_b64 = _b64url(json.dumps(header, separators=(",", ":")).encode())
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        signing_input = f"{header_b64}.{_b64url(body)}".encode()
        signature = signer(key.algorithm).sign(signing_input, key.private_key)
        return f"{signing_input.decode()}.{_b64url(signature)}"

    # -- HTTP ---------------------------------------------------------------------------------------------

    @property
    def jwks_requests(self) -> int:
        return self.requests[JWKS_PATH]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)


class _Handler(BaseHTTPRequestHandler):
    """Serves one ``FakeIssuer`` (set per issuer by ``_handler_for``)."""

    issuer: ClassVar[FakeIssuer]
    protocol_version = "HTTP/1.1"
    server_version = "jwtguard-FakeIssuer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        with self.issuer._lock:
            self.issuer.requests[parts.path] += 1
        if parts.path == JWKS_PATH:
            self._jwks()
        elif parts.path == DISCOVERY_PATH:
            self._json(self.issuer.discovery())
        elif parts.path == "/mint" and self.issuer.allow_minting:
            self._mint(parse_qs(parts.query))
        elif parts.path == STATS_PATH:
            # The request counts, for processes that cannot read ``issuer.requests`` (demo, e2e test).
            with self.issuer._lock:
                counts = dict(self.issuer.requests)
            self._json({"requests": counts, "jwks_requests": counts.get(JWKS_PATH, 0)})
        else:
            self._send(404, b'{"error": "not found"}')

    def _jwks(self) -> None:
        fault = self.issuer.fault
        if fault is None:
            body = json.dumps(self.issuer.jwks()).encode()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers = [("ETag", etag)] if self.issuer.etag_enabled else []
            if self.issuer.cache_control:
                headers.append(("Cache-Control", self.issuer.cache_control))
            if self.issuer.etag_enabled and self.headers.get("If-None-Match") == etag:
                self._send(304, b"", headers)
            else:
                self._send(200, body, headers)
            return
        if fault.delay:
            time.sleep(fault.delay)
        body = fault.body if fault.body is not None else json.dumps(self.issuer.jwks()).encode()
        if fault.trickle_interval is None:
            self._send(fault.status, body, list(fault.headers))
            return
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for index in range(len(body)):
            self.wfile.write(body[index : index + 1])
            self.wfile.flush()
            time.sleep(fault.trickle_interval)

    def _mint(self, query: dict[str, list[str]]) -> None:
        special = ("expires_in", "dpop_jkt")
        claims: dict[str, Any] = {name: values[-1] for name, values in query.items() if name not in special}
        expires_in = float(query.get("expires_in", ["300"])[-1])
        token_type = "Bearer"
        if "dpop_jkt" in query:  # a DPoP-bound token (RFC 9449 6): cnf.jkt names the client's key
            claims["cnf"] = {"jkt": query["dpop_jkt"][-1]}
            token_type = "DPoP"
        self._json({"access_token": self.issuer.mint(expires_in=expires_in, **claims), "token_type": token_type})

    def _json(self, document: dict[str, Any]) -> None:
        self._send(200, json.dumps(document).encode())

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers or []:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _handler_for(issuer: FakeIssuer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"issuer": issuer})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jwtguard.testing.issuer",
        description="A DEVELOPMENT token issuer on 127.0.0.1: discovery, JWKS, and GET /mint?sub=...&scope=... "
        "that signs whatever it is asked. Never expose it.",
    )
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--algorithm", default="RS256")
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    args = parser.parse_args(argv)
    issuer = FakeIssuer(args.algorithm, audience=args.audience, port=args.port, allow_minting=True).start()
    print(f"jwtguard development issuer (NOT for production) at {issuer.issuer}", flush=True)
    print(f"  discovery: {issuer.url}{DISCOVERY_PATH}\n  jwks:      {issuer.jwks_url}", flush=True)
    print(f"  mint:      {issuer.url}/mint?sub=alice&scope=read:friends", flush=True)
    print(f"  stats:     {issuer.url}{STATS_PATH}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        issuer.stop()


if __name__ == "__main__":
    main()
