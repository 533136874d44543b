"""The ways of validating a token that the benchmarks compare (import after Django is configured).

* the floor: PyJWT's ``jwt.decode`` with the public key already parsed (no key lookup at all);
* jwtguard: ``validate_token`` and the DRF class, with and without the verified-token cache;
* PyJWT's ``PyJWKClient`` as a process-wide singleton;
* the article's class: a ``PyJWKClient`` made in ``__init__``, and DRF makes an authenticator per request;
* djangorestframework-simplejwt configured with ``JWK_URL`` (its ``TokenBackend`` holds one ``PyJWKClient``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import jwt
from django.conf import settings
from jwt import PyJWKClient
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jwtguard.authentication import JWTAccessTokenAuthentication
from jwtguard.conf import DEFAULT_TOKEN_CACHE_BYTES, parse_settings
from jwtguard.validation import AccessToken, TokenValidator

Validate = Callable[[str], object]


def _bench(name: str) -> Any:
    """One of the ``BENCH_*`` settings every benchmark process is configured with (``RemoteIssuer.bench_settings``)."""
    return getattr(settings, name)


class BenchView(APIView):
    """The view every contender protects: the same code, only ``authentication_classes`` differ."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"sub": getattr(request.user, "id", None)})


class MinimalUser:
    """As little of a user as DRF's ``IsAuthenticated`` needs."""

    is_authenticated = True

    def __init__(self, claims: dict[str, Any]) -> None:
        self.id = claims.get("sub")


def _bearer(request: Request) -> str | None:
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return raw if scheme.lower() == "bearer" and raw else None


@functools.cache
def floor_key() -> Any:
    """The floor's one public key, parsed once (``BENCH_FLOOR_JWK``: the issuer's RS256 public JWK)."""
    return jwt.PyJWK(_bench("BENCH_FLOOR_JWK")).key


def floor_decode(raw: str, key: Any, algorithm: str) -> dict[str, Any]:
    return jwt.decode(
        raw, key, algorithms=[algorithm], audience=_bench("BENCH_AUDIENCE"), issuer=_bench("BENCH_ISSUER")
    )


class FloorAuthentication(BaseAuthentication):
    """The floor as a DRF class: the Bearer header, ``jwt.decode`` with a preloaded key, a minimal user."""

    def authenticate(self, request: Request) -> tuple[MinimalUser, dict[str, Any]] | None:
        raw = _bearer(request)
        if raw is None:
            return None
        try:
            claims = floor_decode(raw, floor_key(), "RS256")
        except jwt.PyJWTError as exc:
            raise exceptions.AuthenticationFailed("Bearer token is invalid") from exc
        return MinimalUser(claims), claims


class ArticleAuthentication(BaseAuthentication):
    """The article's class, finished: a ``PyJWKClient`` per instance, and DRF builds one per request."""

    regex_bearer = re.compile(r"^[Bb]earer (.*)$")

    def __init__(self) -> None:
        self.jwks_client = PyJWKClient(_bench("BENCH_JWKS_URL"))

    def authenticate(self, request: Request) -> tuple[MinimalUser, dict[str, Any]] | None:
        match = self.regex_bearer.match(request.headers.get("authorization", ""))
        if not match:
            raise exceptions.AuthenticationFailed("Authorization header must start with Bearer followed by its token")
        claims = decode_with_client(self.jwks_client, match.groups()[-1])
        return MinimalUser(claims), claims


def decode_with_client(client: PyJWKClient, raw: str) -> dict[str, Any]:
    try:
        key = client.get_signing_key_from_jwt(raw)
        return jwt.decode(
            raw,
            key.key,
            algorithms=[key.algorithm_name],
            audience=_bench("BENCH_AUDIENCE"),
            issuer=_bench("BENCH_ISSUER"),
        )
    except jwt.PyJWTError as exc:
        raise exceptions.AuthenticationFailed("Bearer token is invalid") from exc


@functools.cache
def cached_validator() -> TokenValidator:
    """A second jwtguard validator, with the verified-token cache on as by default (the settings' one has it off)."""
    return TokenValidator(parse_settings({**settings.JWTGUARD, "TOKEN_CACHE_BYTES": DEFAULT_TOKEN_CACHE_BYTES}))


class CachedJWTAuthentication(JWTAccessTokenAuthentication):
    """jwtguard's DRF class with the verified-token cache on (through its ``get_validated_token`` hook)."""

    def get_validated_token(self, raw: str, request: Request | None = None) -> AccessToken:
        return cached_validator().validate(raw)


def simple_jwt_token_class(algorithm: str, jwks_url: str) -> Callable[[str], object]:
    """simplejwt's ``AccessToken`` with its own ``TokenBackend`` (what ``SIMPLE_JWT`` builds at import)."""
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.tokens import AccessToken as SimpleAccessToken

    backend = TokenBackend(algorithm, None, "", _bench("BENCH_AUDIENCE"), _bench("BENCH_ISSUER"), jwks_url, 0)
    return type(f"AccessToken{algorithm}", (SimpleAccessToken,), {"_token_backend": backend})


def simple_jwt_authentication() -> type[BaseAuthentication]:
    from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

    return JWTStatelessUserAuthentication


def fresh_validator(name: str, jwks_url: str, algorithm: str = "RS256") -> Validate:
    """A contender with the state of a newly started process (for counting fetches)."""
    if name == "jwtguard":
        from jwtguard import conf, validate_token

        settings.JWTGUARD = {**settings.JWTGUARD, "JWKS_URL": jwks_url}
        conf.reset()
        return validate_token
    if name == "pyjwkclient":
        client = PyJWKClient(jwks_url)
        return functools.partial(decode_with_client, client)
    if name == "article":
        return lambda raw: decode_with_client(PyJWKClient(jwks_url), raw)
    if name == "simplejwt":
        return simple_jwt_token_class(algorithm, jwks_url)
    raise ValueError(name)


def as_view(*authentication: type[BaseAuthentication]) -> Callable[..., Any]:
    permission = [IsAuthenticated] if authentication else [AllowAny]
    return BenchView.as_view(authentication_classes=list(authentication), permission_classes=permission)
