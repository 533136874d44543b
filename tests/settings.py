"""Django settings for jwtguard's own test suite."""

from __future__ import annotations

from fakeredis import FakeRedisConnection

SECRET_KEY = "jwtguard-tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "jwtguard",
    "tests.tenants",  # tenants in a database, for ISSUER_SOURCE (docs/tenants.md)
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
# fakeredis by default (fast, in-process); tests that need a real redis-server ask for one by fixture.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://fakeredis:6379/0",
        "OPTIONS": {"connection_class": FakeRedisConnection},
    }
}
ROOT_URLCONF = "tests.urls"
MIDDLEWARE: list[str] = []
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwtguard.authentication.JWTAccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
# Replaced per test by the `jwtguard_settings` fixture; this one points nowhere on purpose.
JWTGUARD = {
    "ISSUER": "https://issuer.invalid/",
    "AUDIENCE": "https://api.example.test",
    "JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"jwtguard": {"level": "DEBUG"}},
}
