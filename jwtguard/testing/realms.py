"""``RealmIssuer``: many issuers on one local server, Keycloak style (a realm per tenant). Tests only.

Each realm is a ``FakeIssuer`` of its own (its own keys, ``iss``, discovery document and key set), served at
Keycloak's paths under ``/realms/<name>``: ``.well-known/openid-configuration`` and
``protocol/openid-connect/certs``. A realm that was never added answers 404, like a Keycloak without it.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import urlsplit

from jwtguard.testing.issuer import DEFAULT_AUDIENCE, STATS_PATH, FakeIssuer, LoopbackServer

DISCOVERY = ".well-known/openid-configuration"
CERTS = "protocol/openid-connect/certs"
_REALM_PATH = re.compile(r"/realms/([A-Za-z0-9_~-]+)/(.+)")


class RealmIssuer(LoopbackServer):
    """One HTTP server on 127.0.0.1 serving any number of realms, each a ``FakeIssuer`` with its own keys."""

    def __init__(
        self, algorithm: str = "ES256", *, audience: str = DEFAULT_AUDIENCE, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.algorithm = algorithm
        self.audience = audience
        self.host = host
        self.port = port
        self.realms: dict[str, FakeIssuer] = {}
        #: Requests by kind (``discovery``, ``certs``) and realm: ``requests["certs", "acme"]``.
        self.requests: Counter[tuple[str, str]] = Counter()
        #: Requests for a realm (or path) the server does not have, answered 404: what forged realms cost.
        self.not_found = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pattern(self) -> str:
        """The ``ISSUER`` pattern that matches every realm: ``http://127.0.0.1:<port>/realms/{realm}``."""
        return f"{self.url}/realms/{{realm}}"

    def issuer_of(self, realm: str) -> str:
        return f"{self.url}/realms/{realm}"

    def add_realm(self, realm: str) -> FakeIssuer:
        """A realm with its own key (served from now on); call after ``start()``, which fixes the port."""
        fake = FakeIssuer(self.algorithm, audience=self.audience, issuer=self.issuer_of(realm))
        fake.discovery_document = {
            "issuer": fake.issuer,
            "jwks_uri": f"{fake.issuer}/{CERTS}",
            "id_token_signing_alg_values_supported": [self.algorithm],
        }
        with self._lock:
            self.realms[realm] = fake
        return fake

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """A ``JWTGUARD`` setting that accepts every realm's tokens (through the pattern and discovery)."""
        entry = {"ISSUER": self.pattern, "AUDIENCE": self.audience, "ALGORITHMS": [self.algorithm], **overrides}
        return {"ISSUERS": [entry]}

    def request_counts(self) -> dict[tuple[str, str], int]:
        """A copy of ``requests``: by (kind, realm)."""
        with self._lock:
            return dict(self.requests)

    def fetches(self, kind: str) -> int:
        """Requests of one kind (``discovery`` or ``certs``) over every realm."""
        with self._lock:
            return sum(count for (what, _realm), count in self.requests.items() if what == kind)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"owner": self})


class _Handler(BaseHTTPRequestHandler):
    owner: ClassVar[RealmIssuer]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:
        owner = self.owner
        path = urlsplit(self.path).path
        if path == STATS_PATH:
            self._send(200, {"discovery": owner.fetches("discovery"), "certs": owner.fetches("certs")})
            return
        match = _REALM_PATH.fullmatch(path)
        realm = owner.realms.get(match.group(1)) if match else None
        kind = {DISCOVERY: "discovery", CERTS: "certs"}.get(match.group(2)) if match else None
        if match is None or realm is None or kind is None:
            with owner._lock:
                owner.not_found += 1
            self._send(404, {"error": "Realm does not exist"})
            return
        with owner._lock:
            owner.requests[kind, match.group(1)] += 1
        self._send(200, realm.discovery() if kind == "discovery" else realm.jwks())

    def _send(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
