"""drf-spectacular: schemas show ``JWTAccessTokenAuthentication`` as an HTTP bearer scheme with JWT format, and,
when an issuer accepts DPoP (RFC 9449), as the ``DPoP`` scheme with its ``DPoP`` proof header too.

Imported by ``JWTGuardConfig.ready`` only when drf-spectacular is installed; defining the class registers it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from jwtguard.conf import JWTGuardSettings, get_settings
from jwtguard.dpop import DPOP
from jwtguard.edge import SCHEME

#: The security scheme's name in ``components.securitySchemes``.
SCHEME_NAME = "jwtAccessToken"
#: With DPoP: ``Authorization: DPoP <JWT>``, and the proof's header, required together.
DPOP_SCHEME_NAME = "jwtDPoPAccessToken"
DPOP_PROOF_NAME = "dpopProof"


def _settings() -> JWTGuardSettings | None:
    try:
        return get_settings()
    except ImproperlyConfigured:
        return None  # a schema must build even while the settings are wrong


class JWTAccessTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """``Authorization: Bearer <JWT>``, naming the accepted issuers and audiences in the description."""

    target_class = "jwtguard.authentication.JWTAccessTokenAuthentication"
    match_subclasses = True

    name: str | list[str] = SCHEME_NAME

    def __init__(self, target: Any) -> None:
        super().__init__(target)  # type: ignore[no-untyped-call]
        # One scheme while no issuer accepts DPoP; else Bearer, DPoP and the proof header, in this order.
        settings = _settings()
        if settings is not None and settings.dpop_accepted:
            self.name = [SCHEME_NAME, DPOP_SCHEME_NAME, DPOP_PROOF_NAME]

    def get_security_definition(self, auto_schema: Any) -> dict[str, str] | list[dict[str, str]]:
        scheme = build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION", token_prefix=SCHEME, bearer_format="JWT"
        )
        bearer = {**scheme, "description": describe_issuers()}
        if isinstance(self.name, str):
            return bearer
        # OpenAPI allows bearerFormat with the bearer scheme only.
        dpop = {"type": "http", "scheme": DPOP, "description": describe_issuers() + _DPOP_NOTE}
        proof = {
            "type": "apiKey",
            "in": "header",
            "name": "DPoP",
            "description": "A DPoP proof (RFC 9449) for this request, signed with the key the token is bound to.",
        }
        return [bearer, dpop, proof]

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[Any]] | list[dict[str, list[Any]]]:
        """Bearer, or DPoP with its proof header (each where some issuer accepts it)."""
        settings = _settings()
        if settings is None or not settings.dpop_accepted:
            return {SCHEME_NAME: []}
        dpop: dict[str, list[Any]] = {DPOP_SCHEME_NAME: [], DPOP_PROOF_NAME: []}
        return [{SCHEME_NAME: []}, dpop] if settings.bearer_accepted else [dpop]


_DPOP_NOTE = " Sent as `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449)."


def describe_issuers() -> str:
    """Where a client gets a token from; a schema must build even while the settings are wrong."""
    settings = _settings()
    if settings is None:
        return "A JWT access token."
    issuers = settings.issuers
    lines = [
        f"issuer `{config.issuer}`, audience {' or '.join(f'`{aud}`' for aud in config.audience)}" for config in issuers
    ]
    return "A JWT access token from " + "; or from ".join(lines) + "."
