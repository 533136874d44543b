"""An ASGI application serving the Ninja API of ``tests.support.ninja_api`` under /ninja/, for a real server.

test_ninja starts ``uvicorn tests.support.ninja_site:application`` on 127.0.0.1 with the issuer's ``JWTGUARD``
and a Redis cache (namespaced per test) as JSON in ``JWTGUARD_TEST_SETTINGS``; no middleware, so every answer
is ``JWTAuth``'s own.
"""

from __future__ import annotations

import json
import os

import django
from django.conf import settings
from django.urls import path

_given = json.loads(os.environ["JWTGUARD_TEST_SETTINGS"])
settings.configure(
    SECRET_KEY="jwtguard-ninja-site",
    DEBUG=False,
    USE_TZ=True,
    ALLOWED_HOSTS=["127.0.0.1"],
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "jwtguard"],
    CACHES={"default": _given["cache"]},
    JWTGUARD=_given["jwtguard"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - after settings.configure

from tests.support.ninja_api import api  # noqa: E402 - after django.setup

urlpatterns = [path("ninja/", api.urls)]
application = get_asgi_application()
