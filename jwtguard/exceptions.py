"""What can go wrong: a ``TokenError`` tree for the token's faults, a ``KeySetError`` tree for ours.

Every class carries a stable snake_case ``code`` (API, like DRF's codes) and a user-safe ``detail``;
diagnostics belong in the log, never in ``detail``.
"""

from __future__ import annotations

NOT_PRESENT = "Authorization header is not present"
NOT_BEARER = "Authorization header must start with Bearer followed by its token"
NOT_A_JWT = "Bearer does not contain a valid JWT"
NO_VALID_KID = "JWT does not have a valid Key ID"
INVALID = "Bearer token is invalid"
KEYS_UNAVAILABLE = "signing keys unavailable — the token is not at fault"
ISSUER_LOOKUP_UNAVAILABLE = "issuer lookup unavailable — the token is not at fault"
DPOP_INVALID = "DPoP proof is invalid"
DPOP_MISSING = "DPoP proof is missing"
DPOP_NONCE = "DPoP proof must carry the server's current nonce"
DPOP_REQUIRED = "token must be presented with DPoP"


class JWTGuardError(Exception):
    """Root of every exception jwtguard raises on purpose."""

    code = "jwtguard_error"
    detail = INVALID

    def __init__(self, reason: str = "") -> None:
        # ``reason`` is for logs and developers; ``detail`` is what a client may see.
        super().__init__(reason or self.detail)
        self.reason = reason or self.detail


class TokenError(JWTGuardError):
    """Raised when a presented token must be refused (HTTP 401)."""

    code = "invalid_token"


class AuthorizationHeaderMissing(TokenError):
    """Raised when there is no Authorization header and one is required."""

    code = "authorization_header_missing"
    detail = NOT_PRESENT


class AuthorizationHeaderInvalid(TokenError):
    """Raised when the Authorization header is not ``Bearer <token>``."""

    code = "authorization_header_invalid"
    detail = NOT_BEARER


class MalformedToken(TokenError):
    """Raised when the bearer value is not a well-formed signed JWT (JWS compact serialization)."""

    code = "malformed_token"
    detail = NOT_A_JWT


class TokenTooLarge(MalformedToken):
    """Raised when the token is over ``MAX_TOKEN_BYTES``; nothing of it is decoded."""

    code = "token_too_large"


class UnknownKeyId(TokenError):
    """Raised when the key set has no usable key for the token's ``kid``, even after an allowed refresh."""

    code = "unknown_kid"
    detail = NO_VALID_KID


class MissingKeyId(UnknownKeyId):
    """Raised when the token's header has no usable ``kid``; never causes a key set refresh."""

    code = "missing_kid"


class InvalidToken(TokenError):
    """Raised when a well-formed token fails verification; subclasses name the check."""

    detail = INVALID


class AlgorithmNotAllowed(InvalidToken):
    """Raised when the header's ``alg`` is not allowed, or does not fit the key."""

    code = "algorithm_not_allowed"


class UnsupportedHeader(InvalidToken):
    """Raised when the header asks for something jwtguard never honours (``crit``, ``b64``)."""

    code = "unsupported_header"


class DistrustedKey(InvalidToken):
    """Raised when the token's ``kid`` is distrusted (``manage.py jwtguard distrust``, ``DISTRUSTED_KIDS``), whatever
    the key set holds."""

    code = "distrusted_key"


class InvalidTokenType(InvalidToken):
    """Raised when ``TOKEN_TYPE`` is set and the header's ``typ`` does not match it."""

    code = "invalid_token_type"


class InvalidSignature(InvalidToken):
    """Raised when the signature does not verify with the key named by ``kid``."""

    code = "invalid_signature"


class TokenExpired(InvalidToken):
    """Raised when ``exp`` is in the past (beyond ``LEEWAY``)."""

    code = "token_expired"


class TokenNotYetValid(InvalidToken):
    """Raised when ``nbf``, or ``iat``, is in the future (beyond ``LEEWAY``)."""

    code = "token_not_yet_valid"


class InvalidIssuer(InvalidToken):
    """Raised when ``iss`` is not exactly the configured ``ISSUER``."""

    code = "invalid_issuer"


class UnknownIssuer(InvalidIssuer):
    """Raised when the token's ``iss`` names no configured issuer: refused before any key is looked up."""


class InvalidAudience(InvalidToken):
    """Raised when ``aud`` names none of the configured audiences."""

    code = "invalid_audience"


class MissingClaim(InvalidToken):
    """Raised when a required claim (``exp``, ``aud``, or one of ``REQUIRED_CLAIMS``) is absent."""

    code = "missing_claim"


