"""Real, independent token issuers for jwtguard's own suite (tests/test_real_issuers.py), beside ``FakeIssuer``:
tokens made by code we did not write catch what a fake made in our own image cannot (RFC 9864 names, ``typ``).

``oidc_provider``: panva's oidc-provider (npm) in a Node process of the test's; ``authlib_issuer``: Authlib's
RFC 9068 generator behind a loopback HTTP server of ours. Both listen on 127.0.0.1 only. What they share lives
here: the keys the tests hand them, and the client_credentials request a client sends either of them.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

#: What the API under test is called at both issuers (the tokens' ``aud``).
AUDIENCE = "https://api.example.test"
#: Every wait on an issuer is bounded by this (seconds): a hung issuer fails the test, never hangs the suite.
TIMEOUT = 20.0


#: Straight to the issuer, whatever proxy the environment names: the issuers are on loopback.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Client:
    """An OAuth client registered at an issuer: what it authenticates with, and the algorithm its tokens get."""

    client_id: str
    client_secret: str
    alg: str


def private_jwk(kind: str, kid: str, alg: str | None = None) -> dict[str, Any]:
    """A fresh private key as a JWK, ``kind`` one of RSA, P-256, Ed25519; with ``alg`` when given (a key without
    one may sign any algorithm its type allows, as many real key sets publish them)."""
    jwk: dict[str, Any]
    if kind == "RSA":
        jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048), as_dict=True)
    elif kind == "P-256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    elif kind == "Ed25519":
        jwk = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
    else:
        raise ValueError(f"no key kind {kind!r}")
    # PyJWT marks private RSA JWKs key_ops ["sign"], which an issuer would publish as is; real key sets do not.
    jwk.pop("key_ops", None)
    return {**jwk, "kid": kid, **({"alg": alg} if alg else {})}


#: The members of a private JWK that its public half leaves out (RFC 7518 6.2.2, 6.3.2; RFC 8037 2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}


def request_token(
    token_url: str, client: Client, *, headers: dict[str, str] | None = None, **params: str
) -> dict[str, Any]:
    """RFC 6749 4.4: a client_credentials token request, the client authenticated by HTTP Basic (2.3.1);
    ``headers`` adds to the request's (a ``DPoP`` proof, RFC 9449 5)."""
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **params}).encode()
    credentials = f"{urllib.parse.quote(client.client_id)}:{urllib.parse.quote(client.client_secret)}"
    request = urllib.request.Request(
        token_url,
        data=body,
        headers={
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            **(headers or {}),
        },
    )
    with DIRECT.open(request, timeout=TIMEOUT) as response:
        answer: dict[str, Any] = json.load(response)
    return answer
