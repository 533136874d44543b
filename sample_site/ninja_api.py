"""The sample's Django Ninja router (``/ninja/``): the same tokens, scopes and answers as the DRF views.

``JWTAuth`` guards every operation; ``install(api)`` makes refusals look like the DRF class's and the
middleware's (401 ``invalid_token``, 403 ``insufficient_scope``, 503 with ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI, Router

from jwtguard.contrib.ninja import JWTAuth, install

router = Router()


@router.get("/friends")
def friends(request: HttpRequest) -> dict[str, Any]:
    """Any valid token; ``request.auth`` holds its claims."""
    claims: dict[str, Any] = request.auth  # type: ignore[attr-defined]  # set by Ninja from JWTAuth
    return {"user": claims["sub"], "view": "sync"}


@router.get("/friends/scoped", auth=JWTAuth(scopes=["read:friends"]))
async def scoped_friends(request: HttpRequest) -> dict[str, Any]:
    """An async operation that needs ``read:friends``: verified on the event loop, never blocking it."""
    user = await request.auser()
    return {"user": user.get_username(), "view": "async"}


api = install(NinjaAPI(auth=JWTAuth(), urls_namespace="sample-ninja", title="jwtguard sample (Ninja)"))
api.add_router("/", router)
# ``include("sample_site.ninja_api")`` mounts these under the API's namespace (its docs page reverses it).
urlpatterns, app_name = api.urls[0], api.urls_namespace
