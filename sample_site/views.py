"""The sample's views: one per way of protecting an endpoint with jwtguard."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jwtguard.decorators import jwt_required
from jwtguard.permissions import HasScope
from jwtguard.user import TokenUser


class FriendsView(APIView):
    """``GET /api/v1/friends``: the article's ExampleView; any valid token (the default IsAuthenticated)."""

    def get(self, request: Request) -> Response:
        return Response({"user": request.user.id})


class ScopedFriendsView(APIView):
    """``GET /api/v1/friends/scoped``: a valid token that grants ``read:friends`` (else 403)."""

    permission_classes = [IsAuthenticated, HasScope]
    required_scopes = ["read:friends"]

    def get(self, request: Request) -> Response:
        user: TokenUser = request.user  # type: ignore[assignment]  # built from the claims, no database row
        return Response({"user": user.id, "scopes": sorted(user.scopes)})


class IsSenderConstrained(BasePermission):
    """A token bound to a key (``cnf.jkt``): jwtguard then checked its DPoP proof, since with ``DPOP`` at
    "allowed" a bound token is refused as Bearer; an unbound Bearer token gets a 403 here."""

    message = "This endpoint takes DPoP-bound tokens only"

    def has_permission(self, request: Request, view: object) -> bool:
        cnf = request.auth.get("cnf") if isinstance(request.auth, dict) else None
        return isinstance(cnf, dict) and "jkt" in cnf


class DPoPFriendsView(APIView):
    """``GET /api/v1/friends/dpop``: ``Authorization: DPoP <token>`` with a fresh ``DPoP`` proof; a replay is 401."""

    permission_classes = [IsAuthenticated, IsSenderConstrained]

    def get(self, request: Request) -> Response:
        claims: dict[str, Any] = request.auth  # type: ignore[assignment]  # jwtguard's: the token's claims
        return Response({"user": request.user.id, "bound_to": claims["cnf"]["jkt"]})


@jwt_required
def plain_friends(request: HttpRequest) -> JsonResponse:
    """``GET /plain/friends``: a plain Django view; the middleware has verified the token."""
    return JsonResponse({"user": request.user.id, "view": "plain"})


@jwt_required(scopes=["read:friends"])
async def async_friends(request: HttpRequest) -> JsonResponse:
    """``GET /async/friends``: an async view; nothing blocks the event loop under ASGI."""
    user = await request.auser()
    return JsonResponse({"user": user.id, "view": "async"})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers (no token, no key set involved)."""
    return JsonResponse({"status": "ok"})
