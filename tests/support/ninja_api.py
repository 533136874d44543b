"""A Django Ninja API guarded by ``JWTAuth``, sync and async operations, for test_ninja and the Ninja door.

Served by Ninja's test clients, and by a real ASGI server through ``tests.support.ninja_site``.
"""

from __future__ import annotations

import os
from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI

from jwtguard.contrib.ninja import JWTAuth, install

# Each test client registers the API's URL namespace again; Ninja before 1.5 refuses the second one unless told
# that this is a test run (the switch Ninja documents for tests).
os.environ.setdefault("NINJA_SKIP_REGISTRY", "1")


def describe(request: HttpRequest, user: Any, view: str) -> dict[str, Any]:
    auth: Any = getattr(request, "auth", None)
    return {
        "user": user.get_username(),
        "user_type": user.__class__.__name__,
        "sub": auth["sub"],
        "auth_is_claims": auth is getattr(request, "jwt", None),
        "view": view,
    }


def build(*, installed: bool = True, namespace: str = "jwtguard-tests-ninja") -> NinjaAPI:
    """A fresh API; ``installed=False`` leaves out ``install(api)`` (Ninja's own handlers answer)."""
    api = NinjaAPI(auth=JWTAuth(), urls_namespace=namespace, title="jwtguard tests")
    if installed:
        install(api)

    @api.get("/whoami")
    def whoami(request: HttpRequest) -> dict[str, Any]:
        return describe(request, request.user, "sync")

    @api.get("/awhoami")
    async def awhoami(request: HttpRequest) -> dict[str, Any]:
        return describe(request, await request.auser(), "async")

    @api.get("/scoped", auth=JWTAuth(scopes=["read:friends", "write:friends"]))
    def scoped(request: HttpRequest) -> dict[str, Any]:
        return describe(request, request.user, "sync")

    @api.get("/ascoped", auth=JWTAuth(scopes="read:friends write:friends"))
    async def ascoped(request: HttpRequest) -> dict[str, Any]:
        return describe(request, await request.auser(), "async")

    @api.get("/public", auth=None)
    def public(request: HttpRequest) -> dict[str, Any]:
        return {"public": True}

    return api


api = build()
