from __future__ import annotations

from django.urls import include, path

from jwtguard.views import ready
from sample_site import views

urlpatterns = [
    path("api/v1/friends", views.FriendsView.as_view()),
    path("api/v1/friends/scoped", views.ScopedFriendsView.as_view()),
    path("api/v1/friends/dpop", views.DPoPFriendsView.as_view()),
    path("plain/friends", views.plain_friends),
    path("async/friends", views.async_friends),
    path("healthz", views.healthz),
    # Readiness: 200 once the key set can verify tokens (it fetches, or reads the shared cache, if needed).
    path("readyz", ready),
    path("ninja/", include("sample_site.ninja_api")),  # the Django Ninja router (jwtguard[ninja])
    path("", include("jwtguard.urls")),  # RFC 9728: /.well-known/oauth-protected-resource
]
