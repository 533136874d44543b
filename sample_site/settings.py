"""sample_site settings, from environment variables (twelve-factor), as a deployment would set them.

JWTGUARD_ISSUER     the issuer whose tokens are accepted (default: the development issuer on 127.0.0.1:8001)
JWTGUARD_AUDIENCE   the audience this API is known by (comma-separated for several)
JWTGUARD_JWKS_URL   optional; without it the JWKS URL is discovered from the issuer
JWTGUARD_DPOP       "off", "allowed" (default) or "required": DPoP-bound tokens (RFC 9449), see /api/v1/friends/dpop
JWTGUARD_DPOP_PUBLIC_URL  optional origin clients call (behind a proxy); without it the request's own URL, its
                    host checked against DJANGO_ALLOWED_HOSTS
JWTGUARD_RESOURCE   the API's identifier in its RFC 9728 metadata (default: the first audience)
REDIS_URL           optional; selects django-redis, shared by every worker and pod. Without it the cache is
                    Django's database cache on a SQLite file: shared by every worker on this host (never
                    LocMemCache, which is per process and would fetch the key set once per worker)
CACHE_KEY_PREFIX    optional prefix of every cache key (several sites on one Redis)
SAMPLE_SITE_DB      the SQLite file (the database cache's table lives there); default sample_site/db.sqlite3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import django

BASE_DIR = Path(__file__).resolve().parent


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# A sample: the default key is public on purpose; a real deployment sets DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "sample-site-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "jwtguard",
    "sample_site",  # for `manage.py devtoken`
]
MIDDLEWARE = [
    "sample_site.served_by.served_by",
    "django.middleware.common.CommonMiddleware",
    # Plain Django views: a valid Bearer token sets request.user; DRF views reuse what it verified.
    "jwtguard.middleware.JWTAuthenticationMiddleware",
]
ROOT_URLCONF = "sample_site.urls"
WSGI_APPLICATION = "sample_site.wsgi.application"

_sqlite_options: dict[str, Any] = {"timeout": 20}
if django.VERSION >= (5, 1):
    # Workers write the cache table concurrently: WAL lets reads go on during a write, and IMMEDIATE
    # transactions queue writers on the busy timeout instead of failing with "database is locked".
    _sqlite_options |= {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SAMPLE_SITE_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": _sqlite_options,
    }
}

_cache_prefix = os.environ.get("CACHE_KEY_PREFIX", "sample_site")
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": _cache_prefix,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    # Created by `python sample_site/manage.py createcachetable` (the demo and the Dockerfile run it).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "jwtguard_cache",
            "KEY_PREFIX": _cache_prefix,
        }
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwtguard.authentication.JWTAccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "sample_site.exceptions.exception_handler",
}

JWTGUARD: dict[str, Any] = {
    "ISSUER": os.environ.get("JWTGUARD_ISSUER", "http://127.0.0.1:8001/"),
    "AUDIENCE": _env_list("JWTGUARD_AUDIENCE", "https://api.example.test"),
}
if os.environ.get("JWTGUARD_JWKS_URL"):
    JWTGUARD["JWKS_URL"] = os.environ["JWTGUARD_JWKS_URL"]
JWTGUARD["DPOP"] = os.environ.get("JWTGUARD_DPOP", "allowed")
if os.environ.get("JWTGUARD_DPOP_PUBLIC_URL"):
    JWTGUARD["DPOP_PUBLIC_URL"] = os.environ["JWTGUARD_DPOP_PUBLIC_URL"]
# Served at /.well-known/oauth-protected-resource (jwtguard.urls) and named by every 401 and 403 challenge.
JWTGUARD["RESOURCE_METADATA"] = {
    "resource": os.environ.get("JWTGUARD_RESOURCE", JWTGUARD["AUDIENCE"][0]),
    "scopes_supported": ["read:friends"],
    "resource_name": "jwtguard sample_site",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"jwtguard": {"handlers": ["console"], "level": os.environ.get("JWTGUARD_LOG_LEVEL", "INFO")}},
}
