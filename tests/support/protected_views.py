"""Views protected by the middleware, ``jwt_required`` and ``HasScope``, sync and async (mounted under /jwt/)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jwtguard.decorators import jwt_required
from jwtguard.permissions import HasScope


def describe(request: HttpRequest, user: Any) -> dict[str, Any]:
    return {
        "user": user.get_username() if user.is_authenticated else None,
        "user_type": user.__class__.__name__,  # through a lazy object too
        "claims": getattr(request, "jwt", None),
        "auth_is_jwt": getattr(request, "auth", None) is getattr(request, "jwt", None),
    }


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**describe(request, request.user), "view": "sync"})


async def current_user(request: HttpRequest) -> Any:
    """``await request.auser()``; on Django 4.2, which has no ``auser`` unless jwtguard set one, the lazy
    session user, evaluated off the event loop."""
    if hasattr(request, "auser"):
        return await request.auser()

    def evaluate() -> Any:
        user = request.user
        user.is_authenticated  # noqa: B018 - forces the lazy lookup here, in a thread
        return user

    return await sync_to_async(evaluate)()


async def awhoami(request: HttpRequest) -> JsonResponse:
    user = await current_user(request)
    # request.user stays lazy (a session lookup) without a token, so compare it only when one was verified
    same = user is request.user if hasattr(request, "jwt") else None
    return JsonResponse({**describe(request, user), "view": "async", "auser_is_user": same})


@jwt_required
def required_sync(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**describe(request, request.user), "view": "sync"})


@jwt_required(scopes=["read:friends"])
async def required_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**describe(request, await request.auser()), "view": "async"})


@jwt_required(scopes="read:friends write:friends")
def required_two_scopes(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**describe(request, request.user), "view": "sync"})


@method_decorator(jwt_required(scopes=["read:friends"]), name="dispatch")
class SyncDispatchView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({**describe(request, request.user), "view": "sync"})

    def post(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"posted": True})


@method_decorator(jwt_required(scopes=["read:friends"]), name="dispatch")
class AsyncDispatchView(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({**describe(request, await request.auser()), "view": "async"})


class AsyncMethodView(View):
    @method_decorator(jwt_required(scopes=["read:friends"]))
    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({**describe(request, await request.auser()), "view": "async"})


@jwt_required(scopes=["read:friends"])
class DecoratedClassView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({**describe(request, request.user), "view": "sync"})


class ScopedView(APIView):
    permission_classes = [HasScope]
    required_scopes = ["read:friends"]

    def get(self, request: Request) -> Response:
        return Response({"user": request.user.get_username()})


class EitherScopeView(ScopedView):
    permission_classes = [HasScope.of("admin") | HasScope.of("read:friends")]


class AuthenticatedAndScopedView(ScopedView):
    permission_classes = [IsAuthenticated & HasScope.of("read:friends", "write:friends")]


class UndeclaredScopesView(APIView):
    permission_classes = [HasScope]

    def get(self, request: Request) -> Response:
        return Response({})


urlpatterns = [
    path("whoami", whoami),
    path("awhoami", awhoami),
    path("required-sync", required_sync),
    path("required-async", required_async),
    path("required-two-scopes", required_two_scopes),
    path("cbv-sync", SyncDispatchView.as_view()),
    path("cbv-async", AsyncDispatchView.as_view()),
    path("cbv-async-method", AsyncMethodView.as_view()),
    path("cbv-decorated", DecoratedClassView.as_view()),
    path("drf/scoped", ScopedView.as_view()),
    path("drf/either", EitherScopeView.as_view()),
    path("drf/and", AuthenticatedAndScopedView.as_view()),
    path("drf/undeclared", UndeclaredScopesView.as_view()),
]


def call(
    mode: str,
    url: str,
    authorization: str | None = None,
    *,
    method: str = "get",
    cookies: Any = None,
    **client_options: Any,
) -> Any:
    """One request through the whole stack: ``wsgi`` (Django's Client) or ``asgi`` (AsyncClient, async handler)."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient, Client

    headers = {} if authorization is None else {"Authorization": authorization}
    client = Client(**client_options) if mode == "wsgi" else AsyncClient(**client_options)
    assert mode in ("wsgi", "asgi")
    if cookies is not None:
        client.cookies = cookies
    send = getattr(client, method)
    return send(url, headers=headers) if mode == "wsgi" else async_to_sync(send)(url, headers=headers)


#: A full stack: sessions, CSRF, Django's auth, then jwtguard (as the docs recommend).
STACK = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "jwtguard.middleware.JWTAuthenticationMiddleware",
]


def invalid_token_challenge(detail: str) -> str:
    return f'Bearer realm="api", error="invalid_token", error_description="{detail}"'


def scope_challenge(scope: str) -> str:
    return f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'


def assert_refused(response: Any, code: str, detail: str = "Bearer token is invalid") -> None:
    assert response.status_code == 401
    assert response.json() == {"detail": detail, "code": code}
    assert response.headers["WWW-Authenticate"] == invalid_token_challenge(detail)
