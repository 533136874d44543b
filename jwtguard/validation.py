"""``TokenValidator``: parse, route, get the key, verify. Each step has one home and no I/O but step 3.

1. parse: size cap, three base64url segments, header and claims as JSON objects (no crypto, no I/O).
2. route: one issuer configured -> that one; several -> by the unverified ``iss`` (verified in step 4).
3. key: ``KeyProvider.get_key(kid, alg)`` (L1 memory, L2 shared cache, at most then the issuer).
4. verify: the signature with PyJWT's algorithm for ``alg``, then the claims and their JSON types.

The token is decoded exactly once; the signature check is PyJWT's (cryptography underneath).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jwtguard import signals
from jwtguard.conf import IssuerConfig, JWTGuardSettings, get_settings, on_reset
from jwtguard.exceptions import (
    AlgorithmNotAllowed,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidSignature,
    InvalidTokenType,
    MalformedToken,
    MissingClaim,
    MissingKeyId,
    TokenError,
    TokenExpired,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownIssuer,
    UnsupportedHeader,
)
from jwtguard.jwks import KeyProvider, VerificationKey, get_provider

logger = logging.getLogger("jwtguard")

MAX_KID_LENGTH = 256
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_NUMERIC_CLAIMS = ("exp", "nbf", "iat")
_STRING_CLAIMS = ("iss", "sub", "jti", "azp", "client_id", "scope")


@dataclass(frozen=True)
class ParsedToken:
    """A token split and decoded, nothing of it verified yet."""

    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class AccessToken:
    """A verified access token: its header and claims, and the issuer that vouched for it."""

    raw: str = field(repr=False)
    header: Mapping[str, Any]
    claims: dict[str, Any]
    issuer: IssuerConfig = field(repr=False)

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None


def _b64decode(segment: str) -> bytes:
    if len(segment) % 4 == 1:
        raise MalformedToken("a base64url segment has an impossible length")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the pattern admits only valid characters
        raise MalformedToken("a segment is not base64url") from exc


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member names")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedToken(f"the {what} is not JSON without duplicate members") from exc
    if not isinstance(value, dict):
        raise MalformedToken(f"the {what} is JSON but not an object")
    return value


def parse(raw: str, *, max_bytes: int) -> ParsedToken:
    """Split and decode a compact JWS; raise ``MalformedToken`` for anything else (JWE, unsigned, junk)."""
    if len(raw) > max_bytes:
        raise TokenTooLarge(f"token of {len(raw)} characters is over the {max_bytes} cap")
    if not _COMPACT_JWS.fullmatch(raw):
        raise MalformedToken("not three non-empty base64url segments")
    header_b64, claims_b64, signature_b64 = raw.split(".")
    return ParsedToken(
        raw=raw,
        header=_json_object(_b64decode(header_b64), "header"),
        claims=_json_object(_b64decode(claims_b64), "claims set"),
        signing_input=f"{header_b64}.{claims_b64}".encode("ascii"),
        signature=_b64decode(signature_b64),
    )


def _is_number(value: object) -> bool:
    # An int of any size compares with time.time() exactly; math.isfinite() would overflow on 10**400.
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


class TokenValidator:
    """Validates raw access tokens against the configured issuers. Stateless apart from its settings."""

    def __init__(
        self,
        settings: JWTGuardSettings,
        provider_for: Callable[[IssuerConfig], KeyProvider] = get_provider,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.provider_for = provider_for
        self.clock = clock

    def validate(self, raw: str) -> AccessToken:
        """The verified token, or a ``TokenError`` (401) / ``KeySetUnavailable`` (503) saying why not."""
        config: IssuerConfig | None = None
        try:
            parsed = self.parse(raw)
            config, kid, alg = self.route(parsed)
            key = self.provider_for(config).get_key(kid, alg)
            return self.verify(parsed, config, key)
        except TokenError as exc:
            self.rejected(exc, config)
            raise

    def rejected(self, exc: TokenError, config: IssuerConfig | None) -> None:
        """Log and signal a refusal (the reason goes to the log, never to the client)."""
        issuer = config.issuer if config is not None else None
        logger.debug("jwtguard: token rejected (%s): %s", exc.code, exc.reason)
        signals.token_rejected.send(sender=TokenValidator, code=exc.code, issuer=issuer)

    def parse(self, raw: str) -> ParsedToken:
        return parse(raw, max_bytes=self.settings.max_token_bytes)

    def route(self, parsed: ParsedToken) -> tuple[IssuerConfig, str, str]:
        """The issuer to ask, and the ``kid`` and ``alg`` to ask for, checked without any I/O."""
        config = self.settings.issuer_for(parsed.claims.get("iss"))
        if config is None:
            raise UnknownIssuer(f"iss {parsed.claims.get('iss')!r} is not a configured issuer")
        header = parsed.header
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in config.algorithms:
            raise AlgorithmNotAllowed(f"alg {alg!r} is not one of {list(config.algorithms)}")
        if "crit" in header or header.get("b64", True) is not True or "enc" in header or "zip" in header:
            raise UnsupportedHeader("the header asks for an extension jwtguard does not implement")
        if config.token_type is not None and not _type_matches(header.get("typ"), config.token_type):
            raise InvalidTokenType(f"typ {header.get('typ')!r} is not {config.token_type!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise MissingKeyId("the header has no usable kid")
        return config, kid, alg

    def verify(self, parsed: ParsedToken, config: IssuerConfig, key: VerificationKey) -> AccessToken:
        """Check the signature with ``key``, then the claims; returns the ``AccessToken``."""
        if not key.verify(parsed.header["alg"], parsed.signing_input, parsed.signature):
            raise InvalidSignature(f"signature does not verify with key {key.kid!r}")
        claims = parsed.claims
        _check_types(claims)
        now = self.clock()
        leeway = config.leeway
        if "exp" not in claims:
            raise MissingClaim("exp")
        if claims["exp"] <= now - leeway:
            raise TokenExpired(f"expired at {claims['exp']}")
        if "nbf" in claims and claims["nbf"] > now + leeway:
            raise TokenNotYetValid(f"not valid before {claims['nbf']}")
        if "iat" in claims and claims["iat"] > now + leeway:
            raise TokenNotYetValid(f"issued in the future, at {claims['iat']}")
        if "iss" not in claims:
            raise MissingClaim("iss")
        if claims["iss"] != config.issuer:
            raise InvalidIssuer(f"iss {claims['iss']!r} is not {config.issuer!r}")
        _check_audience(claims, config.audience, config.audience_claim)
        for name in config.required_claims:
            if name not in claims:
                raise MissingClaim(name)
        return AccessToken(raw=parsed.raw, header=parsed.header, claims=claims, issuer=config)


def _type_matches(typ: object, expected: str) -> bool:
    if not isinstance(typ, str):
        return False
    typ, expected = typ.lower(), expected.lower()
    return typ == expected or typ == "application/" + expected


def _check_types(claims: Mapping[str, Any]) -> None:
    # PyJWT accepts an `exp` of "1700000000" or True and a numeric `sub`; a validator must not.
    for name in _NUMERIC_CLAIMS:
        if name in claims and not _is_number(claims[name]):
            raise InvalidClaim(f"{name} must be a finite number, not {type(claims[name]).__name__}")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidClaim(f"{name} must be a string, not {type(claims[name]).__name__}")
    scp = claims.get("scp")
    if scp is not None and not (
        isinstance(scp, str) or (isinstance(scp, list) and all(isinstance(s, str) for s in scp))
    ):
        raise InvalidClaim("scp must be a string or a list of strings")


def _check_audience(claims: Mapping[str, Any], accepted: tuple[str, ...], claim: str = "aud") -> None:
    # ``claim`` is ``aud``, or ``client_id`` for issuers (Amazon Cognito) whose access tokens carry no ``aud``.
    if claim not in claims:
        raise MissingClaim(claim)
    aud = claims[claim]
    if isinstance(aud, str):
        aud = [aud]
    if not isinstance(aud, list) or not aud or not all(isinstance(a, str) for a in aud):
        raise InvalidAudience(f"{claim} must be a string or a non-empty list of strings")
    if not any(a in accepted for a in aud):
        raise InvalidAudience(f"{claim} {aud!r} names none of {list(accepted)}")


_validator: TokenValidator | None = None
_validator_lock = threading.Lock()


def get_validator() -> TokenValidator:
    """The validator for the current settings; rebuilt after ``override_settings`` changes them."""
    global _validator
    validator = _validator
    if validator is None:
        with _validator_lock:
            if _validator is None:
                _validator = TokenValidator(get_settings())
            validator = _validator
    return validator


@on_reset
def _forget_validator() -> None:
    global _validator
    _validator = None
