"""Test clients that send a token minted by a ``FakeIssuer``: what the ``jwt_client`` fixture gives.

Django and DRF are imported when a client is made, never at import time, so the pytest plugin that
imports this module costs nothing in a project that does not use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.test import AsyncClient, Client

    from jwtguard.testing.issuer import FakeIssuer


class TokenClients:
    """Makes Django/DRF test clients whose every request carries ``Authorization: Bearer <token>``.

    ``clients(scope="read:friends")`` mints a token with those claims (on top of the issuer's defaults);
    ``clients(token=raw)`` sends exactly ``raw``. The sync client is DRF's ``APIClient`` when DRF is
    installed (``.get(url)``, ``.post(url, data, format="json")``), else Django's ``Client``.
    """

    def __init__(self, issuer: FakeIssuer) -> None:
        self.issuer = issuer

    def token(self, token: str | None = None, **claims: Any) -> str:
        """``token`` itself, or a fresh token from the issuer with ``claims``."""
        return token if token is not None else self.issuer.mint(**claims)

    def __call__(self, token: str | None = None, **claims: Any) -> Client:
        authorization = f"Bearer {self.token(token, **claims)}"
        try:
            from rest_framework.test import APIClient
        except ImportError:
            from django.test import Client

            return Client(headers={"Authorization": authorization})
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        return client

    def async_client(self, token: str | None = None, **claims: Any) -> AsyncClient:
        """Django's ``AsyncClient`` sending the token (for async views and the middleware's async path)."""
        from django.test import AsyncClient

        authorization = f"Bearer {self.token(token, **claims)}"

        class BearerAsyncClient(AsyncClient):
            # Added per request: headers given to AsyncClient() do not reach the ASGI scope on every Django
            # version (4.2 puts them beside it; 5.2 turns HTTP_AUTHORIZATION into "http-authorization").
            def generic(  # type: ignore[override]
                self, method: str, path: str, *args: Any, headers: Mapping[str, Any] | None = None, **extra: Any
            ) -> Any:
                headers = {"Authorization": authorization, **(headers or {})}
                return super().generic(method, path, *args, headers=headers, **extra)

        return BearerAsyncClient()
