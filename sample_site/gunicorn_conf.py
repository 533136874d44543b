"""gunicorn settings of sample_site, shared by the demo, the end-to-end test and the Docker image.

``gunicorn --config=python:sample_site.gunicorn_conf sample_site.wsgi:application`` (see ``serve.py``).
"""

from __future__ import annotations

import os

bind = os.environ.get("SAMPLE_SITE_BIND", "127.0.0.1:8000")
# Four processes that share nothing but the cache: the setting in which jwtguard must fetch the key set once.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
timeout = 30
graceful_timeout = 5
