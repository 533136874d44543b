"""The same view under every contender's authentication class, one path each."""

from __future__ import annotations

from django.urls import path

from benchmarks import contenders as c
from jwtguard.authentication import JWTAccessTokenAuthentication

VIEWS = {
    "none": c.as_view(),
    "floor": c.as_view(c.FloorAuthentication),
    "jwtguard": c.as_view(JWTAccessTokenAuthentication),
    "jwtguard-cache": c.as_view(c.CachedJWTAuthentication),
    "article": c.as_view(c.ArticleAuthentication),
}

urlpatterns = [path(f"bench/{name}", view) for name, view in VIEWS.items()]
