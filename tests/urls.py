from __future__ import annotations

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class FriendsView(APIView):
    """The article's ExampleView."""

    def get(self, request: Request) -> Response:
        return Response({"user": request.user.id})


urlpatterns = [
    path("api/v1/friends", FriendsView.as_view()),
    path("jwt/", include("tests.support.protected_views")),
]

urlpatterns += [path("", include("jwtguard.urls"))]
