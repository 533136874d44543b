"""drf-spectacular: schemas show ``JWTAccessTokenAuthentication`` as an HTTP bearer scheme with JWT format.

Imported by ``JWTGuardConfig.ready`` only when drf-spectacular is installed; defining the class registers it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from jwtguard.conf import get_settings
from jwtguard.edge import SCHEME

#: The security scheme's name in ``components.securitySchemes``.
SCHEME_NAME = "jwtAccessToken"


class JWTAccessTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """``Authorization: Bearer <JWT>``, naming the accepted issuers and audiences in the description."""

    target_class = "jwtguard.authentication.JWTAccessTokenAuthentication"
    match_subclasses = True
    name = SCHEME_NAME

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        scheme = build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION", token_prefix=SCHEME, bearer_format="JWT"
        )
        return {**scheme, "description": describe_issuers()}


def describe_issuers() -> str:
    """Where a client gets a token from; a schema must build even while the settings are wrong."""
    try:
        issuers = get_settings().issuers
    except ImproperlyConfigured:
        return "A JWT access token."
    lines = [
        f"issuer `{config.issuer}`, audience {' or '.join(f'`{aud}`' for aud in config.audience)}" for config in issuers
    ]
    return "A JWT access token from " + "; or from ".join(lines) + "."
