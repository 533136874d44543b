"""``DPoPKey``: a client's DPoP key pair, for tests of APIs that accept sender-constrained tokens (RFC 9449).

Mint a bound token with ``issuer.mint(cnf=client.cnf)``, then send ``Authorization: DPoP <token>`` with
``DPoP: client.proof("GET", "https://api.example.test/orders", access_token=token)``. Written from the RFCs
alone (not with jwtguard's own checks), so a test holds jwtguard to the standard, not to itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

from jwtguard.testing.issuer import SigningKey, generate_key, signer


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DPoPKey:
    """A DPoP key pair of a client (ES256 unless told otherwise) that signs proofs."""

    def __init__(self, algorithm: str = "ES256") -> None:
        self.signing_key: SigningKey = generate_key(algorithm)
        self.algorithm = algorithm

    @property
    def jwk(self) -> dict[str, Any]:
        """The public key as a proof's ``jwk`` header carries it: public members only, no ``kid``."""
        full = self.signing_key.public_jwk()
        return {name: value for name, value in full.items() if name in ("kty", "crv", "x", "y", "n", "e")}

    @property
    def thumbprint(self) -> str:
        """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
        required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
        jwk = self.jwk
        text = "{" + ",".join(f'"{name}":"{jwk[name]}"' for name in required[jwk["kty"]]) + "}"
        return _encode(hashlib.sha256(text.encode()).digest())

    @property
    def cnf(self) -> dict[str, str]:
        """The ``cnf`` claim of a token bound to this key."""
        return {"jkt": self.thumbprint}

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A proof for one request; a claim or header given as None is left out (to test refusals)."""
        body: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            body["ath"] = _encode(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        header = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.jwk, **(headers or {})}
        segments = [
            _encode(json.dumps({k: v for k, v in part.items() if v is not None}, separators=(",", ":")).encode())
            for part in (header, body)
        ]
        signing_input = ".".join(segments).encode("ascii")
        signature = signer(self.algorithm).sign(signing_input, self.signing_key.private_key)
        return f"{signing_input.decode('ascii')}.{_encode(signature)}"
