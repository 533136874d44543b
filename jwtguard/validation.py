"""``TokenValidator``: parse, route, get the key, verify. Each step has one home and no I/O but step 3.

1. parse: size cap, three base64url segments, header and claims as JSON objects (no crypto, no I/O).
2. route: one issuer configured -> that one; several -> by the unverified ``iss`` (verified in step 4).
3. key: ``KeyProvider.get_key(kid, alg)`` (L1 memory, L2 shared cache, at most then the issuer).
4. verify: the signature with PyJWT's algorithm for ``alg``, then the claims and their JSON types.

The token is decoded exactly once; the signature is checked by the algorithm table (``jwtguard.algorithms``).
"""

from __future__ import annotations

import binascii
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature as _BadSignature

from jwtguard import signals
from jwtguard.algorithms import SIGNATURE_CHECKS
from jwtguard.conf import NO_ISS, IssuerConfig, JWTGuardSettings, get_settings, on_reset
from jwtguard.dpop import DPOP, Presentation, check_presentation
from jwtguard.exceptions import (
    AlgorithmNotAllowed,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidSignature,
    InvalidTokenType,
    JWTGuardError,
    MalformedToken,
    MissingClaim,
    MissingKeyId,
    TokenError,
    TokenExpired,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownIssuer,
    UnknownKeyId,
    UnsupportedHeader,
)
from jwtguard.issuers import SOURCE, IssuerRouter, Undecided
from jwtguard.jwks import KeyProvider, VerificationKey, get_provider
from jwtguard.mediatypes import normalise as normalise_media_type
from jwtguard.strictjson import reject_constant
from jwtguard.tokencache import CachedToken, TokenCache
from jwtguard.tokens import AccessToken as AccessToken  # its home is tokens.py; users import it from here

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


#: base64url -> base64, applied to the whole token at once (``.`` is left alone).
_TO_STANDARD_BASE64 = bytes.maketrans(b"-_", b"+/")
#: Padding by segment length modulo 4 (1 is impossible: 6 bits cannot make a byte).
_PADDING = (b"", b"", b"==", b"=")


def _b64decode(segment: bytes) -> bytes:
    """Decode one segment already translated to the standard alphabet (``_COMPACT_JWS`` vetted its characters)."""
    remainder = len(segment) % 4
    if remainder == 1:
        raise MalformedToken("a base64url segment has an impossible length")
    try:
        return binascii.a2b_base64(segment + _PADDING[remainder])
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the pattern admits only valid characters
        raise MalformedToken("a segment is not base64url") from exc


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member names")
    return result