class InvalidClaim(InvalidToken):
    """Raised when a registered claim has the wrong JSON type (``exp`` as a string, ``sub`` as a number)."""

    code = "invalid_claim"


class DPoPError(TokenError):
    """Root of the refusals of RFC 9449 (DPoP); ``challenge_error`` is the ``error`` of the ``DPoP`` challenge."""

    code = "invalid_dpop_proof"
    detail = DPOP_INVALID
    #: RFC 9449 7.1: ``invalid_dpop_proof`` for the proof's faults, ``invalid_token`` for the token's,
    #: ``use_dpop_nonce`` when the server wants its nonce in the proof.
    challenge_error = "invalid_dpop_proof"


class DPoPProofMissing(DPoPError):
    """Raised when a token is presented with the ``DPoP`` scheme but without exactly one ``DPoP`` header."""

    code = "dpop_proof_missing"
    detail = DPOP_MISSING


class DPoPInvalidProof(DPoPError):
    """Raised when the ``DPoP`` header is no valid proof: not a JWT, wrong ``typ``, ``alg`` or ``jwk``, bad
    signature, a claim missing or of the wrong type."""

    code = "dpop_invalid_proof"


class DPoPHtmMismatch(DPoPError):
    """Raised when the proof's ``htm`` is not the request's method."""

    code = "dpop_htm_mismatch"


class DPoPHtuMismatch(DPoPError):
    """Raised when the proof's ``htu`` is not the request's URL (or the URL cannot be known: no trusted host)."""

    code = "dpop_htu_mismatch"


class DPoPAthMismatch(DPoPError):
    """Raised when the proof's ``ath`` is missing or not the hash of the access token presented with it."""

    code = "dpop_ath_mismatch"


class DPoPKeyMismatch(DPoPError):
    """Raised when the token's ``cnf.jkt`` is not the thumbprint of the proof's key (or the token is unbound)."""

    code = "dpop_key_mismatch"
    challenge_error = "invalid_token"


class DPoPStale(DPoPError):
    """Raised when the proof's ``iat`` is outside ``DPOP_PROOF_WINDOW`` of the server's clock."""

    code = "dpop_stale"


class DPoPReplayed(DPoPError):
    """Raised when the proof's ``jti`` was already used with the same key, in this process or any other."""

    code = "dpop_replayed"


class DPoPNonceRequired(DPoPError):
    """Raised when ``DPOP_NONCE`` is on and the proof carries no ``nonce``, or not a current one."""

    code = "use_dpop_nonce"
    detail = DPOP_NONCE
    challenge_error = "use_dpop_nonce"


class DPoPRequired(DPoPError):
    """Raised when the issuer's ``DPOP`` is ``"required"`` and its token is presented as a Bearer token."""

    code = "dpop_required"
    detail = DPOP_REQUIRED
    challenge_error = "invalid_token"


class DPoPDowngrade(DPoPRequired):
    """Raised when a DPoP-bound token (one with ``cnf.jkt``) is presented as a Bearer token."""

    code = "dpop_bound_token_as_bearer"


class DPoPNotAccepted(DPoPError):
    """Raised when a token is presented with the ``DPoP`` scheme but its issuer's ``DPOP`` is ``"off"``."""

    code = "dpop_not_accepted"
    detail = INVALID
    challenge_error = "invalid_token"


class KeySetError(JWTGuardError):
    """Root of the problems on our side of the exchange: the key set, its endpoint, the cache."""

    code = "jwks_error"
    detail = KEYS_UNAVAILABLE
    #: Seconds a client should wait before trying again (the 503's ``Retry-After``).
    retry_after = 5


class FetchError(KeySetError):
    """Raised when an HTTP fetch (JWKS or discovery) fails: network, status, size, JSON or policy."""

    code = "jwks_fetch_failed"


class KeySetUnavailable(KeySetError):
    """Raised when no usable key set can be had: never fetched, and the issuer cannot give one (HTTP 503)."""

    code = "jwks_unavailable"

    def __init__(self, reason: str = "", retry_after: int = 30) -> None:
        super().__init__(reason)
        self.retry_after = max(1, int(retry_after))


class IssuerSourceUnavailable(KeySetUnavailable):
    """Raised when ``ISSUER_SOURCE`` raised, gave a bad answer, or another process's call did not end in time
    (HTTP 503 for the tokens of that issuer only)."""

    code = "issuer_source_unavailable"
    detail = ISSUER_LOOKUP_UNAVAILABLE
