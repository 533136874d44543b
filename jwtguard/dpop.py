"""DPoP (RFC 9449) on the resource server: the proof a client signs per request, and the issuer's ``DPOP`` policy.

A DPoP-bound access token names its holder's key by RFC 7638 thumbprint (``cnf.jkt``); the client shows it holds
that key by sending, beside ``Authorization: DPoP <token>``, a ``DPoP`` header: a JWT it signed for this one
request (method ``htm``, URL ``htu``, time ``iat``, unique ``jti``, hash of the token ``ath``).

* ``verify_proof`` checks a proof without any I/O and without trusting anything in it but its own key
  (the one ``jwk`` header RFC 8725 lets us use): ``typ``, ``alg`` from ``DPOP_ALGORITHMS``, a public key
  loaded with the same caps as a key set's, the signature, the claims, and the server nonce when on;
* ``check_presentation`` applies the issuer's ``DPOP`` ("off", "allowed", "required") to a verified token and
  the way it came (``Presentation``), binds the proof to the token (``cnf.jkt``), then spends the ``jti``;
* replay: each ``jti``, scoped by the key's thumbprint, is spent once per acceptance window: remembered in
  this process (bounded) and added with ``cache.add`` to the issuer's shared cache, whose answer decides,
  so a second use in any process sharing that cache is refused. Without a shared cache it holds per process;
* nonces (``DPOP_NONCE``): an HMAC of ``SECRET_KEY`` over the index of a time window, so every process
  computes the same nonce with no cache; the current and the previous window are accepted.

A proof never causes a fetch: its key comes with it, and the token's key was found before.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from jwt.exceptions import PyJWTError

from jwtguard.algorithms import KEY_LOADERS, SIGNATURE_CHECKS, algorithms_for_key
from jwtguard.cache import SharedCache
from jwtguard.clock import elapsed
from jwtguard.conf import JWTGuardSettings, on_reset
from jwtguard.exceptions import (
    DPoPAthMismatch,
    DPoPDowngrade,
    DPoPHtmMismatch,
    DPoPHtuMismatch,
    DPoPInvalidProof,
    DPoPKeyMismatch,
    DPoPNonceRequired,
    DPoPNotAccepted,
    DPoPProofMissing,
    DPoPReplayed,
    DPoPRequired,
    DPoPStale,
)
from jwtguard.jwks import MIN_RSA_BITS, PRIVATE_MEMBERS
from jwtguard.mediatypes import normalise as normalise_media_type
from jwtguard.strictjson import reject_constant
from jwtguard.tokens import AccessToken

BEARER = "Bearer"
DPOP = "DPoP"
#: The ``typ`` of a proof (RFC 9449 4.2), compared as a media type (``application/dpop+jwt`` is the same).
PROOF_TYPE = "dpop+jwt"
MAX_PROOF_BYTES = 8 * 1024
MAX_JTI_LENGTH = 256
#: How many spent ``jti`` each process remembers by itself (the shared cache remembers the rest).
MAX_LOCAL_JTIS = 100_000
NONCE_SALT = "jwtguard.dpop.nonce"

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: RFC 7638 3.2: the members a thumbprint hashes, per key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: What a path keeps unescaped once normalised: RFC 3986's pchar (unreserved, sub-delims, ":" and "@") and "/".
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


@dataclass(frozen=True)
class Presentation:
    """How a token came: its scheme and, for DPoP, the proof and the request the proof must name.

    ``url`` is the request's URL as clients call it, normalised (``normalise_url``), or None when it cannot be
    known from anything trustworthy (see ``docs/dpop.md``): a DPoP proof is then refused, never guessed at.
    """

    scheme: str
    proof: str | None = None
    method: str = ""
    url: str | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (RSA, EC or OKP), base64url; ``ValueError`` otherwise."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError(f"no thumbprint for kty {kty!r}")
    values = {name: jwk.get(name) for name in members}
    if not all(isinstance(value, str) for value in values.values()):
        raise ValueError(f"a {kty} key needs the string members {list(members)}")
    canonical = json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token's ASCII (RFC 9449 4.2)."""
    return b64url(hashlib.sha256(token.encode("utf-8")).digest())


