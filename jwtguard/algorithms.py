"""The algorithm table, written once: per JWS ``alg`` name, the key it binds to and how its signature is checked.

``conf`` accepts the names in ``ALGORITHMS`` and refuses the dangerous ones, ``jwks`` gives each key the names
its type and curve can verify, ``validation`` checks signatures with each name's ``check``. A new name is one more
row of ``ALGORITHMS``.

RFC 9864 (fully-specified algorithms) gives JOSE ``Ed25519`` and ``Ed448``, each bound to its one curve, and
deprecates the polymorphic ``EdDSA``, kept for the issuers that still sign with it. Each is an allowlist entry of
its own: allowing ``EdDSA`` does not allow ``Ed25519``, nor the reverse. The ECDSA names RFC 9864 registers
(``ESP256``, ``ESP384``, ``ESP512``, the Brainpool ``ESB*``) are COSE names only: JOSE's ``ES256``/``ES384``/
``ES512`` were fully specified from the start (RFC 7518 3.4 binds each to its curve), so ``COSE_ONLY`` maps them
to the name a JWS carries, for the message that refuses them.

Signatures are checked by cryptography with the padding and hash PyJWT's algorithm objects use (called
directly: the hot path is measured against a bare ``jwt.decode``, see ``docs/performance.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

#: ``check(public_key, signing_input, signature)`` raises cryptography's ``InvalidSignature`` unless it verifies.
SignatureCheck = Callable[[Any, bytes, bytes], None]


def _rsa_pkcs1(hash_algorithm: hashes.HashAlgorithm) -> SignatureCheck:
    pkcs1 = padding.PKCS1v15()

    def check(key: Any, message: bytes, signature: bytes) -> None:
        key.verify(signature, message, pkcs1, hash_algorithm)

    return check


def _rsa_pss(hash_algorithm: hashes.HashAlgorithm) -> SignatureCheck:
    # PyJWT's RSAPSSAlgorithm: MGF1 with the same hash, salt as long as the digest (RFC 7518 3.5).
    pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)

    def check(key: Any, message: bytes, signature: bytes) -> None:
        key.verify(signature, message, pss, hash_algorithm)

    return check


def _ecdsa(hash_algorithm: hashes.HashAlgorithm) -> SignatureCheck:
    ecdsa = ECDSA(hash_algorithm)

    def check(key: Any, message: bytes, signature: bytes) -> None:
        # JWS carries r || s, each as long as the curve's order (RFC 7518 3.4); cryptography wants DER.
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise InvalidSignature("ECDSA signature of the wrong length")
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), message, ecdsa)

    return check


def _eddsa(key: Any, message: bytes, signature: bytes) -> None:
    key.verify(signature, message)


#: Per key type (JWK ``kty``), how a JWK becomes a cryptography public key (PyJWT's loaders).
KEY_LOADERS: dict[str, Callable[[Any], Any]] = {
    "RSA": RSAAlgorithm.from_jwk,
    "EC": ECAlgorithm.from_jwk,
    "OKP": OKPAlgorithm.from_jwk,
}


@dataclass(frozen=True)
class Algorithm:
    """One ``alg`` jwtguard accepts: the key type it binds to, the curves (JWK ``crv``) if that type has them,
    and its signature check."""

    name: str
    kty: str
    curves: tuple[str, ...]
    check: SignatureCheck


_SHA256, _SHA384, _SHA512 = hashes.SHA256(), hashes.SHA384(), hashes.SHA512()

#: Every algorithm jwtguard accepts (asymmetric only: a JWKS publishes public keys), by name.
ALGORITHMS: dict[str, Algorithm] = {
    row.name: row
    for row in (
        Algorithm("RS256", "RSA", (), _rsa_pkcs1(_SHA256)),
        Algorithm("RS384", "RSA", (), _rsa_pkcs1(_SHA384)),
        Algorithm("RS512", "RSA", (), _rsa_pkcs1(_SHA512)),
        Algorithm("PS256", "RSA", (), _rsa_pss(_SHA256)),
        Algorithm("PS384", "RSA", (), _rsa_pss(_SHA384)),
        Algorithm("PS512", "RSA", (), _rsa_pss(_SHA512)),
        Algorithm("ES256", "EC", ("P-256",), _ecdsa(_SHA256)),
        Algorithm("ES384", "EC", ("P-384",), _ecdsa(_SHA384)),
        Algorithm("ES512", "EC", ("P-521",), _ecdsa(_SHA512)),
        Algorithm("EdDSA", "OKP", ("Ed25519", "Ed448"), _eddsa),  # RFC 8037; deprecated by RFC 9864
        Algorithm("Ed25519", "OKP", ("Ed25519",), _eddsa),  # RFC 9864
        Algorithm("Ed448", "OKP", ("Ed448",), _eddsa),  # RFC 9864
    )
}

#: RFC 9864's ECDSA names, registered for COSE only, with what a JWS says for the same operation (None: nothing
#: JOSE has, the Brainpool curves).
COSE_ONLY: dict[str, str | None] = {
    "ESP256": "ES256",
    "ESP384": "ES384",
    "ESP512": "ES512",
    "ESB256": None,
    "ESB320": None,
    "ESB384": None,
    "ESB512": None,
}

#: The names ``ALGORITHMS`` may list.
SUPPORTED = frozenset(ALGORITHMS)

#: ``check`` by name, for the hot path (one dict lookup per token).
SIGNATURE_CHECKS: dict[str, SignatureCheck] = {name: row.check for name, row in ALGORITHMS.items()}

_CURVED_KEY_TYPES = frozenset(row.kty for row in ALGORITHMS.values() if row.curves)
_BY_KEY: dict[tuple[str, str | None], frozenset[str]] = {}
for _row in ALGORITHMS.values():
    for _curve in _row.curves or (None,):
        _BY_KEY[_row.kty, _curve] = _BY_KEY.get((_row.kty, _curve), frozenset()) | {_row.name}
del _row, _curve


def algorithms_for_key(kty: str, crv: object) -> frozenset[str]:
    """The names a JWK of type ``kty`` (and curve ``crv``, for the types that have one) may verify; empty for
    a key type or curve jwtguard does not support."""
    curve = crv if kty in _CURVED_KEY_TYPES else None
    if curve is not None and not isinstance(curve, str):
        return frozenset()
    return _BY_KEY.get((kty, curve), frozenset())


def is_dangerous(name: str) -> bool:
    """Whether ``name`` must never be allowed: ``none`` accepts unsigned tokens, and an HMAC algorithm (HS*)
    with keys from a JWKS lets anyone who has the public key forge tokens."""
    return name.lower() == "none" or name.upper().startswith("HS")
