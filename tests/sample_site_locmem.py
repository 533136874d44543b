"""sample_site's settings with a per-process LocMemCache: what `manage.py check` must warn about (W001)."""

from sample_site.settings import *  # noqa: F403

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