# Built once: json.loads(..., object_pairs_hook=...) would build a decoder and its scanner per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates, parse_constant=reject_constant)
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        try:
            # The common case, a text that is exactly one value, straight to the C scanner; anything else
            # (surrounding whitespace, trailing junk, a BOM, no value at all) goes through decode(), which
            # accepts or refuses it exactly as json.loads does.
            value, end = _scan_once(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _DECODER.decode(text)
        if "\\u" in text:
            # A "\ud800" escape decodes to a lone surrogate: not a Unicode character, and a str that no UTF-8
            # encoder (a JSON response, a log handler, the ORM) will take. Only escaped text can hold one.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
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
    data = raw.encode("ascii")  # the pattern admits ASCII only
    first, last = data.index(b"."), data.rindex(b".")
    standard = data.translate(_TO_STANDARD_BASE64)
    return ParsedToken(
        raw=raw,
        header=_json_object(_b64decode(standard[:first]), "header"),
        claims=_json_object(_b64decode(standard[first + 1 : last]), "claims set"),
        signing_input=data[:last],
        signature=_b64decode(standard[last + 1 :]),
    )


def signature_is_valid(key: VerificationKey, alg: str, signing_input: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``signing_input`` verifies with ``key`` under ``alg`` (one of the key's own)."""
    if alg not in key.algorithms:
        return False
    try:
        SIGNATURE_CHECKS[alg](key.key, signing_input, signature)
    except _BadSignature:
        return False
    return True


def _is_number(value: object) -> bool:
    # An int of any size compares with time.time() exactly; math.isfinite() would overflow on 10**400.
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


class TokenValidator:
    """Validates raw access tokens against the configured issuers.

    Stateless apart from its settings, a memo of each issuer's ``KeyProvider``, and the verified-token cache
    when ``TOKEN_CACHE_BYTES`` gives it a budget (see ``jwtguard.tokencache``).
    """

    #: How often, in this process, an exception that is no ``JWTGuardError`` escaped validation: each is a bug
    #: of ours, answered 401 and logged (jwtguard's own test suite fails any test in which this grows).
    unexpected_errors: ClassVar[int] = 0

    def __init__(
        self,
        settings: JWTGuardSettings,
        provider_for: Callable[[IssuerConfig], KeyProvider] = get_provider,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.provider_for = provider_for
        #: None: ``time.time``, looked up at each call, so freezegun, time-machine and patches all move it.
        self.clock = clock
        self.token_cache: TokenCache | None = (
            TokenCache(settings.token_cache_bytes, settings.token_cache_size) if settings.token_cache_on else None
        )
        # (config, provider) by id(config): a frozen dataclass rehashes all its fields on every dict lookup.
        self._providers: dict[int, tuple[IssuerConfig, KeyProvider]] = {}
        #: Routes each ``iss``: ``ISSUERS``, patterns, ``ISSUER_SOURCE`` (``jwtguard.issuers``).
        self.issuers = IssuerRouter(settings)

    def validate(self, raw: str, presentation: Presentation | None = None) -> AccessToken:
        """The verified token, or a ``TokenError`` (401) / ``KeySetUnavailable`` (503) saying why not.

        ``presentation``: how the token came (its scheme, and a DPoP proof with the request it names); None is a
        Bearer token. The issuer's ``DPOP`` setting is applied to it on every call, the token cache's hits too.
        """
        token = self._validate(raw, local=False, presentation=presentation)
        assert token is not None
        return token

    def validate_local(self, raw: str, presentation: Presentation | None = None) -> AccessToken | None:
        """``validate()`` if it can be done without any I/O (the usual case), else None.

        For the event loop: the async middleware calls this first, and ``validate()`` in a thread only when
        this process must read the shared cache or fetch the key set. Refusals are raised as by ``validate()``.
        A DPoP proof spends its ``jti`` in the shared cache: I/O, so always None for one.
        """
        if presentation is not None and presentation.scheme == DPOP:
            return None
        return self._validate(raw, local=True, presentation=presentation)

    def _validate(self, raw: str, *, local: bool, presentation: Presentation | None = None) -> AccessToken | None:
        cache = self.token_cache
        if cache is not None and len(raw) <= self.settings.max_token_bytes:
            entry = cache.get(raw)
            if entry is not None:
                token = self._revalidate(raw, entry, cache, local=local)
                if token is not None:
                    cache.hits += 1
                    return self._presented(token, presentation)
                if local and raw in cache:
                    return None  # kept: only I/O can confirm its key, and validate() will, off the loop
            cache.misses += 1
        config: IssuerConfig | None = None
        try:
            parsed = self.parse(raw)
            routed = self.route(parsed, local=local)
            if routed is None:
                return None  # only the shared cache or ISSUER_SOURCE can tell: validate() will, off the loop
            config, kid, alg = routed
            provider = self.provider(config)
            key = provider.get_key_nowait(kid, alg) if local else provider.get_key(kid, alg)
            if key is None:
                return None
            token = self.verify(parsed, config, key)
        except TokenError as exc:
            self.rejected(exc, config)
            raise
        except JWTGuardError:
            raise
        except Exception as exc:
            # The last resort, not the way errors are handled: what hostile input can raise is turned into a
            # JWTGuardError where it arises (parse, key loading, signature checks, fetch). Anything else is a bug.
            raise self._unexpected(exc, config) from exc
        if cache is not None:
            cache.put(raw, CachedToken(token=_copy(token), key=key, kid=kid, alg=alg))
        return self._presented(token, presentation)

    def _presented(self, token: AccessToken, presentation: Presentation | None) -> AccessToken:
        """``token``, if the way it came suits its issuer's ``DPOP`` (``jwtguard.dpop.check_presentation``).

        After the token cache as much as after a full validation: a cached token is one whose signature and key
        were checked, never one whose proof was; each request brings a new proof, checked here every time.
        """
        if presentation is None and token.issuer.dpop == "off":
            return token  # the hot path of a Bearer-only deployment: one attribute read
        try:
            check_presentation(token, presentation, self.settings, self.now())
        except TokenError as exc:
            self.rejected(exc, token.issuer)
            raise
        except JWTGuardError:  # pragma: no cover - check_presentation raises TokenErrors only
            raise
        except Exception as exc:
            raise self._unexpected(exc, token.issuer) from exc
        return token

    def _unexpected(self, exc: Exception, config: IssuerConfig | None) -> TokenError:
        """A bug of ours must not become a 500 that tells the client more than "no" (every door comes here):
        logged with its traceback, counted, and refused as ``invalid_token``."""
        TokenValidator.unexpected_errors += 1
        logger.exception("jwtguard: unexpected error while validating a token")
        error = TokenError(f"unexpected validation error: {type(exc).__name__}")
        self.rejected(error, config)
        return error

    def _revalidate(self, raw: str, entry: CachedToken, cache: TokenCache, *, local: bool) -> AccessToken | None:
        """A cached token again, if its key is still the one the provider hands out and its times still hold;
        otherwise None, with the entry dropped (the caller then validates the token from scratch), or kept
        when ``local`` and the key cannot be had without I/O."""
        token = entry.token
        config = token.issuer
        try:
            if config.origin == SOURCE:
                # A tenant may have been dropped (issuer_changed) since: its answer, held or shared, decides.
                current = self.issuers.resolve(config.issuer, local=local)
                if isinstance(current, Undecided):
                    return None
                if current != config:
                    raise UnknownIssuer("ISSUER_SOURCE's answer changed since the token was cached")
            provider = self.provider(config)
            key = provider.get_key_nowait(entry.kid, entry.alg) if local else provider.get_key(entry.kid, entry.alg)
            if key is None and local:
                return None  # L1 is due for its recheck (or lacks the kid): undecided, the entry stays
            if key is not entry.key:
                raise UnknownKeyId("the key set changed since the token was cached")
            check_times(token.claims, self.now(), config.leeway)
        except JWTGuardError:
            cache.discard(raw)
            return None
        return _copy(token)

    def now(self) -> float:
        """The time tokens are judged at: ``clock()`` when one was given, else ``time.time()`` as it is now."""
        return time.time() if self.clock is None else self.clock()

    def provider(self, config: IssuerConfig) -> KeyProvider:
        """The key provider for ``config`` (``provider_for``, remembered per config object; an issuer resolved
        at run time asks ``provider_for`` each time, whose LRU bounds how many are held)."""
        if config.origin is not None:
            return self.provider_for(config)
        memo = self._providers.get(id(config))
        if memo is None or memo[0] is not config:
            memo = self._providers[id(config)] = (config, self.provider_for(config))
        return memo[1]

    def rejected(self, exc: TokenError, config: IssuerConfig | None) -> None:
        """Log and signal a refusal (the reason goes to the log, never to the client)."""
        issuer = config.issuer if config is not None else None
        logger.debug("jwtguard: token rejected (%s): %s", exc.code, exc.reason)
        signals.token_rejected.send(sender=TokenValidator, code=exc.code, issuer=issuer)

    def parse(self, raw: str) -> ParsedToken:
        return parse(raw, max_bytes=self.settings.max_token_bytes)

    def route(self, parsed: ParsedToken, *, local: bool = False) -> tuple[IssuerConfig, str, str] | None:
        """The issuer to ask, and the ``kid`` and ``alg`` to ask for. Without I/O but for an ``ISSUER_SOURCE``
        lookup, which ``local`` declines (None: ``validate()`` must decide, off the event loop)."""
        iss = parsed.claims.get("iss", NO_ISS)
        config = self.issuers.resolve(iss, local=local)
        if isinstance(config, Undecided):
            return None
        if config is None:
            raise UnknownIssuer("the token has no iss" if iss is NO_ISS else f"iss {iss!r} is not a configured issuer")
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
        if not signature_is_valid(key, parsed.header["alg"], parsed.signing_input, parsed.signature):
            raise InvalidSignature(f"signature does not verify with key {key.kid!r}")
        claims = parsed.claims
        _check_types(claims)
        check_times(claims, self.now(), config.leeway)
        if "iss" not in claims:
            raise MissingClaim("iss")
        if claims["iss"] != config.issuer:
            raise InvalidIssuer(f"iss {claims['iss']!r} is not {config.issuer!r}")
        for claim, value in config.bind_claims:
            # BIND_CLAIMS: the tenant the iss names must be the tenant the (now verified) token is of.
            if claims.get(claim) != value:
                raise InvalidIssuer(f"{claim} {claims.get(claim)!r} is not {value!r}, which iss names")
        _check_audience(claims, config.audience, config.audience_claim)
        for name in config.required_claims:
            if name not in claims:
                raise MissingClaim(name)
        return AccessToken(raw=parsed.raw, header=parsed.header, claims=claims, issuer=config)


def _copy(token: AccessToken) -> AccessToken:
    # Fresh containers in and out of the token cache, so a caller that edits its claims edits only its own.
    return AccessToken(raw=token.raw, header=dict(token.header), claims=dict(token.claims), issuer=token.issuer)


def _type_matches(typ: object, expected: str) -> bool:
    # Both sides normalised (RFC 7515 4.1.9): "at+jwt" and "application/at+jwt" are one type, in any case.
    return isinstance(typ, str) and normalise_media_type(typ) == normalise_media_type(expected)


def check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """``exp`` present and not past, ``nbf`` and ``iat`` not in the future, each with ``leeway`` seconds of skew.

    The claims' types were checked before (``_check_types``); the token cache calls this again on every hit.
    """
    if "exp" not in claims:
        raise MissingClaim("exp")
    if claims["exp"] <= now - leeway:
        raise TokenExpired(f"expired at {claims['exp']}")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise TokenNotYetValid(f"not valid before {claims['nbf']}")
    if "iat" in claims and claims["iat"] > now + leeway:
        raise TokenNotYetValid(f"issued in the future, at {claims['iat']}")


_ABSENT = object()


def _check_types(claims: Mapping[str, Any]) -> None:
    # PyJWT accepts an `exp` of "1700000000" or True and a numeric `sub`; a validator must not.
    get = claims.get
    for name in _NUMERIC_CLAIMS:
        value = get(name, _ABSENT)
        # `type(...) is int` first: the common case, and exact (JSON makes no bool-like ints but bool itself).
        if value is not _ABSENT and type(value) is not int and not _is_number(value):
            raise InvalidClaim(f"{name} must be a finite number, not {type(value).__name__}")
    for name in _STRING_CLAIMS:
        value = get(name, _ABSENT)
        if value is not _ABSENT and not isinstance(value, str):
            raise InvalidClaim(f"{name} must be a string, not {type(value).__name__}")
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
        if aud in accepted:
            return
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