def normalise_url(url: str) -> str | None:
    """``scheme://host[:port]/path`` as RFC 9449 4.3 compares ``htu``: no query, no fragment, scheme and host in
    lower case, the scheme's default port dropped, the path's percent-encoding made canonical (RFC 3986 6.2.2).
    None for anything but an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    try:
        path = quote(unquote(parts.path), safe=_PATH_SAFE) or "/"
    except UnicodeError:  # a lone surrogate, which JSON's "\ud800" can give: no URL
        return None
    return f"{scheme}://{netloc}{path}"


# Server nonces: the same in every process, from SECRET_KEY and the clock alone.


def nonce_for_window(window: int) -> str:
    from django.utils.crypto import salted_hmac

    return b64url(salted_hmac(NONCE_SALT, str(window), algorithm="sha256").digest()[:18])


def current_nonce(now: float, lifetime: float) -> str:
    """The nonce to hand out now (``DPoP-Nonce``); it is accepted for one to two ``lifetime``s."""
    return nonce_for_window(math.floor(now / lifetime))


def nonce_is_current(nonce: object, now: float, lifetime: float) -> bool:
    """Whether ``nonce`` is this window's or the previous one's."""
    if not isinstance(nonce, str):
        return False
    window = math.floor(now / lifetime)
    encoded = nonce.encode("utf-8", "replace")
    return any(hmac.compare_digest(encoded, nonce_for_window(w).encode()) for w in (window, window - 1))


# The proof.


def _segment(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _json_object(data: bytes) -> dict[str, Any]:
    value = json.loads(data.decode("utf-8"), parse_constant=reject_constant)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _parse(proof: str, max_bytes: int) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    if len(proof) > max_bytes or not _COMPACT_JWS.fullmatch(proof):
        raise DPoPInvalidProof("the DPoP header is not one compact JWS")
    head, body, signature = proof.split(".")
    try:
        return (
            _json_object(_segment(head)),
            _json_object(_segment(body)),
            f"{head}.{body}".encode(),
            _segment(signature),
        )
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
        raise DPoPInvalidProof("the DPoP proof's header or claims are not JSON objects") from exc


def _public_key(header: Mapping[str, Any], alg: str) -> tuple[Any, str]:
    """The proof's own key (its ``jwk`` header) and its thumbprint: public, of a type and size ``alg`` fits."""
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or PRIVATE_MEMBERS & jwk.keys():
        raise DPoPInvalidProof("the proof's jwk is not a public key")
    kty = jwk.get("kty")
    if not isinstance(kty, str) or alg not in algorithms_for_key(kty, jwk.get("crv")):
        raise DPoPInvalidProof(f"the proof's jwk cannot verify {alg}")
    try:
        key = KEY_LOADERS[kty](jwk)
        jkt = thumbprint(jwk)
    except (PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DPoPInvalidProof("the proof's jwk cannot be loaded") from exc
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise DPoPInvalidProof(f"the proof's RSA key is under {MIN_RSA_BITS} bits")
    return key, jkt


def _checked_header(header: Mapping[str, Any], settings: JWTGuardSettings) -> str:
    typ, alg = header.get("typ"), header.get("alg")
    if not isinstance(typ, str) or normalise_media_type(typ) != normalise_media_type(PROOF_TYPE):
        raise DPoPInvalidProof(f"typ {typ!r} is not {PROOF_TYPE}")
    if not isinstance(alg, str) or alg not in settings.dpop_algorithms:
        raise DPoPInvalidProof(f"alg {alg!r} is not one of DPOP_ALGORITHMS {list(settings.dpop_algorithms)}")
    if "crit" in header or header.get("b64", True) is not True:
        raise DPoPInvalidProof("the proof's header asks for an extension jwtguard does not implement")
    return alg


def _claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise DPoPInvalidProof(f"the proof's {name} is missing or not a string")
    return value


@dataclass(frozen=True)
class VerifiedProof:
    """A proof that holds for its request and token: its key's thumbprint, and the ``jti`` to spend."""

    jkt: str
    jti: str


def verify_proof(
    presentation: Presentation, access_token: str, settings: JWTGuardSettings, now: float
) -> VerifiedProof:
    """Check ``presentation``'s proof against its request and ``access_token`` (RFC 9449 4.3, without the replay
    and ``cnf.jkt`` steps, which ``check_presentation`` adds); raise a ``DPoPError`` saying what is wrong."""
    if presentation.proof is None:
        raise DPoPProofMissing("Authorization: DPoP without exactly one DPoP header")
    header, claims, signing_input, signature = _parse(
        presentation.proof, min(settings.max_token_bytes, MAX_PROOF_BYTES)
    )
    alg = _checked_header(header, settings)
    key, jkt = _public_key(header, alg)
    try:
        SIGNATURE_CHECKS[alg](key, signing_input, signature)
    except InvalidSignature as exc:
        raise DPoPInvalidProof("the proof's signature does not verify with its jwk") from exc
    jti, htm, htu = _claim(claims, "jti"), _claim(claims, "htm"), _claim(claims, "htu")
    iat = claims.get("iat")
    if len(jti) > MAX_JTI_LENGTH:
        raise DPoPInvalidProof(f"the proof's jti is over {MAX_JTI_LENGTH} characters")
    if (
        not isinstance(iat, (int, float))
        or isinstance(iat, bool)
        or (isinstance(iat, float) and not math.isfinite(iat))
    ):
        raise DPoPInvalidProof("the proof's iat is missing or not a number")
    if htm != presentation.method:
        raise DPoPHtmMismatch(f"htm {htm[:20]!r} is not the request's method {presentation.method!r}")
    if presentation.url is None:
        raise DPoPHtuMismatch("the request's public URL cannot be known (set DPOP_PUBLIC_URL)")
    if normalise_url(htu) != presentation.url:
        raise DPoPHtuMismatch(f"htu {htu[:200]!r} is not the request's URL {presentation.url!r}")
    # Compared, never subtracted: an int and a float compare exactly, and an iat of 10**400 overflows no float.
    if not now - settings.dpop_proof_window <= iat <= now + settings.dpop_proof_window:
        raise DPoPStale(f"iat {iat} is more than DPOP_PROOF_WINDOW {settings.dpop_proof_window}s from now")
    ath = claims.get("ath")
    expected = access_token_hash(access_token).encode()
    if not isinstance(ath, str) or not hmac.compare_digest(ath.encode("utf-8", "replace"), expected):
        raise DPoPAthMismatch("the proof's ath is missing or not the hash of the access token")
    if settings.dpop_nonce and not nonce_is_current(claims.get("nonce"), now, settings.dpop_nonce_lifetime):
        raise DPoPNonceRequired("the proof has no nonce, or not a current one")
    return VerifiedProof(jkt=jkt, jti=jti)


def bound_thumbprint(token: AccessToken) -> str | None:
    """The token's ``cnf.jkt``: the thumbprint of the key it is bound to, or None for a bearer token."""
    cnf = token.claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def check_presentation(
    token: AccessToken, presentation: Presentation | None, settings: JWTGuardSettings, now: float
) -> None:
    """The issuer's ``DPOP`` applied to a verified ``token`` and the way it came (None: as a Bearer token).

    "off": Bearer only, as before DPoP; "allowed": DPoP, or Bearer for a token bound to no key (a bound one
    as Bearer is a downgrade); "required": DPoP only. A DPoP presentation spends its proof's ``jti`` last,
    once everything else holds, so a refused proof spends nothing.
    """
    mode = token.issuer.dpop
    bound = bound_thumbprint(token)
    if presentation is None or presentation.scheme != DPOP:
        if mode == "required":
            raise DPoPRequired(f"issuer {token.issuer.issuer!r} requires DPoP")
        if mode == "allowed" and bound is not None:
            raise DPoPDowngrade("a token bound to a key (cnf.jkt) was presented as a Bearer token")
        return
    if mode == "off":
        raise DPoPNotAccepted(f"issuer {token.issuer.issuer!r} has DPOP off")
    proof = verify_proof(presentation, token.raw, settings, now)
    if bound is None or not hmac.compare_digest(bound.encode(), proof.jkt.encode()):
        raise DPoPKeyMismatch("the token's cnf.jkt is not the thumbprint of the proof's key")
    if not replay_guard(token.issuer.cache_alias).first_use(proof, 2 * settings.dpop_proof_window):
        raise DPoPReplayed(f"jti {proof.jti[:40]!r} was already used with this key")


# Replay: each (thumbprint, jti) once.


class ReplayGuard:
    """The ``jti`` spent with each key: in this process (at most ``MAX_LOCAL_JTIS``) and in the shared cache.

    The shared cache's ``add`` answers from the primary ("set if absent"): the one process whose ``add`` wins
    accepts the proof, every other refuses it. What this process remembers by itself refuses its own replays
    even when the cache cannot (a ``DummyCache``, an outage), and spares the cache a round trip for them.
    """

    def __init__(self, alias: str) -> None:
        self.cache = SharedCache(alias)
        self._spent: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(proof: VerifiedProof) -> str:
        # Hashed: the jti is the client's, any length and any characters; the key is ours.
        digest = hashlib.sha256(f"{proof.jkt}\n{proof.jti}".encode("utf-8", "replace")).hexdigest()[:40]
        return f"jwtguard:dpop:v1:jti:{digest}"

    def first_use(self, proof: VerifiedProof, ttl: float) -> bool:
        """Whether this is the first use of ``proof``'s jti with its key in the last ``ttl`` seconds; spends it."""
        key, now = self.key(proof), elapsed()
        with self._lock:
            # One ttl for every entry: insertion order is expiry order, so the expired ones are at the front.
            while self._spent and next(iter(self._spent.values())) <= now:
                self._spent.popitem(last=False)
            if key in self._spent:
                return False
            self._spent[key] = now + ttl
            while len(self._spent) > MAX_LOCAL_JTIS:
                self._spent.popitem(last=False)
        return self.cache.add(key, 1, ttl)


@functools.cache
def replay_guard(alias: str) -> ReplayGuard:
    """The process's ``ReplayGuard`` for the cache ``alias`` (one per alias, forgotten when settings change)."""
    return ReplayGuard(alias)


on_reset(replay_guard.cache_clear)
