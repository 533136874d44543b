"""``path("", include("jwtguard.urls"))``: the API's RFC 9728 metadata at ``/.well-known/oauth-protected-resource``
(and ``/.well-known/oauth-protected-resource/<path>`` for a resource identifier with a path)."""

from __future__ import annotations

from django.urls import re_path

from jwtguard.views import protected_resource_metadata

urlpatterns = [
    re_path(
        r"^\.well-known/oauth-protected-resource(?P<path>/.*)?$",
        protected_resource_metadata,
        name="jwtguard-resource-metadata",
    ),
]
